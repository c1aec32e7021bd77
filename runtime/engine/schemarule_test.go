package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/reasons"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

// UX review D: a schema refusal through the engine names the rule the input breaks, as
// `skillbox run ./dir` does, not only "does not match the input schema"; and still
// never the value.
func TestSchemaRefusalNamesTheRule(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	body := `input:
  type: object
  properties:
    in: {type: string, pattern: "^[a-z]+$"}
    n: {type: integer, maximum: 5}
    s: {type: string, minLength: 1}
  required: [in]
output:
  type: object
  properties: {out: {type: string, maxLength: 3}}
limits: {timeout: 5s, memory: 16MiB}
`
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm", Body: body}, nil)
	const secret = "AKIA-RULE-SECRET-99"
	for _, tc := range []struct {
		input  string
		reason reasons.Reason
		field  string
		want   string
	}{
		{`{"in": 5}`, engine.ReasonInvalidInput, "input.in", "invalid input: input.in: want a string, got a number"},
		{`{"in": "a", "n": 123456789}`, engine.ReasonInvalidInput, "input.n", "invalid input: input.n: must be at most 5"},
		{`{"in": "a", "s": ""}`, engine.ReasonInvalidInput, "input.s", "invalid input: input.s: must be at least 1 character"},
		{`{"n": 1}`, engine.ReasonInvalidInput, "input.in", "invalid input: input.in: missing property"},
		{`{"in": "` + secret + `"}`, engine.ReasonInvalidInput, "input.in", "invalid input: input.in: does not match the pattern"},
		{`{"in": "a", "out": "` + secret + `"}`, engine.ReasonInvalidOutput, "output.out", "the skill's output was withheld: output.out: must be at most 3 characters"},
		{`{"in": `, engine.ReasonInvalidInput, "input", "invalid input: input: not valid JSON"},
	} {
		_, err := f.eng.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(tc.input), Caller: "test"})
		var ee *engine.Error
		if !asEngineError(err, &ee) || ee.Reason != tc.reason || ee.Field != tc.field || ee.Msg != tc.want {
			t.Errorf("%s: %v, want %s %s %q", tc.input, err, tc.reason, tc.field, tc.want)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "AKIA") {
			t.Errorf("%s: the refusal quotes the value: %v", tc.input, err)
		}
	}
}
