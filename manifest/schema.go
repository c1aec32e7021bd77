package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/skillbox-dev/skillbox/internal/strictyaml"
)

// schemas holds the compiled input and output JSON Schemas; nil means "any JSON".
type schemas struct {
	input, output *jsonschema.Schema
}

// SchemaError is input or output that its JSON Schema refuses (or that is not JSON).
// Path names the failing value, e.g. "input.url" or "output.items[2]"; Rule says what
// the schema wants there ("does not match the pattern", "must be at most 10
// characters"). Neither ever holds the value itself, so both may be logged: inputs and
// outputs stay out of the audit log. Both are bounded in length.
type SchemaError struct {
	Path    string
	Rule    string
	Message string // the same as Rule; kept for callers that read Message
}

func (e *SchemaError) Error() string { return e.Path + ": " + e.Message }

func schemaError(path, rule string) *SchemaError {
	rule = strictyaml.Cut(rule, maxRuleLen)
	return &SchemaError{Path: path, Rule: rule, Message: rule}
}

// Bounds of what a SchemaError says: a field path built from a caller's keys and a rule
// naming schema limits must not grow with the input.
const (
	maxPathLen  = 256
	maxTokenLen = 64
	maxRuleLen  = 200
)

// noRemote refuses every $ref that is not inside the schema itself: a manifest never
// makes the runtime fetch anything, from the network or the disk.
type noRemote struct{}

func (noRemote) Load(url string) (any, error) {
	return nil, fmt.Errorf("external $ref %q is not allowed: a schema must be self-contained", url)
}

// schemaBase is where compiled schemas live, for the compiler only.
const schemaBase = "https://skillbox.invalid/"

// compileSchema compiles one schema document (already JSON-clean). Draft 2020-12
// unless the schema names another with $schema. checked skips checking it against the
// draft's metaschema: it passed before (SchemaChecks).
func compileSchema(which string, doc []byte, checked bool) (*jsonschema.Schema, error) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noRemote{})
	if checked {
		c.SkipMetaschemaCheck()
	}
	// A URL base (not a URN) so that relative $refs resolve to a URL and reach noRemote.
	loc := schemaBase + which + ".json"
	if err := c.AddResource(loc, v); err != nil {
		return nil, err
	}
	return c.Compile(loc)
}

// schemaProblem words a compile error for the schema's author: where in the schema
// (a dotted path below the schema, "" for the whole) and what is wrong, without the
// library's JSON pointers, URLs or Go text. schemaWords catches the common mistakes
// first; this covers the rest.
func schemaProblem(err error) (at, msg string) {
	var le *jsonschema.LoadURLError
	if errors.As(err, &le) {
		return "", strictyaml.Cut(le.Err.Error(), maxRuleLen)
	}
	var sve *jsonschema.SchemaValidationError
	if errors.As(err, &sve) {
		var ve *jsonschema.ValidationError
		if errors.As(sve.Err, &ve) {
			leaf := firstLeaf(ve)
			return dotted(leafLocation(leaf)), "not valid JSON Schema: " + compileRule(leaf.ErrorKind)
		}
	}
	var re *jsonschema.InvalidRegexError
	if errors.As(err, &re) {
		return dotted(fragment(re.URL)), fmt.Sprintf("%q is not a valid regular expression: %s", strictyaml.Cut(re.Regex, maxTokenLen), RegexpProblem(re.Err))
	}
	var pe *jsonschema.JSONPointerNotFoundError
	if errors.As(err, &pe) {
		return "", fmt.Sprintf("a $ref points to #%s, which is not in this schema", strictyaml.Cut(pointer(fragment(pe.URL)), maxTokenLen))
	}
	var ae *jsonschema.AnchorNotFoundError
	if errors.As(err, &ae) {
		return "", fmt.Sprintf("a $ref names the anchor %q, which no $anchor in this schema defines", strictyaml.Cut(ae.Reference, maxTokenLen))
	}
	msg = strings.ReplaceAll(err.Error(), "\n", " ")
	msg = strings.ReplaceAll(msg, schemaBase, "")
	return "", "not a valid JSON Schema: " + strictyaml.Cut(msg, maxRuleLen)
}

// compileRule says what is wrong with a schema the metaschema refuses; the "value"
// there is the author's schema, so numbers may be shown.
func compileRule(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return typeRule(k.Want, k.Got)
	case *kind.AdditionalProperties:
		return fmt.Sprintf("unexpected property %q", strictyaml.Cut(strings.Join(k.Properties, ", "), maxTokenLen))
	}
	return ruleOf(k)
}

