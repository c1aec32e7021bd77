package main

import (
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"unicode/utf8"
)

// function is a built-in: apply gets the call (for its argument and position) and one
// input value.
type function struct {
	arg     bool   // takes one argument query
	example string // shown when the argument is missing
	doc     string
	apply   func(c *callNode, v any) ([]any, error)
}

// functions is the whole built-in library, documented in README.md.
func functions() map[string]function {
	return map[string]function{
		"length":  {doc: "characters of a string, elements of an array, keys of an object; null is 0", apply: fnLength},
		"keys":    {doc: "sorted keys of an object, or the indices of an array", apply: fnKeys},
		"type":    {doc: "null, boolean, number, string, array or object", apply: func(_ *callNode, v any) ([]any, error) { return []any{typeName(v)}, nil }},
		"not":     {doc: "true for false and null, else false", apply: func(_ *callNode, v any) ([]any, error) { return []any{!truthy(v)}, nil }},
		"sort":    {doc: "an array in ascending order (null < false < true < numbers < strings < arrays < objects)", apply: fnSort},
		"unique":  {doc: "an array sorted, without duplicates", apply: fnUnique},
		"reverse": {doc: "an array in reverse order", apply: fnReverse},
		"first":   {doc: "the first element of an array (null when empty)", apply: func(c *callNode, v any) ([]any, error) { return pick(c, v, 0) }},
		"last":    {doc: "the last element of an array (null when empty)", apply: func(c *callNode, v any) ([]any, error) { return pick(c, v, -1) }},
		"min":     {doc: "the least element of an array (null when empty)", apply: func(c *callNode, v any) ([]any, error) { return extreme(c, v, -1) }},
		"max":     {doc: "the greatest element of an array (null when empty)", apply: func(c *callNode, v any) ([]any, error) { return extreme(c, v, 1) }},
		"add":     {doc: "the sum of an array of numbers (exact for decimals), or the concatenation of strings or of arrays; nulls are skipped", apply: fnAdd},
		"sort_by": {arg: true, example: "sort_by(.price)", doc: "an array sorted by what the argument gives for each element (stable)", apply: fnSortBy},
		"map":     {arg: true, example: "map(.name)", doc: "[.[] | f]: the argument applied to every element of an array", apply: fnMap},
		"select":  {arg: true, example: `select(.price > 10)`, doc: "the input if the argument is true for it, else nothing", apply: fnSelect},
		"has":     {arg: true, example: `has("name")`, doc: "whether an object has the key (or an array the index)", apply: fnHas},
	}
}

func lookup(name string) (function, bool) {
	f, ok := functions()[name]
	return f, ok
}

