package manifest

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// deepSchemaDoc is a manifest whose input schema nests properties n levels deep
// (2n YAML levels), written in flow style as an attacker would: 53 KB for n = 1,600.
func deepSchemaDoc(n int) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: skillbox/v1\nname: deep\nversion: 1.0.0\ndescription: d\nsandbox:\n  wasm:\n    module: m.wasm\n    sha256: " + goodHex + "\ninput: ")
	for range n {
		b.WriteString(`{"properties":{"a":`)
	}
	b.WriteString("{}")
	for range n {
		b.WriteString("}}")
	}
	b.WriteString("\n")
	return []byte(b.String())
}

// Finding 8: a schema nested 1,600 levels held install for 36 s (compile time grows
// with the depth to the power 2.7). It is refused by its shape, before it is compiled.
func TestDeepSchemaRefusedBeforeCompiling(t *testing.T) {
	doc := deepSchemaDoc(1600)
	start := time.Now()
	_, err := Parse(doc)
	took := time.Since(start)
	var me *Error
	if !errors.As(err, &me) {
		t.Fatalf("Parse = %v, want a *manifest.Error", err)
	}
	want := "input: nested more than 64 levels deep (at input.properties.a.properties.a"
	if len(me.Problems) != 1 || !strings.HasPrefix(me.Problems[0].String(), want) {
		t.Fatalf("problems %q, want one starting %q", me.Lines(), want)
	}
	if len(err.Error()) > 400 {
		t.Errorf("error is %d bytes long", len(err.Error()))
	}
	// Unfixed, this took 36 s on the reviewer's machine (7 s here at half the depth);
	// refused by shape it takes milliseconds.
	if took > 2*time.Second {
		t.Errorf("refusing took %v", took)
	}
}

func TestSchemaDepthAndSizeLimits(t *testing.T) {
	// 32 properties levels are 64 YAML levels: the deepest allowed.
	if _, err := Parse(deepSchemaDoc(MaxSchemaDepth/2 - 1)); err != nil {
		t.Errorf("a schema %d levels deep: %v", MaxSchemaDepth-1, err)
	}
	if _, err := Parse(deepSchemaDoc(MaxSchemaDepth / 2)); err == nil || !strings.Contains(err.Error(), "nested more than 64 levels") {
		t.Errorf("a schema %d levels deep: %v", MaxSchemaDepth+1, err)
	}
	// Lists count as levels too.
	deepList := "input: {allOf: " + strings.Repeat("[", 70) + strings.Repeat("]", 70) + "}\n"
	doc := strings.Replace(goodWasm, "input:\n  type: object\n  required: [url]\n  properties:\n    url: {type: string}\n    count: {type: integer}\n", deepList, 1)
	if _, err := Parse([]byte(doc)); err == nil || !strings.Contains(err.Error(), "input: nested more than 64 levels deep (at input.allOf[0][0]") {
		t.Errorf("deep list: %v", err)
	}
	// Size: many shallow properties.
	var b strings.Builder
	b.WriteString("output:\n  type: object\n  properties:\n")
	for i := range 3000 {
		b.WriteString("    p" + strings.Repeat("x", 10) + strconv.Itoa(i) + ": {type: string}\n")
	}
	doc = strings.Replace(goodWasm, "output:\n  type: object\n", b.String(), 1)
	if _, err := Parse([]byte(doc)); err == nil || !strings.Contains(err.Error(), "output: the schema is") || !strings.Contains(err.Error(), "at most 65536 are allowed") {
		t.Errorf("large schema: %v", err)
	}
}

// Finding 4: a CPU budget below Docker's floor became no CFS quota at all.
func TestCPUFloor(t *testing.T) {
	for _, tc := range []struct {
		cpu string
		ok  bool
	}{
		{"0.000001", false}, {"1e-6", false}, {"0.009", false}, {"0", false}, {"-1", false},
		{".nan", false}, {".inf", false}, {"65", false},
		{"0.01", true}, {"0.5", true}, {"64", true},
	} {
		doc := with(t, "  cpu: 1\n", "  cpu: "+tc.cpu+"\n")
		m, err := Parse([]byte(doc))
		if tc.ok {
			if err != nil {
				t.Errorf("cpu %s: %v", tc.cpu, err)
			} else if m.Limits.CPU < MinCPU {
				t.Errorf("cpu %s: parsed as %g", tc.cpu, m.Limits.CPU)
			}
			continue
		}
		if err == nil {
			t.Errorf("cpu %s: accepted as %g", tc.cpu, m.Limits.CPU)
			continue
		}
		if want := "limits.cpu: " + tc.cpu + ": want a number of cores from 0.01 to 64"; err.Error() != want {
			t.Errorf("cpu %s: %v, want %s", tc.cpu, err, want)
		}
	}
}