// fragment returns the JSON pointer tokens of a schema URL's fragment ("#/a/b").
func fragment(url string) []string {
	_, frag, ok := strings.Cut(url, "#")
	frag = strings.TrimPrefix(frag, "/")
	if !ok || frag == "" {
		return nil
	}
	toks := strings.Split(frag, "/")
	for i, t := range toks {
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks
}

// dotted writes pointer tokens as a field path below a schema ("properties.name",
// "allOf[1]").
func dotted(tokens []string) string {
	return strings.TrimPrefix(instancePath("", tokens), ".")
}

func pointer(tokens []string) string {
	if len(tokens) == 0 {
		return "/"
	}
	return "/" + strings.Join(tokens, "/")
}

// ValidateInput checks data against the input schema. Without a schema, data must
// still be one JSON value.
func (m *Manifest) ValidateInput(data []byte) error {
	s, err := m.compiled()
	if err != nil {
		return err
	}
	return validate("input", s.input, data)
}

// ValidateOutput checks data against the output schema (any JSON value without one).
func (m *Manifest) ValidateOutput(data []byte) error {
	s, err := m.compiled()
	if err != nil {
		return err
	}
	return validate("output", s.output, data)
}

// compiled returns the schemas Parse compiled, or compiles them for a Manifest built
// some other way (not cached: a Manifest may be shared between goroutines).
func (m *Manifest) compiled() (*schemas, error) {
	if m.schemas != nil {
		return m.schemas, nil
	}
	s := &schemas{}
	for _, x := range []struct {
		which string
		doc   map[string]any
		dst   **jsonschema.Schema
	}{{"input", m.Input, &s.input}, {"output", m.Output, &s.output}} {
		if x.doc == nil {
			continue
		}
		b, err := json.Marshal(x.doc)
		if err != nil {
			return nil, fmt.Errorf("%s schema: %w", x.which, err)
		}
		if *x.dst, err = compileSchema(x.which, b, false); err != nil {
			at, msg := schemaProblem(err)
			return nil, fmt.Errorf("%s: %s", join(x.which, at), msg)
		}
	}
	return s, nil
}

func validate(which string, s *jsonschema.Schema, data []byte) error {
	// JSON is UTF-8 text (RFC 8259); Go's decoder would quietly turn bad bytes into
	// U+FFFD, so the schema would judge a value other than the bytes the skill gets
	// (or the caller is sent), and a reply could not carry them (a protobuf string
	// must be UTF-8).
	if !utf8.Valid(data) {
		return schemaError(which, "not valid JSON (not UTF-8 text)")
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		// The decoder's message quotes the offending character; say where instead.
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return schemaError(which, fmt.Sprintf("not valid JSON (at byte %d)", se.Offset))
		}
		return schemaError(which, "not valid JSON: "+err.Error())
	}
	// A key given twice: the decoder kept the last value, other parsers keep the first,
	// and an approver reading the text may see either. Refused for every skill, input
	// and output alike, before the schema judges one of the values.
	if at, key, ok := repeatedKey(data, v); ok {
		if key.Key == key.Earlier {
			return schemaError(instancePath(which, at), fmt.Sprintf("key %q appears twice in this object", strictyaml.Cut(key.Key, maxTokenLen)))
		}
		return schemaError(instancePath(which, at), fmt.Sprintf("keys %q and %q differ only in case, which counts as the same key twice in this object",
			strictyaml.Cut(key.Earlier, maxTokenLen), strictyaml.Cut(key.Key, maxTokenLen)))
	}
	if s == nil {
		return nil
	}
	err = s.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return schemaError(which, "does not match the schema")
	}
	leaf := firstLeaf(ve)
	rule := ruleOf(leaf.ErrorKind)
	if _, ok := leaf.ErrorKind.(*kind.Required); ok {
		rule = "missing property"
	}
	return schemaError(instancePath(which, leafLocation(leaf)), rule)
}

// firstLeaf picks one failure to report, deterministically (the library's causes follow
// map order): the deepest failing location, then the first by path.
func firstLeaf(ve *jsonschema.ValidationError) *jsonschema.ValidationError {
	var leaves []*jsonschema.ValidationError
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, e)
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	sort.SliceStable(leaves, func(i, j int) bool {
		a, b := leafLocation(leaves[i]), leafLocation(leaves[j])
		if len(a) != len(b) {
			return len(a) > len(b)
		}
		return strings.Join(a, "/") < strings.Join(b, "/")
	})
	return leaves[0]
}

// leafLocation is where a failure is, counting a missing property as its own location.
func leafLocation(e *jsonschema.ValidationError) []string {
	loc := e.InstanceLocation
	if r, ok := e.ErrorKind.(*kind.Required); ok && len(r.Missing) > 0 {
		missing := append([]string(nil), r.Missing...)
		sort.Strings(missing)
		loc = append(append([]string(nil), loc...), missing[0])
	}
	return loc
}

func instancePath(root string, tokens []string) string {
	var b strings.Builder
	b.WriteString(root)
	for _, t := range tokens {
		if _, err := strconv.Atoi(t); err == nil {
			b.WriteString("[" + t + "]")
		} else {
			b.WriteString("." + strictyaml.Cut(t, maxTokenLen))
		}
		if b.Len() > maxPathLen {
			break
		}
	}
	return strictyaml.Cut(b.String(), maxPathLen)
}

