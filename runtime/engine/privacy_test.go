package engine_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

// patternBody refuses an input "in" and an output "out" that are not lower-case letters.
// The echo module returns its input, so {"out": X} passes the input schema and then
// fails the output schema.
const patternBody = `input:
  type: object
  properties: {in: {type: string, pattern: "^[a-z]+$"}}
output:
  type: object
  properties: {out: {type: string, pattern: "^[a-z]+$"}}
limits: {timeout: 5s, memory: 16MiB}
`

// Schema failures name the field and a rule, never the value: a secret in the input or
// the output reaches neither the audit log nor the caller's error, and a huge input
// makes a small record.
func TestSchemaFailuresKeepValuesOut(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm", Body: patternBody}, nil)

	const inSecret, outSecret = "AKIA-INPUT-SECRET-1234", "AKIA-OUTPUT-SECRET-5678"
	_, err := f.eng.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{"in":"` + inSecret + `"}`), Caller: "test"})
	if reasonOf(t, err) != engine.ReasonInvalidInput {
		t.Fatalf("input: %v", err)
	}
	var ee *engine.Error
	if !asEngineError(err, &ee) || ee.Field != "input.in" || !strings.Contains(err.Error(), "invalid input: input.in: does not match the pattern") {
		t.Fatalf("input refusal does not name the field and the rule: %v (field %q)", err, ee.Field)
	}
	if strings.Contains(err.Error(), inSecret) {
		t.Fatalf("the refusal quotes the input: %v", err)
	}

	res, err := f.eng.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{"out":"` + outSecret + `"}`), Caller: "test"})
	// The call ran, so what it left comes back, but never the withheld output.
	if reasonOf(t, err) != engine.ReasonInvalidOutput || res == nil || res.Output != nil || strings.Contains(string(res.Logs), outSecret) {
		t.Fatalf("output: %v, result %+v: want INVALID_OUTPUT and the output withheld", err, res)
	}
	if !asEngineError(err, &ee) || ee.Field != "output.out" || strings.Contains(err.Error(), outSecret) {
		t.Fatalf("output refusal: %v (field %q)", err, ee.Field)
	}

	// A 100 KB input, refused: the record and the error stay small.
	big := strings.Repeat("A", 100<<10)
	_, err = f.eng.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{"in":"` + big + `"}`), Caller: "test"})
	if reasonOf(t, err) != engine.ReasonInvalidInput || len(err.Error()) > engine.MaxMessageBytes {
		t.Fatalf("big input: %d-byte error: %.200v", len(err.Error()), err)
	}
	// And a 100 KB pin (caller text too).
	_, err = f.eng.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{}`), Caller: "test", Pin: strings.Repeat("A", 100<<10)})
	if reasonOf(t, err) != engine.ReasonNotFound || len(err.Error()) > engine.MaxMessageBytes {
		t.Fatalf("big pin: %d-byte error: %.200v", len(err.Error()), err)
	}

	refused := 0
	for _, e := range auditEvents(t, f.eng) {
		if e.Event == engine.EventInvokeRefused || e.Event == "invoke.end" {
			if msg, _ := e.Details["message"].(string); len(msg) > engine.MaxMessageBytes || msg == "" {
				t.Fatalf("%s record message of %d bytes: %.200q", e.Event, len(msg), msg)
			}
		}
		if e.Event == engine.EventInvokeRefused {
			refused++
		}
	}
	if refused != 3 {
		t.Fatalf("%d refusal records, want 3", refused)
	}
	raw, err := os.ReadFile(f.eng.AuditPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{inSecret, outSecret, "AKIA", strings.Repeat("A", 600)} {
		if strings.Contains(string(raw), secret) {
			t.Fatalf("the audit log holds %.40q", secret)
		}
	}
	for i, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if len(line) > 2<<10 {
			t.Fatalf("audit line %d is %d bytes", i+1, len(line))
		}
	}
}

// OneLine bounds any text to one line of valid UTF-8 within MaxMessageBytes.
func TestOneLine(t *testing.T) {
	for _, s := range []string{
		"short", "two\nlines\r\x1b[31m", strings.Repeat("é", 1000), strings.Repeat("\xff", 2000),
		strings.Repeat("x", engine.MaxMessageBytes), strings.Repeat("x", engine.MaxMessageBytes+1),
	} {
		got := engine.OneLine(s)
		if len(got) > engine.MaxMessageBytes || !utf8.ValidString(got) || strings.ContainsAny(got, "\n\r\x1b") {
			t.Fatalf("OneLine(%.20q) = %d bytes %.40q", s, len(got), got)
		}
		if len(s) <= engine.MaxMessageBytes && utf8.ValidString(s) && !strings.ContainsAny(s, "\n\r\x1b") && got != s {
			t.Fatalf("OneLine changed a line that fits: %q", got)
		}
	}
}

func asEngineError(err error, target **engine.Error) bool {
	e, ok := err.(*engine.Error)
	if ok {
		*target = e
	}
	return ok
}
