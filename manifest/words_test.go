package manifest

import (
	"errors"
	"strings"
	"testing"
)

// goTexts are fragments of Go's or a library's own wording that must never reach an
// author: regexp's prefix and skillbox's anchoring, JSON pointers and the compiler's
// URLs, YAML tokens, Go type names.
var goTexts = []string{
	"error parsing regexp", "^(?:", "json-pointer", "skillbox.invalid", "at /", "'array'",
	"value must be one of", "is not valid regex", "cannot start any token", "yaml:",
	"*", "map[", "float64", "jsonschema", "not found",
}

func parseProblems(t *testing.T, doc string) []string {
	t.Helper()
	_, err := Parse([]byte(doc))
	var me *Error
	if !errors.As(err, &me) {
		t.Fatalf("Parse = %v, want a *manifest.Error", err)
	}
	for _, line := range me.Lines() {
		for _, bad := range goTexts {
			if strings.Contains(line, bad) {
				t.Errorf("%q holds %q", line, bad)
			}
		}
	}
	return me.Lines()
}

func wantProblem(t *testing.T, doc, want string) {
	t.Helper()
	lines := parseProblems(t, doc)
	for _, l := range lines {
		if l == want {
			return
		}
	}
	t.Errorf("problems %q, want %q", lines, want)
}

// UX review A: schema mistakes are named by their field path in the schema and in the
// author's words, not the compiler's (a JSON pointer, its URL, regexp's wrapper).
func TestSchemaMistakesInTheAuthorsWords(t *testing.T) {
	schema := func(s string) string {
		return with(t, "    count: {type: integer}\n", "    count: "+s+"\n")
	}
	wantProblem(t, schema(`{type: string, pattern: "("}`),
		`input.properties.count.pattern: "(" is not a valid regular expression: missing closing ) at "("`)
	wantProblem(t, schema(`{$ref: "#/nope"}`),
		`input.properties.count.$ref: "#/nope" points to nothing in this schema (no "nope" there)`)
	wantProblem(t, schema(`{$ref: "#/$defs/x"}`),
		`input.properties.count.$ref: "#/$defs/x" points to nothing in this schema (no "$defs" there)`)
	wantProblem(t, schema(`{type: objekt}`),
		`input.properties.count.type: "objekt" is not a JSON Schema type (allowed: array, boolean, integer, null, number, object, string)`)
	wantProblem(t, with(t, "input:\n  type: object\n", "input:\n  type: objekt\n"),
		`input.type: "objekt" is not a JSON Schema type (allowed: array, boolean, integer, null, number, object, string)`)
	wantProblem(t, schema(`{type: object, patternProperties: {"[": {type: string}}}`),
		`input.properties.count.patternProperties.[: "[" is not a valid regular expression: missing closing ] at "["`)
	// The compiler's own checks (after ours) speak in paths too.
	wantProblem(t, schema(`{type: string, minLength: -1}`),
		`input.properties.count.minLength: not valid JSON Schema: must be at least 0`)
	wantProblem(t, schema(`{type: string, maxLength: x}`),
		`input.properties.count.maxLength: not valid JSON Schema: want an integer, got a string`)
}

