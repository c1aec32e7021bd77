package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

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

// An input with a key given twice is refused INVALID_INPUT, naming the object and the
// key, for a skill under oversight before anyone is asked: no request is parked, so no
// approver is shown one value while the skill would read the other (sec-doors 1).
func TestRepeatedKeyRefusedBeforeOversight(t *testing.T) {
	f := overseen(t, []string{alice}, time.Minute)
	for _, tc := range []struct{ input, field, want string }{
		{`{"amount":5,"payee":"alice","memo":"` + strings.Repeat("invoice ", 600) + `","amount":1000000,"payee":"mallory"}`,
			"input", `invalid input: input: key "amount" appears twice in this object`},
		{`{"lines":[{"amount":5},{"amount":5,"amount":1000000}]}`,
			"input.lines[1]", `invalid input: input.lines[1]: key "amount" appears twice in this object`},
	} {
		r := result(t, f.call(agent, []byte(tc.input)))
		var ee *engine.Error
		if !asEngineError(r.err, &ee) || ee.Reason != engine.ReasonInvalidInput || ee.Field != tc.field || ee.Msg != tc.want {
			t.Errorf("%.60s: %v, want INVALID_INPUT %s %q", tc.input, r.err, tc.field, tc.want)
		}
	}
	if p := f.eng.Pending(); len(p) != 0 || runs(t, f.eng) != 0 {
		t.Errorf("pending %d, runs %d; want the calls refused before parking", len(p), runs(t, f.eng))
	}
	for _, e := range approvalEvents(t, f.eng) {
		if strings.HasPrefix(e, engine.EventApprovalRequested) {
			t.Errorf("an approver was asked: %s", e)
		}
	}
}
