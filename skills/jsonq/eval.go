package main

import (
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

type identity struct{}

func (identity) eval(v any) ([]any, error) { return []any{v}, nil }

type literal struct{ v any }

func (l literal) eval(any) ([]any, error) { return []any{l.v}, nil }

// pipeNode feeds every output of l into r.
type pipeNode struct{ l, r node }

func (n *pipeNode) eval(v any) ([]any, error) {
	left, err := n.l.eval(v)
	if err != nil {
		return nil, err
	}
	var out []any
	for _, x := range left {
		right, err := n.r.eval(x)
		if err != nil {
			return nil, err
		}
		if out = append(out, right...); len(out) > MaxResults {
			return nil, fmt.Errorf("query produced more than %d values", MaxResults)
		}
	}
	return out, nil
}

type fieldNode struct {
	name string
	pos  int
}

func (n *fieldNode) eval(v any) ([]any, error) {
	switch v := v.(type) {
	case nil:
		return []any{nil}, nil
	case map[string]any:
		return []any{v[n.name]}, nil // a missing key is null
	}
	return nil, &QueryError{n.pos, fmt.Sprintf("cannot get %q of %s", n.name, typeName(v))}
}

type indexNode struct {
	n, pos int
}

func (n *indexNode) eval(v any) ([]any, error) {
	switch v := v.(type) {
	case nil:
		return []any{nil}, nil
	case []any:
		i := n.n
		if i < 0 {
			i += len(v)
		}
		if i < 0 || i >= len(v) {
			return []any{nil}, nil // out of range is null
		}
		return []any{v[i]}, nil
	}
	return nil, &QueryError{n.pos, fmt.Sprintf("cannot index %s with %d", typeName(v), n.n)}
}

type sliceNode struct {
	from, to *int
	pos      int
}

func (n *sliceNode) eval(v any) ([]any, error) {
	var length int
	switch v := v.(type) {
	case nil:
		return []any{nil}, nil
	case []any:
		length = len(v)
	case string:
		length = utf8.RuneCountInString(v)
	default:
		return nil, &QueryError{n.pos, fmt.Sprintf("cannot slice %s", typeName(v))}
	}
	clamp := func(p *int, def int) int {
		if p == nil {
			return def
		}
		i := *p
		if i < 0 {
			i += length
		}
		return min(max(i, 0), length)
	}
	from, to := clamp(n.from, 0), clamp(n.to, length)
	to = max(to, from)
	if s, ok := v.(string); ok {
		r := []rune(s)
		return []any{string(r[from:to])}, nil
	}
	return []any{slices.Clone(v.([]any)[from:to])}, nil
}

// iterNode is [] (also [*] and .*): the elements of an array or the values of an
// object, in key order.
type iterNode struct{ pos int }

func (n *iterNode) eval(v any) ([]any, error) {
	switch v := v.(type) {
	case []any:
		return v, nil
	case map[string]any:
		out := make([]any, 0, len(v))
		for _, k := range sortedKeys(v) {
			out = append(out, v[k])
		}
		return out, nil
	}
	return nil, &QueryError{n.pos, fmt.Sprintf("cannot iterate over %s", typeName(v))}
}

// collectNode is [q]: all outputs of q as one array.
type collectNode struct{ inner node }

func (n *collectNode) eval(v any) ([]any, error) {
	out, err := n.inner.eval(v)
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []any{}
	}
	return []any{out}, nil
}

type cmpNode struct {
	op   string
	l, r node
	pos  int
}

func (n *cmpNode) eval(v any) ([]any, error) {
	ls, err := n.l.eval(v)
	if err != nil {
		return nil, err
	}
	rs, err := n.r.eval(v)
	if err != nil {
		return nil, err
	}
	if len(ls)*len(rs) > MaxResults {
		return nil, &QueryError{n.pos, fmt.Sprintf("comparison of %d by %d values", len(ls), len(rs))}
	}
	var out []any
	for _, a := range rs {
		for _, b := range ls {
			c := compare(b, a)
			var r bool
			switch n.op {
			case "==":
				r = c == 0
			case "!=":
				r = c != 0
			case "<":
				r = c < 0
			case "<=":
				r = c <= 0
			case ">":
				r = c > 0
			case ">=":
				r = c >= 0
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// logicNode is and/or; like jq, the right side is evaluated only when needed.
type logicNode struct {
	or   bool
	l, r node
}

func (n *logicNode) eval(v any) ([]any, error) {
	ls, err := n.l.eval(v)
	if err != nil {
		return nil, err
	}
	var out []any
	for _, a := range ls {
		if truthy(a) == n.or {
			out = append(out, n.or)
			continue
		}
		rs, err := n.r.eval(v)
		if err != nil {
			return nil, err
		}
		for _, b := range rs {
			out = append(out, truthy(b))
		}
		if len(out) > MaxResults {
			return nil, fmt.Errorf("query produced more than %d values", MaxResults)
		}
	}
	return out, nil
}

// truthy is jq's rule: everything but false and null is true.
func truthy(v any) bool { return v != nil && v != false }

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// rank orders types as jq does: null < false < true < numbers < strings < arrays < objects.
func rank(v any) int {
	switch v := v.(type) {
	case nil:
		return 0
	case bool:
		if v {
			return 2
		}
		return 1
	case json.Number:
		return 3
	case string:
		return 4
	case []any:
		return 5
	}
	return 6
}

// compare is a total order on JSON values (jq's): by type rank, then numbers by value,
// strings by code point, arrays element-wise, objects by their sorted key lists and then
// by values.
func compare(a, b any) int {
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra - rb
	}
	switch a := a.(type) {
	case json.Number:
		return compareNumbers(a, b.(json.Number))
	case string:
		return strings.Compare(a, b.(string))
	case []any:
		b := b.([]any)
		for i := 0; i < len(a) && i < len(b); i++ {
			if c := compare(a[i], b[i]); c != 0 {
				return c
			}
		}
		return len(a) - len(b)
	case map[string]any:
		b := b.(map[string]any)
		ka, kb := sortedKeys(a), sortedKeys(b)
		if c := slices.Compare(ka, kb); c != 0 {
			return c
		}
		for _, k := range ka {
			if c := compare(a[k], b[k]); c != 0 {
				return c
			}
		}
	}
	return 0
}

// exactNumber returns n as an exact rational when it is written without an exponent
// and is not absurdly long; exponents ("1e999999999") are compared as float64 so that a
// short literal cannot cost gigabytes.
func exactNumber(n json.Number) (*big.Rat, bool) {
	s := string(n)
	if len(s) > 400 || strings.ContainsAny(s, "eE") {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

func compareNumbers(a, b json.Number) int {
	ra, okA := exactNumber(a)
	rb, okB := exactNumber(b)
	if okA && okB {
		return ra.Cmp(rb)
	}
	fa, _ := strconv.ParseFloat(string(a), 64)
	fb, _ := strconv.ParseFloat(string(b), 64)
	switch {
	case fa < fb:
		return -1
	case fa > fb:
		return 1
	}
	return 0
}

// formatRat writes an exact decimal (a sum of decimals always terminates).
func formatRat(r *big.Rat) json.Number {
	if r.IsInt() {
		return json.Number(r.Num().String())
	}
	scale := 0
	ten := big.NewInt(10)
	for x := new(big.Rat).Set(r); !x.IsInt(); scale++ {
		x.Mul(x, new(big.Rat).SetInt(ten))
	}
	return json.Number(r.FloatString(scale))
}