// Finding 6: a schema failure names the field and the rule, never the value, and stays
// short whatever the input.
func TestSchemaErrorsHoldNoValue(t *testing.T) {
	const secret = "AKIA-INPUT-SECRET-1234"
	doc := strings.Replace(goodWasm, "input:\n  type: object\n  required: [url]\n  properties:\n    url: {type: string}\n    count: {type: integer}\n", `input:
  type: object
  additionalProperties: false
  properties:
    key: {type: string, pattern: '^[a-z]+$'}
    short: {type: string, maxLength: 10}
    long: {type: string, minLength: 100000}
    color: {enum: [red, green]}
    fixed: {const: abc}
    either: {oneOf: [{type: string}, {type: string, minLength: 1}]}
    any: {anyOf: [{type: integer}, {type: boolean}]}
    never: {not: {type: string}}
    num: {type: number, maximum: 2.5}
    list: {type: array, maxItems: 1, uniqueItems: true}
`, 1)
	m, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat(secret, 100<<10/len(secret))
	for _, tc := range []struct{ in, path, rule string }{
		{`{"key":"` + secret + `"}`, "input.key", "does not match the pattern"},
		{`{"short":"` + secret + `"}`, "input.short", "must be at most 10 characters"},
		{`{"short":"` + huge + `"}`, "input.short", "must be at most 10 characters"},
		{`{"long":"` + secret + `"}`, "input.long", "must be at least 100000 characters"},
		{`{"color":"` + secret + `"}`, "input.color", "must be one of the allowed values"},
		{`{"fixed":"` + secret + `"}`, "input.fixed", "must be the one allowed value"},
		{`{"either":"` + secret + `"}`, "input.either", "must match exactly one of the alternatives, but matches more"},
		{`{"any":"` + secret + `"}`, "input.any", "want an integer, got a string"},
		{`{"never":"` + secret + `"}`, "input.never", "matches what the schema forbids"},
		{`{"num":12345.678}`, "input.num", "must be at most 2.5"},
		{`{"list":["` + secret + `","` + secret + `"]}`, "input.list", "must have at most 1 item"},
		{`{"` + secret + `":1}`, "input", `unexpected property "` + secret + `"`},
		{`{"` + huge + `":1}`, "input", `unexpected property "AKIA-INPUT-SECRET-1234AKIA-INPUT-SECRET-1234AKIA-INPUT-SECRET…"`},
		{`{"key": "` + secret + `"`, "input", "not valid JSON"},
		{`"` + secret, "input", "not valid JSON"},
	} {
		err := m.ValidateInput([]byte(tc.in))
		var se *SchemaError
		if !errors.As(err, &se) {
			t.Errorf("%.60s: %v, want a *SchemaError", tc.in, err)
			continue
		}
		if se.Path != tc.path || !strings.HasPrefix(se.Rule, tc.rule) || se.Message != se.Rule {
			t.Errorf("%.60s: path %q rule %q message %q, want %q %q", tc.in, se.Path, se.Rule, se.Message, tc.path, tc.rule)
		}
		if len(err.Error()) > maxPathLen+maxRuleLen+2 {
			t.Errorf("%.60s: error is %d bytes", tc.in, len(err.Error()))
		}
		// A key is a name and may be quoted (cut short); a value never is.
		if !strings.Contains(tc.rule, "unexpected property") && strings.Contains(err.Error(), "AKIA") {
			t.Errorf("%.60s: error quotes the value: %v", tc.in, err)
		}
	}
}

// Finding 14: the library's own words ("'oneOf' failed, subschemas 0, 1 matched") and Go
// type names never reach a user.
func TestErrorsSpeakTheUsersWords(t *testing.T) {
	m, err := Parse([]byte(strings.Replace(goodWasm, "    count: {type: integer}\n", "    count: {oneOf: [{type: integer}, {type: number}]}\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, in := range []string{`{"url":"x","count":3}`, `{"url":"x","count":"3"}`, `{"url":1}`, `[`, `{}`} {
		if err := m.ValidateInput([]byte(in)); err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	for _, doc := range []string{
		with(t, "  cpu: 1\n", "  cpu: [1]\n"),
		with(t, "  timeout: 10s\n", "  timeout: {a: 1}\n"),
		with(t, "    count: {type: integer}\n", "    count: {type: integer, minimum: x}\n"),
		with(t, "capabilities:\n", "capabilities:\n  netwrok: []\n"),
		goodWasm + "input: 1\n",
	} {
		if _, err := Parse([]byte(doc)); err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) != 10 {
		t.Fatalf("got %d errors, want 10: %q", len(msgs), msgs)
	}
	for _, msg := range msgs {
		t.Log(msg)
		for _, bad := range []string{"'oneOf'", "subschemas", "manifest.", "struct", "[]string", "map[", "float64", "int64", "jsonschema", "yaml.", "*"} {
			if strings.Contains(msg, bad) {
				t.Errorf("%q holds %q", msg, bad)
			}
		}
	}
}