// ruleOf says what the schema wants where a value failed, in words, without the value
// (the library's own messages quote it). Numbers and names in a rule come from the
// schema, except property names, which are keys rather than values and are cut short.
func ruleOf(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return typeRule(k.Want, k.Got)
	case *kind.AdditionalProperties:
		if len(k.Properties) == 1 {
			return fmt.Sprintf("unexpected property %q", strictyaml.Cut(k.Properties[0], maxTokenLen))
		}
		return fmt.Sprintf("%d unexpected properties, the first %q", len(k.Properties), strictyaml.Cut(firstSorted(k.Properties), maxTokenLen))
	case *kind.Required:
		return "missing property"
	case *kind.Enum:
		return "must be one of the allowed values"
	case *kind.Const:
		return "must be the one allowed value"
	case *kind.Format:
		return fmt.Sprintf("must be a valid %s", strictyaml.Cut(k.Want, maxTokenLen))
	case *kind.Pattern:
		return "does not match the pattern"
	case *kind.MinLength:
		return "must be at least " + count(k.Want, "character")
	case *kind.MaxLength:
		return "must be at most " + count(k.Want, "character")
	case *kind.MinItems:
		return "must have at least " + count(k.Want, "item")
	case *kind.MaxItems:
		return "must have at most " + count(k.Want, "item")
	case *kind.AdditionalItems:
		return "must have at most " + count(k.Count, "item")
	case *kind.MinProperties:
		return "must have at least " + count(k.Want, "property")
	case *kind.MaxProperties:
		return "must have at most " + count(k.Want, "property")
	case *kind.Minimum:
		return "must be at least " + number(k.Want)
	case *kind.Maximum:
		return "must be at most " + number(k.Want)
	case *kind.ExclusiveMinimum:
		return "must be more than " + number(k.Want)
	case *kind.ExclusiveMaximum:
		return "must be less than " + number(k.Want)
	case *kind.MultipleOf:
		return "must be a multiple of " + number(k.Want)
	case *kind.UniqueItems:
		return fmt.Sprintf("items must be unique (items %d and %d are equal)", k.Duplicates[0], k.Duplicates[1])
	case *kind.Contains:
		return "must contain an item that matches"
	case *kind.MinContains:
		return "must contain at least " + count(k.Want, "item") + " that match"
	case *kind.MaxContains:
		return "must contain at most " + count(k.Want, "item") + " that match"
	case *kind.PropertyNames:
		return "has a property name that is not allowed"
	case *kind.DependentRequired, *kind.Dependency:
		return "misses a property that another property requires"
	case *kind.OneOf:
		if len(k.Subschemas) == 0 {
			return "must match one of the alternatives"
		}
		return "must match exactly one of the alternatives, but matches more"
	case *kind.AnyOf:
		return "must match at least one of the alternatives"
	case *kind.AllOf:
		return "must match all of the alternatives"
	case *kind.Not:
		return "matches what the schema forbids"
	case *kind.FalseSchema:
		return "is not allowed here"
	case *kind.ContentEncoding:
		return fmt.Sprintf("must be %s-encoded", strictyaml.Cut(k.Want, maxTokenLen))
	case *kind.ContentMediaType:
		return fmt.Sprintf("must be %s", strictyaml.Cut(k.Want, maxTokenLen))
	case *kind.ContentSchema:
		return "content does not match its schema"
	}
	return "does not match the schema"
}

// typeRule is "want a string, got a number": JSON type names with their articles.
func typeRule(want []string, got string) string {
	ws := make([]string, len(want))
	for i, w := range want {
		ws[i] = article(w)
	}
	return fmt.Sprintf("want %s, got %s", strings.Join(ws, " or "), article(got))
}

func article(t string) string {
	switch t {
	case "null":
		return "null"
	case "integer", "object", "array":
		return "an " + strictyaml.Cut(t, maxTokenLen)
	case "boolean":
		return "true or false"
	}
	return "a " + strictyaml.Cut(t, maxTokenLen)
}

// count is "1 character", "3 characters", "2 properties".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") {
		return strconv.Itoa(n) + " " + strings.TrimSuffix(noun, "y") + "ies"
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func firstSorted(xs []string) string {
	s := append([]string(nil), xs...)
	sort.Strings(s)
	return s[0]
}

// number writes a schema's bound (a rational) short: integers as such, others as a
// decimal.
func number(r *big.Rat) string {
	if r == nil {
		return "the bound"
	}
	if r.IsInt() {
		return strictyaml.Cut(r.Num().String(), 40)
	}
	return strictyaml.Cut(strings.TrimRight(strings.TrimRight(r.FloatString(6), "0"), "."), 40)
}
