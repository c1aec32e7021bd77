package manifest

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/skillbox-dev/skillbox/internal/strictyaml"
)

// JSON Schema keywords a schema object may hold (draft 2020-12, plus "definitions",
// which the library resolves like "$defs"). A key outside this set would be ignored by
// the validator, so a typo ("maxLenght") would silently drop a constraint: it is an
// error instead. Keys starting with "x-" are the author's own annotations and allowed.
var schemaKeywords = map[string]bool{
	// core
	"$schema": true, "$id": true, "$ref": true, "$anchor": true, "$dynamicRef": true,
	"$dynamicAnchor": true, "$vocabulary": true, "$comment": true, "$defs": true,
	"definitions": true,
	// applicators
	"prefixItems": true, "items": true, "contains": true, "additionalProperties": true,
	"properties": true, "patternProperties": true, "dependentSchemas": true,
	"propertyNames": true, "if": true, "then": true, "else": true, "allOf": true,
	"anyOf": true, "oneOf": true, "not": true,
	"unevaluatedItems": true, "unevaluatedProperties": true,
	// validation
	"type": true, "const": true, "enum": true, "multipleOf": true, "maximum": true,
	"exclusiveMaximum": true, "minimum": true, "exclusiveMinimum": true, "maxLength": true,
	"minLength": true, "pattern": true, "maxItems": true, "minItems": true,
	"uniqueItems": true, "maxContains": true, "minContains": true, "maxProperties": true,
	"minProperties": true, "required": true, "dependentRequired": true,
	// format, content, annotations
	"format": true, "contentEncoding": true, "contentMediaType": true, "contentSchema": true,
	"title": true, "description": true, "default": true, "deprecated": true,
	"readOnly": true, "writeOnly": true, "examples": true,
}

// olderKeywords are keywords of drafts 4 to 2019-09 that 2020-12 dropped; they are
// allowed only when the schema names such a draft with $schema.
var olderKeywords = map[string]bool{
	"dependencies": true, "additionalItems": true, "$recursiveRef": true,
	"$recursiveAnchor": true, "id": true,
}

// The shapes of keyword values that hold schemas.
var (
	oneSchemaKeywords = map[string]bool{
		"items": true, "contains": true, "additionalProperties": true, "propertyNames": true,
		"if": true, "then": true, "else": true, "not": true, "unevaluatedItems": true,
		"unevaluatedProperties": true, "contentSchema": true, "additionalItems": true,
	}
	schemaListKeywords = map[string]bool{"prefixItems": true, "allOf": true, "anyOf": true, "oneOf": true}
	// Keywords whose value maps names the author chose (property names, definition
	// names) to schemas: the names are not keywords.
	schemaMapKeywords = map[string]bool{
		"properties": true, "patternProperties": true, "$defs": true, "definitions": true,
		"dependentSchemas": true,
	}
)

var jsonTypes = []string{"array", "boolean", "integer", "null", "number", "object", "string"}

// maxSchemaProblems bounds how many problems one schema reports.
const maxSchemaProblems = 10

// schemaWords checks a schema (decoded from JSON) for what the validator would
// silently ignore or report in its own terms: unknown keywords, unknown type names,
// patterns that are not regular expressions, and local $refs pointing nowhere. Each
// problem is [path, message] with path in the author's terms ("input.properties.name").
func schemaWords(root string, doc any) [][2]string {
	w := &schemaWalker{doc: doc, older: olderDraft(doc)}
	w.walk(doc, root, 0)
	// A nested $id moves the base "#" refers to: then refs are the compiler's to check.
	if !w.nestedID {
		for _, r := range w.refs {
			w.ref(r[0], r[1])
		}
	}
	return w.probs
}

type schemaWalker struct {
	doc      any
	older    bool
	nestedID bool
	refs     [][2]string // [path, ref] of every $ref
	probs    [][2]string
}

// olderDraft reports whether the schema names a draft before 2020-12.
func olderDraft(doc any) bool {
	m, _ := doc.(map[string]any)
	s, _ := m["$schema"].(string)
	for _, d := range []string{"draft-04", "draft-06", "draft-07", "2019-09"} {
		if strings.Contains(s, d) {
			return true
		}
	}
	return false
}

func (w *schemaWalker) add(path, format string, args ...any) {
	if len(w.probs) < maxSchemaProblems {
		w.probs = append(w.probs, [2]string{strictyaml.Cut(path, maxPathLen), strictyaml.Cut(fmt.Sprintf(format, args...), maxRuleLen)})
	}
}