// UX review C: a misspelt keyword would be ignored by the validator, so the constraint
// would silently disappear. Unknown keywords are refused with the closest keyword;
// names under properties, $defs and the like are the author's, and enum/const/default/
// examples values are data.
func TestSchemaKeywordTyposRefused(t *testing.T) {
	schema := func(s string) string {
		return with(t, "    count: {type: integer}\n", "    count: "+s+"\n")
	}
	wantProblem(t, schema(`{type: string, maxLenght: 5}`),
		`input.properties.count: unknown keyword "maxLenght" (did you mean "maxLength"?)`)
	wantProblem(t, schema(`{type: string, MaxLength: 5}`),
		`input.properties.count: unknown keyword "MaxLength" (did you mean "maxLength"?)`)
	wantProblem(t, schema(`{type: array, items: {type: string, patern: "^a"}}`),
		`input.properties.count.items: unknown keyword "patern" (did you mean "pattern"?)`)
	wantProblem(t, schema(`{anyOf: [{type: string}, {type: integer, minimun: 1}]}`),
		`input.properties.count.anyOf[1]: unknown keyword "minimun" (did you mean "minimum"?)`)
	wantProblem(t, schema(`{type: string, colour: red}`),
		`input.properties.count: unknown keyword "colour"`)
	wantProblem(t, with(t, "output:\n  type: object\n", "output:\n  type: object\n  requried: [x]\n"),
		`output: unknown keyword "requried" (did you mean "required"?)`)
	wantProblem(t, schema(`{type: integer, dependencies: {}}`),
		`input.properties.count: "dependencies" is not a keyword of JSON Schema 2020-12 (it was dropped after an older draft)`)

	// Accepted: user names that look like keywords or typos, data values, x- annotations,
	// $defs and definitions, and older keywords when the schema names an older draft.
	for _, ok := range []string{
		`{type: object, properties: {maxLenght: {type: string}, type: {type: string}, colour: {enum: [{maxLenght: 1}]}}}`,
		`{type: object, default: {colour: red, maxLenght: 1}, examples: [{patern: 1}], const: {x: 1}}`,
		`{type: string, x-ui-widget: textarea, title: T, description: D, $comment: c, deprecated: false}`,
		`{$ref: "#/properties/url"}`,
		`{type: object, dependentSchemas: {a: {required: [b]}}, patternProperties: {"^x-": {type: string}}}`,
	} {
		if _, err := Parse([]byte(schema(ok))); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, ok := range []struct{ root, ref string }{
		{"  $defs: {n: {type: integer}, maxLenght: {type: string}}\n", "#/$defs/n"},
		{"  definitions: {n: {type: integer}}\n", "#/definitions/n"},
		{"  $schema: \"http://json-schema.org/draft-07/schema#\"\n  dependencies: {a: [b]}\n  definitions: {n: {type: integer}}\n", "#/definitions/n"},
	} {
		doc := with(t, "input:\n  type: object\n", "input:\n  type: object\n"+ok.root)
		doc = strings.Replace(doc, "count: {type: integer}", "count: {$ref: \""+ok.ref+"\"}", 1)
		if _, err := Parse([]byte(doc)); err != nil {
			t.Errorf("%q: %v", ok.root, err)
		}
	}
	// A whole schema's worth of typos makes a bounded error.
	many := "{type: object"
	for i := range 50 {
		many += ", typo" + strings.Repeat("x", i) + ": 1"
	}
	if lines := parseProblems(t, schema(many+"}")); len(lines) > maxSchemaProblems {
		t.Errorf("%d problems for one schema", len(lines))
	}
}

// UX review A: a tab used for indentation is named as such, on its line.
func TestTabIndentNamed(t *testing.T) {
	doc := strings.Replace(goodWasm, "  timeout: 10s\n", "\ttimeout: 10s\n", 1)
	line := strings.Count(doc[:strings.Index(doc, "\ttimeout")], "\n") + 1
	wantProblem(t, doc, "line "+itoa(line)+": indented with a tab; YAML allows only spaces for indentation")
}

func itoa(i int) string {
	s := ""
	for ; i > 0; i /= 10 {
		s = string(rune('0'+i%10)) + s
	}
	return s
}

// UX review B: a size under the minimum written without a unit says it was read as
// bytes and how to write it.
func TestSizeBelowMinimumSaysBytes(t *testing.T) {
	wantProblem(t, with(t, "memory: 64MiB", `memory: "16"`),
		`limits.memory: "16" is 16 bytes, below the 1MiB minimum; write a unit (e.g. 64MiB)`)
	wantProblem(t, with(t, "memory: 64MiB", `memory: 512KiB`),
		`limits.memory: "512KiB" is below the 1MiB minimum`)
}

// UX review D: the depth error names the path from input, cut only between names.
func TestDepthPathCutBetweenNames(t *testing.T) {
	lines := parseProblems(t, string(deepSchemaDoc(1600)))
	if len(lines) != 1 {
		t.Fatalf("problems %q", lines)
	}
	const pre = "input: nested more than 64 levels deep (at input.properties.a."
	if !strings.HasPrefix(lines[0], pre) || !strings.HasSuffix(lines[0], ".properties…)") && !strings.HasSuffix(lines[0], ".a…)") {
		t.Errorf("%q: want the path from input, cut after a whole name", lines[0])
	}
}
