package engine_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

// stdinErrBody is the manifest of stdinerr.wasm, which copies its input to stderr and
// exits 1, as a skill that says "bad input: %q" does.
const stdinErrBody = `input:
  type: object
  additionalProperties: false
  properties: {in: {type: string}}
output: {type: object}
limits: {timeout: 5s, memory: 16MiB}
`

// A failed skill's own words (the end of its stderr, which echoes its input) reach its
// caller and no audit record: the invoke.end record says only how it ended.
func TestSkillStderrStaysOutOfTheAuditLog(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.installApprove(t, testkit.Package{Name: "errecho", Version: "1.0.0", Module: "testdata/stdinerr.wasm", Body: stdinErrBody}, nil)
	const secret = "AKIA-INPUT-SECRET-1234"
	input := `{"in":"` + secret + `"}`
	_, err := f.eng.Invoke(ctx, engine.Request{Skill: "errecho", Input: []byte(input), Caller: "test"})
	if reasonOf(t, err) != isolation.ReasonSkillFailed {
		t.Fatalf("want SKILL_FAILED, got %v", err)
	}
	if got := engine.CallerMessage(err); !strings.Contains(got, input) {
		t.Errorf("the caller's message %q lacks the skill's last stderr line", got)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("the error, which is logged, quotes the skill's stderr: %v", err)
	}

	raw, err := os.ReadFile(f.eng.AuditPath())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), secret) {
		t.Fatalf("the audit log holds the skill's stderr, and so its input:\n%s", raw)
	}
	var end string
	for _, e := range auditEvents(t, f.eng) {
		if e.Event == "invoke.end" {
			end, _ = e.Details["message"].(string)
		}
	}
	if want := fmt.Sprintf("skill exited with code 1 after writing %d bytes to stderr", len(input)); end != want {
		t.Fatalf("invoke.end message %q, want %q", end, want)
	}
}

// A call that ran and failed comes back with what it left beside its error (its id,
// audit record, logs and usage; no output), so every door can show the caller why;
// a call refused before it ran comes back with nothing.
func TestFailedCallReturnsWhatItLeft(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.installApprove(t, testkit.Package{Name: "errecho", Version: "1.0.0", Module: "testdata/stdinerr.wasm", Body: stdinErrBody}, nil)
	input := `{"in":"bad input: no name"}`
	res, err := f.eng.Invoke(ctx, engine.Request{Skill: "errecho", Input: []byte(input), Caller: "test"})
	if reasonOf(t, err) != isolation.ReasonSkillFailed {
		t.Fatalf("want SKILL_FAILED, got %v", err)
	}
	if res == nil {
		t.Fatal("a call that ran and failed returned no result")
	}
	var ee *engine.Error
	if !errors.As(err, &ee) || res.CallID == "" || res.AuditID == "" || res.AuditID != ee.AuditID || res.Version != "1.0.0" {
		t.Errorf("result %+v beside error %+v: want the call's id, its audit record and version", res, ee)
	}
	if string(res.Logs) != input || res.Output != nil || res.Usage.Wall <= 0 {
		t.Errorf("logs %q, output %q, usage %+v: want the skill's stderr, no output, the time it ran", res.Logs, res.Output, res.Usage)
	}

	res, err = f.eng.Invoke(ctx, engine.Request{Skill: "errecho", Input: []byte(`{"in":1}`), Caller: "test"})
	if reasonOf(t, err) != engine.ReasonInvalidInput || res != nil {
		t.Fatalf("a refused call: %+v, %v; want INVALID_INPUT and no result", res, err)
	}
}

// A call the kill switch ends comes back with its id and usage but nothing of what the
// skill wrote or fetched: the operator switched it off.
func TestDisabledCallReturnsNothingOfTheSkill(t *testing.T) {
	var hits atomic.Int32
	origin := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer origin.Close()
	f := newFixture(t)
	ctx := context.Background()
	f.installApprove(t, testkit.Package{Name: "stuck", Version: "1.0.0", Module: "testdata/denyloop.wasm",
		Body: fmt.Sprintf("input: {type: object}\noutput: {type: object}\ncapabilities:\n  network: [%q]\nlimits: {requests: 5, timeout: 60s}\n", origin.URL)}, nil)
	type outcome struct {
		res *engine.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := f.eng.Invoke(ctx, engine.Request{Skill: "stuck", Input: []byte(fmt.Sprintf(`{"method":"GET","url":%q}`, origin.URL)), Caller: "t"})
		done <- outcome{res, err}
	}()
	waitFor(t, func() bool { return hits.Load() == 1 }) // its request went out; now it spins
	if _, err := f.eng.Disable(ctx, "stuck", "test", "leaks"); err != nil {
		t.Fatal(err)
	}
	o := <-done
	if reasonOf(t, o.err) != engine.ReasonDisabled {
		t.Fatalf("want DISABLED, got %v", o.err)
	}
	if o.res == nil || o.res.CallID == "" || o.res.Egress != nil || o.res.Logs != nil || o.res.Output != nil {
		t.Fatalf("result %+v: want the call's id and usage, no egress, logs or output", o.res)
	}
}