func (w *schemaWalker) walk(s any, path string, depth int) {
	if depth > MaxSchemaDepth || len(w.probs) >= maxSchemaProblems {
		return
	}
	obj, ok := s.(map[string]any)
	if !ok {
		if _, isBool := s.(bool); !isBool {
			w.add(path, "want a schema (a mapping, or true or false), got %s", jsonKind(s))
		}
		return
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, at := obj[k], join(path, strictyaml.Cut(k, maxTokenLen))
		switch {
		case strings.HasPrefix(k, "x-"):
			continue // the author's annotation
		case !schemaKeywords[k] && !(w.older && olderKeywords[k]):
			if olderKeywords[k] {
				w.add(path, "%q is not a keyword of JSON Schema 2020-12 (it was dropped after an older draft)%s", strictyaml.Cut(k, maxTokenLen), suggestion(k))
				continue
			}
			w.add(path, "unknown keyword %q%s", strictyaml.Cut(k, maxTokenLen), suggestion(k))
		case oneSchemaKeywords[k]:
			if list, isList := v.([]any); isList && w.older && (k == "items") {
				for i, e := range list {
					w.walk(e, at+"["+strconv.Itoa(i)+"]", depth+1)
				}
				continue
			}
			w.walk(v, at, depth+1)
		case schemaListKeywords[k]:
			list, isList := v.([]any)
			if !isList {
				w.add(at, "want a list of schemas, got %s", jsonKind(v))
				continue
			}
			for i, e := range list {
				w.walk(e, at+"["+strconv.Itoa(i)+"]", depth+1)
			}
		case schemaMapKeywords[k]:
			m, isMap := v.(map[string]any)
			if !isMap {
				w.add(at, "want a mapping of names to schemas, got %s", jsonKind(v))
				continue
			}
			names := make([]string, 0, len(m))
			for name := range m {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				if k == "patternProperties" {
					w.regexp(at, name, "the property name pattern")
				}
				w.walk(m[name], join(at, strictyaml.Cut(name, maxTokenLen)), depth+1)
			}
		case k == "dependencies": // older drafts: a schema or a list of names
			if m, isMap := v.(map[string]any); isMap {
				for name, e := range m {
					if _, isList := e.([]any); !isList {
						w.walk(e, join(at, strictyaml.Cut(name, maxTokenLen)), depth+1)
					}
				}
			}
		case k == "type":
			w.types(at, v)
		case k == "pattern":
			if p, isStr := v.(string); isStr {
				w.regexp(at, p, "")
			}
		case k == "$ref":
			if r, isStr := v.(string); isStr {
				w.refs = append(w.refs, [2]string{at, r})
			}
		case k == "$id" || k == "id":
			w.nestedID = w.nestedID || depth > 0
		}
	}
}

func (w *schemaWalker) types(at string, v any) {
	var names []any
	switch x := v.(type) {
	case string:
		names = []any{x}
	case []any:
		names = x
	default:
		w.add(at, "want a type name or a list of them (%s), got %s", strings.Join(jsonTypes, ", "), jsonKind(v))
		return
	}
	for _, n := range names {
		s, _ := n.(string)
		if !slices.Contains(jsonTypes, s) {
			if s == "" {
				w.add(at, "want type names (%s), got %s", strings.Join(jsonTypes, ", "), jsonKind(n))
				continue
			}
			w.add(at, "%q is not a JSON Schema type (allowed: %s)", strictyaml.Cut(s, maxTokenLen), strings.Join(jsonTypes, ", "))
		}
	}
}

// regexp checks a pattern the validator will compile (with Go's regexp, as the
// library does) and words a failure with the pattern as written.
func (w *schemaWalker) regexp(at, pattern, what string) {
	if _, err := regexp.Compile(pattern); err != nil {
		if what != "" {
			at = join(at, strictyaml.Cut(pattern, maxTokenLen))
		}
		w.add(at, "%q is not a valid regular expression: %s", strictyaml.Cut(pattern, maxTokenLen), RegexpProblem(err))
	}
}

// RegexpProblem says what is wrong with a regular expression, without the regexp
// package's prefix ("error parsing regexp: ...") or the whole expression it quotes.
func RegexpProblem(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		if se.Expr != "" && len(se.Expr) <= maxTokenLen {
			return fmt.Sprintf("%s at %q", se.Code, se.Expr)
		}
		return string(se.Code)
	}
	return "not a valid regular expression"
}

// ref checks a $ref that points inside this schema with a JSON pointer ("#/$defs/x").
// Other references (anchors, relative URLs) are left to the compiler.
func (w *schemaWalker) ref(at, r string) {
	if r == "#" || !strings.HasPrefix(r, "#/") {
		return
	}
	cur := w.doc
	for _, tok := range strings.Split(r[2:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch x := cur.(type) {
		case map[string]any:
			next, ok := x[tok]
			if !ok {
				w.add(at, "%q points to nothing in this schema (no %q there)", strictyaml.Cut(r, maxTokenLen), strictyaml.Cut(tok, maxTokenLen))
				return
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				w.add(at, "%q points to nothing in this schema (no item %q there)", strictyaml.Cut(r, maxTokenLen), strictyaml.Cut(tok, maxTokenLen))
				return
			}
			cur = x[i]
		default:
			w.add(at, "%q points to nothing in this schema", strictyaml.Cut(r, maxTokenLen))
			return
		}
	}
}

// suggestion is ` (did you mean "maxLength"?)` for the keyword closest to k, or "".
func suggestion(k string) string {
	best, bestD := "", 3
	if len(k) > 64 {
		return ""
	}
	for kw := range schemaKeywords {
		if strings.EqualFold(kw, k) {
			return fmt.Sprintf(" (did you mean %q?)", kw)
		}
		if d := editDistance(strings.ToLower(k), strings.ToLower(kw)); d < bestD || (d == bestD && best != "" && kw < best) {
			best, bestD = kw, d
		}
	}
	if best == "" || bestD > len(k)/3+1 {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Damerau–Levenshtein distance (optimal string alignment) of two
// short strings: a swap of two letters ("maxLenght") counts as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// jsonKind names a decoded JSON value's kind in the author's words.
func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "true or false"
	case nil:
		return "null"
	}
	return "a number"
}