func functionNames() []string {
	var names []string
	for n := range functions() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

type callNode struct {
	fn   function
	name string
	arg  node
	pos  int
}

func (c *callNode) eval(v any) ([]any, error) { return c.fn.apply(c, v) }

func (c *callNode) errorf(format string, args ...any) error {
	return &QueryError{c.pos, c.name + ": " + fmt.Sprintf(format, args...)}
}

func (c *callNode) array(v any) ([]any, error) {
	switch v := v.(type) {
	case []any:
		return v, nil
	case nil:
		return nil, c.errorf("input is null, want an array")
	}
	return nil, c.errorf("input is %s, want an array", typeName(v))
}

func fnLength(c *callNode, v any) ([]any, error) {
	n := 0
	switch v := v.(type) {
	case nil:
	case string:
		n = utf8.RuneCountInString(v)
	case []any:
		n = len(v)
	case map[string]any:
		n = len(v)
	default:
		return nil, c.errorf("%s has no length", typeName(v))
	}
	return []any{json.Number(strconv.Itoa(n))}, nil
}

func fnKeys(c *callNode, v any) ([]any, error) {
	switch v := v.(type) {
	case map[string]any:
		keys := []any{}
		for _, k := range sortedKeys(v) {
			keys = append(keys, k)
		}
		return []any{keys}, nil
	case []any:
		idx := make([]any, len(v))
		for i := range v {
			idx[i] = json.Number(strconv.Itoa(i))
		}
		return []any{idx}, nil
	}
	return nil, c.errorf("input is %s, want an object or an array", typeName(v))
}

func fnSort(c *callNode, v any) ([]any, error) {
	a, err := c.array(v)
	if err != nil {
		return nil, err
	}
	s := slices.Clone(a)
	slices.SortStableFunc(s, compare)
	return []any{s}, nil
}

func fnUnique(c *callNode, v any) ([]any, error) {
	sorted, err := fnSort(c, v)
	if err != nil {
		return nil, err
	}
	return []any{slices.CompactFunc(sorted[0].([]any), func(a, b any) bool { return compare(a, b) == 0 })}, nil
}

func fnReverse(c *callNode, v any) ([]any, error) {
	a, err := c.array(v)
	if err != nil {
		return nil, err
	}
	s := slices.Clone(a)
	slices.Reverse(s)
	return []any{s}, nil
}

func pick(c *callNode, v any, i int) ([]any, error) {
	a, err := c.array(v)
	if err != nil {
		return nil, err
	}
	if len(a) == 0 {
		return []any{nil}, nil
	}
	if i < 0 {
		i += len(a)
	}
	return []any{a[i]}, nil
}

func extreme(c *callNode, v any, sign int) ([]any, error) {
	a, err := c.array(v)
	if err != nil {
		return nil, err
	}
	if len(a) == 0 {
		return []any{nil}, nil
	}
	best := a[0]
	for _, x := range a[1:] {
		if compare(x, best)*sign > 0 {
			best = x
		}
	}
	return []any{best}, nil
}

func fnAdd(c *callNode, v any) ([]any, error) {
	a, err := c.array(v)
	if err != nil {
		return nil, err
	}
	var kind string
	var nums []json.Number
	var str []byte
	var arr []any
	for i, x := range a {
		if x == nil {
			continue
		}
		t := typeName(x)
		if kind == "" {
			kind = t
		}
		if t != kind || (t != "number" && t != "string" && t != "array") {
			return nil, c.errorf("cannot add %s to %s (element %d)", t, kind, i)
		}
		switch x := x.(type) {
		case json.Number:
			nums = append(nums, x)
		case string:
			str = append(str, x...)
		case []any:
			arr = append(arr, x...)
		}
	}
	switch kind {
	case "":
		return []any{nil}, nil
	case "string":
		return []any{string(str)}, nil
	case "array":
		return []any{arr}, nil
	}
	return []any{sum(nums)}, nil
}

// sum adds exactly when every number is a plain decimal (0.1 + 0.2 is 0.3), else in
// float64, as any JSON tool would.
func sum(nums []json.Number) json.Number {
	exact := new(big.Rat)
	for _, n := range nums {
		r, ok := exactNumber(n)
		if !ok {
			f := 0.0
			for _, n := range nums {
				x, _ := strconv.ParseFloat(string(n), 64)
				f += x
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
		}
		exact.Add(exact, r)
	}
	return formatRat(exact)
}

func fnSortBy(c *callNode, v any) ([]any, error) {
	a, err := c.array(v)
	if err != nil {
		return nil, err
	}
	type keyed struct {
		key []any
		v   any
	}
	ks := make([]keyed, len(a))
	for i, x := range a {
		k, err := c.arg.eval(x)
		if err != nil {
			return nil, err
		}
		ks[i] = keyed{k, x}
	}
	slices.SortStableFunc(ks, func(x, y keyed) int { return compare(x.key, y.key) })
	out := make([]any, len(ks))
	for i, k := range ks {
		out[i] = k.v
	}
	return []any{out}, nil
}

func fnMap(c *callNode, v any) ([]any, error) {
	a, err := c.array(v)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, x := range a {
		r, err := c.arg.eval(x)
		if err != nil {
			return nil, err
		}
		if out = append(out, r...); len(out) > MaxResults {
			return nil, c.errorf("more than %d values", MaxResults)
		}
	}
	return []any{out}, nil
}

func fnSelect(c *callNode, v any) ([]any, error) {
	conds, err := c.arg.eval(v)
	if err != nil {
		return nil, err
	}
	var out []any
	for _, ok := range conds {
		if truthy(ok) {
			out = append(out, v)
		}
	}
	return out, nil
}

func fnHas(c *callNode, v any) ([]any, error) {
	keys, err := c.arg.eval(v)
	if err != nil {
		return nil, err
	}
	var out []any
	for _, k := range keys {
		switch v := v.(type) {
		case map[string]any:
			s, ok := k.(string)
			if !ok {
				return nil, c.errorf("an object's key must be a string, not %s", typeName(k))
			}
			_, found := v[s]
			out = append(out, found)
		case []any:
			n, ok := k.(json.Number)
			i, err := strconv.Atoi(string(n))
			if !ok || err != nil {
				return nil, c.errorf("an array's index must be an integer")
			}
			out = append(out, i >= 0 && i < len(v))
		default:
			return nil, c.errorf("input is %s, want an object or an array", typeName(v))
		}
	}
	return out, nil
}
