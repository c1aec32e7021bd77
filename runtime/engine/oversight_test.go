package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/reasons"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

const (
	agent = "token:agent"
	alice = "token:alice"
)

// overseen installs echo ("pay") under oversight by approvers, waiting at most wait.
func overseen(t *testing.T, approvers []string, wait time.Duration) *fixture {
	t.Helper()
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "pay", Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody},
		&approval.Grant{Oversight: &approval.Oversight{Approvers: approvers, Wait: manifest.Duration(wait), Reason: "money leaves the company"}})
	return f
}

type callResult struct {
	res *engine.Result
	err error
}

// call starts a call of pay as caller with input; its result arrives on the channel.
func (f *fixture) call(caller string, input []byte) <-chan callResult {
	ch := make(chan callResult, 1)
	go func() {
		res, err := f.eng.Invoke(context.Background(), engine.Request{Skill: "pay", Input: input, Caller: caller, Door: "grpc"})
		ch <- callResult{res, err}
	}()
	return ch
}

// waitPending waits until n requests are pending and returns them.
func waitPending(t *testing.T, eng *engine.Engine, n int) []engine.PendingRequest {
	t.Helper()
	var got []engine.PendingRequest
	waitFor(t, func() bool { got = eng.Pending(); return len(got) == n })
	return got
}

func result(t *testing.T, ch <-chan callResult) callResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("the call had not returned after 20s")
	}
	return callResult{}
}

// runs counts the calls of pay that reached the sandbox.
func runs(t *testing.T, eng *engine.Engine) int {
	n := 0
	for _, e := range auditEvents(t, eng) {
		if e.Skill == "pay" && e.Event == audit.EventInvokeStart {
			n++
		}
	}
	return n
}

// approvalEvents lists the approval.* records, as "event/outcome/reason/caller".
func approvalEvents(t *testing.T, eng *engine.Engine) []string {
	var out []string
	for _, e := range auditEvents(t, eng) {
		if strings.HasPrefix(e.Event, "approval.") {
			out = append(out, e.Event+"/"+e.Outcome+"/"+e.Reason+"/"+e.Caller)
		}
	}
	return out
}

func wantReason(t *testing.T, what string, err error, want reasons.Reason, words string) {
	t.Helper()
	if got := reasonOf(t, err); got != want || !strings.Contains(err.Error(), words) {
		t.Fatalf("%s: %s: %v; want %s with %q", what, got, err, want, words)
	}
}

// A call of a skill under oversight does not run before a decision; the allowed
// request runs exactly the bytes it was parked with (the in-process caller's slice
// changed after parking; a second call with another input stays its own request); a
// decision naming another request's digest, and a replay of a decision, are refused;
// a denial ends the call with the approver's reason and nothing runs.
func TestOversightAllowRunsExactlyThatRequest(t *testing.T) {
	f := overseen(t, []string{alice}, time.Hour)
	input := []byte(`{"amount":100}`)
	first := f.call(agent, input)
	p := waitPending(t, f.eng, 1)[0]
	copy(input, `{"amount":999}`) // the caller's buffer changes after the request was made
	second := f.call(agent, []byte(`{"amount":5000}`))
	reqs := waitPending(t, f.eng, 2)

	if n := runs(t, f.eng); n != 0 || len(f.eng.Calls()) != 0 {
		t.Fatalf("before any decision: %d runs, %d calls in flight", n, len(f.eng.Calls()))
	}
	if string(p.Input) != `{"amount":100}` || p.Caller != agent || p.Skill != "pay" || p.Door != "grpc" ||
		p.TimeLeft(time.Now()) <= 0 || p.Reason != "money leaves the company" || !strings.HasPrefix(p.Digest, "sha256:") {
		t.Fatalf("pending request %+v", p)
	}
	for _, w := range []string{"nothing but compute on its input", "oversight: every call waits for a decision by token:alice, at most 1h", "signer:   " + testkit.SignerName} {
		if !strings.Contains(p.Review, w) {
			t.Errorf("review text lacks %q:\n%s", w, p.Review)
		}
	}
	other := reqs[1]
	if reqs[0].ID != p.ID || other.ID == p.ID {
		t.Fatalf("pending %v", reqs)
	}

	// The second request's id with the digest the approver saw for the first.
	err := f.eng.Decide(context.Background(), engine.Decision{ID: other.ID, By: alice, Allow: true, Digest: p.Digest})
	wantReason(t, "a decision naming another request's digest", err, engine.ReasonInvalidInput, "digest differs")

	if err := f.eng.Decide(context.Background(), engine.Decision{ID: p.ID, By: alice, Allow: true, Digest: p.Digest, Reason: "invoice 42"}); err != nil {
		t.Fatal(err)
	}
	r := result(t, first)
	if r.err != nil || string(r.res.Output) != `{"amount":100}` || r.res.CallID != p.ID {
		t.Fatalf("allowed call: %+v, %v; want the output of exactly the approved input", r.res, r.err)
	}
	err = f.eng.Decide(context.Background(), engine.Decision{ID: p.ID, By: alice, Allow: true})
	wantReason(t, "a replay of the decision", err, engine.ReasonNotPending, "no call waits")
	if got := waitPending(t, f.eng, 1); got[0].ID != other.ID {
		t.Fatalf("still pending: %v", got)
	}

	err = f.eng.Decide(context.Background(), engine.Decision{ID: other.ID, By: alice})
	wantReason(t, "a denial without a reason", err, engine.ReasonInvalidInput, "needs a reason")
	if err := f.eng.Decide(context.Background(), engine.Decision{ID: other.ID, By: alice, Reason: "over the limit"}); err != nil {
		t.Fatal(err)
	}
	r = result(t, second)
	wantReason(t, "denied call", r.err, engine.ReasonApprovalDenied, "token:alice denied the call of pay: over the limit")
	var ee *engine.Error
	if !errors.As(r.err, &ee) || ee.AuditID == "" {
		t.Fatalf("a denied call names its record: %v", r.err)
	}
	if n := runs(t, f.eng); n != 1 {
		t.Fatalf("%d runs; want only the allowed one", n)
	}
	want := []string{
		"approval.requested/pending//" + agent, "approval.requested/pending//" + agent,
		"approval.refused/refused/INVALID_INPUT/" + alice,
		"approval.allowed/allowed//" + alice,
		"approval.refused/refused/NOT_PENDING/" + alice,
		"approval.refused/refused/INVALID_INPUT/" + alice,
		"approval.denied/refused/APPROVAL_DENIED/" + alice,
	}
	if got := approvalEvents(t, f.eng); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("approval records\n%v\nwant\n%v", got, want)
	}
	for _, e := range auditEvents(t, f.eng) {
		if e.Event == engine.EventApprovalRequested && strings.Contains(string(must(json.Marshal(e))), "amount") {
			t.Fatalf("the input is in the audit log: %+v", e)
		}
	}
}

// The approver may not be the caller, and someone not listed may not decide; both
// refusals are recorded, and the request still waits for a real approver.
func TestOversightSelfApprovalAndNonApproverAreRefused(t *testing.T) {
	f := overseen(t, []string{alice, agent}, time.Hour)
	done := f.call(agent, []byte(`{"x":1}`))
	p := waitPending(t, f.eng, 1)[0]
	err := f.eng.Decide(context.Background(), engine.Decision{ID: p.ID, By: agent, Allow: true})
	wantReason(t, "the caller approving its own call", err, engine.ReasonNotApprover, "may not decide its own call")
	err = f.eng.Decide(context.Background(), engine.Decision{ID: p.ID, By: "token:mallory", Allow: true})
	wantReason(t, "a non-approver", err, engine.ReasonNotApprover, "token:mallory is not an approver of pay")
	err = f.eng.Decide(context.Background(), engine.Decision{ID: p.ID, By: "", Allow: true})
	wantReason(t, "nobody", err, engine.ReasonNotApprover, "")
	if n := runs(t, f.eng); n != 0 || len(waitPending(t, f.eng, 1)) != 1 {
		t.Fatalf("after refused decisions: %d runs", n)
	}
	if err := f.eng.Decide(context.Background(), engine.Decision{ID: p.ID, By: alice, Allow: true}); err != nil {
		t.Fatal(err)
	}
	if r := result(t, done); r.err != nil {
		t.Fatal(r.err)
	}
	refused := 0
	for _, ev := range approvalEvents(t, f.eng) {
		if strings.HasPrefix(ev, "approval.refused/refused/NOT_APPROVER/") {
			refused++
		}
	}
	if refused != 3 {
		t.Fatalf("%d refused decisions recorded, want 3: %v", refused, approvalEvents(t, f.eng))
	}
}

// A call whose caller is its skill's only approver could never be allowed (no caller
// decides its own call): it is refused at once, never listed, never run;
// another caller's call of the same skill still waits for that approver.
func TestOversightCallerAloneApproverRefusedAtOnce(t *testing.T) {
	f := overseen(t, []string{alice}, time.Hour)
	r := result(t, f.call(alice, []byte(`{}`)))
	wantReason(t, "the only approver calling", r.err, engine.ReasonCallerNotAllowed, "token:alice is the only approver of pay, and no caller may decide its own call")
	if n := runs(t, f.eng); n != 0 || len(f.eng.Pending()) != 0 {
		t.Fatalf("%d runs, %d pending", n, len(f.eng.Pending()))
	}
	done := f.call(agent, []byte(`{}`))
	p := waitPending(t, f.eng, 1)[0]
	if err := f.eng.Decide(context.Background(), engine.Decision{ID: p.ID, By: alice, Allow: true}); err != nil {
		t.Fatal(err)
	}
	if r := result(t, done); r.err != nil {
		t.Fatal(r.err)
	}
}

// A request nobody decides ends APPROVAL_EXPIRED when its wait runs out; a decision
// after that is refused and nothing runs.
func TestOversightExpiry(t *testing.T) {
	f := overseen(t, []string{alice}, time.Second)
	done := f.call(agent, []byte(`{}`))
	p := waitPending(t, f.eng, 1)[0]
	r := result(t, done)
	wantReason(t, "expired call", r.err, engine.ReasonApprovalExpired, "no approver decided the call of pay within 1s")
	err := f.eng.Decide(context.Background(), engine.Decision{ID: p.ID, By: alice, Allow: true})
	wantReason(t, "a decision after expiry", err, engine.ReasonNotPending, "")
	if n := runs(t, f.eng); n != 0 || len(f.eng.Pending()) != 0 {
		t.Fatalf("after expiry: %d runs, %d pending", n, len(f.eng.Pending()))
	}
	got := approvalEvents(t, f.eng)
	if len(got) != 3 || got[1] != "approval.expired/refused/APPROVAL_EXPIRED/"+agent {
		t.Fatalf("approval records %v", got)
	}
}

// The kill switch, a changed approval, the caller going away and a shutdown each end
// a pending request with their own reason and a record, and nothing runs; a reload
// that changes nothing leaves it waiting.
func TestOversightEndsFailClosed(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		end    func(t *testing.T, f *fixture)
		cancel bool
		reason reasons.Reason
		words  string
	}{
		{name: "disable", reason: engine.ReasonDisabled, words: "pay was disabled while the call waited for a decision: incident",
			end: func(t *testing.T, f *fixture) {
				if _, err := f.eng.Disable(ctx, "pay", "ops", "incident"); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "new grant", reason: engine.ReasonApprovalChanged, words: "the approval of pay changed while the call waited",
			end: func(t *testing.T, f *fixture) {
				c, err := f.eng.Candidate(ctx, "pay", "")
				if err != nil {
					t.Fatal(err)
				}
				g := &approval.Grant{Oversight: &approval.Oversight{Approvers: []string{"token:bob"}}}
				if _, err := f.eng.Approve(ctx, c, g, "ops"); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "grant edited on disk, then reload", reason: engine.ReasonApprovalChanged, words: "changed while the call waited",
			end: func(t *testing.T, f *fixture) {
				path := approval.Path(f.home.Dir, "pay")
				a, err := approval.Load(path)
				if err != nil {
					t.Fatal(err)
				}
				a.Grant.Oversight = nil // the operator lifts oversight: the waiting call is not run on the old request
				if err := approval.Save(path, a); err != nil {
					t.Fatal(err)
				}
				if _, err := f.eng.Reload(ctx, "ops"); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "shutdown", reason: engine.ReasonUnavailable, words: "the server shut down before the call was decided",
			end: func(t *testing.T, f *fixture) {
				if _, err := f.eng.Shutdown(ctx); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "caller gone", cancel: true, reason: "CANCELED", words: "the caller went away"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := overseen(t, []string{alice}, time.Hour)
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			done := make(chan callResult, 1)
			go func() {
				res, err := f.eng.Invoke(cctx, engine.Request{Skill: "pay", Input: []byte(`{}`), Caller: agent})
				done <- callResult{res, err}
			}()
			p := waitPending(t, f.eng, 1)[0]
			if _, err := f.eng.Reload(ctx, "ops"); err != nil { // the same files: nothing changes
				t.Fatal(err)
			}
			if got := f.eng.Pending(); len(got) != 1 {
				t.Fatalf("a reload that changed nothing ended the request: %v", got)
			}
			if c.cancel {
				cancel()
			} else {
				c.end(t, f)
			}
			r := result(t, done)
			wantReason(t, c.name, r.err, c.reason, c.words)
			err := f.eng.Decide(ctx, engine.Decision{ID: p.ID, By: alice, Allow: true})
			if c.name != "shutdown" {
				wantReason(t, "an allow after the end", err, engine.ReasonNotPending, "")
			}
			if n := runs(t, f.eng); n != 0 {
				t.Fatalf("%d runs after %s", n, c.name)
			}
			got := approvalEvents(t, f.eng)
			if len(got) < 2 || got[1] != "approval.ended/refused/"+string(c.reason)+"/"+agent {
				t.Fatalf("approval records %v", got)
			}
		})
	}
}

// WatchPending tells a watcher of each request parked and ended, and is closed when
// approvals stop.
func TestWatchPending(t *testing.T) {
	f := overseen(t, []string{alice}, time.Hour)
	changed, stop := f.eng.WatchPending()
	defer stop()
	done := f.call(agent, []byte(`{}`))
	waitSignal(t, changed)
	p := waitPending(t, f.eng, 1)[0]
	if err := f.eng.Decide(context.Background(), engine.Decision{ID: p.ID, By: alice, Allow: true}); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, changed)
	if r := result(t, done); r.err != nil {
		t.Fatal(r.err)
	}
	f.eng.StopApprovals()
	waitFor(t, func() bool {
		select {
		case _, ok := <-changed:
			return !ok
		default:
			return false
		}
	})
	_, err := f.eng.Invoke(context.Background(), engine.Request{Skill: "pay", Input: []byte(`{}`), Caller: agent})
	wantReason(t, "a call after approvals stopped", err, engine.ReasonUnavailable, "shutting down")
}

func waitSignal(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no change signalled within 10s")
	}
}

// Skills without oversight run as before: no request, no approval record.
func TestUnmarkedSkillIsNotParked(t *testing.T) {
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "pay", Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody}, nil)
	if r := result(t, f.call(agent, []byte(`{"a":1}`))); r.err != nil || string(r.res.Output) != `{"a":1}` {
		t.Fatalf("%+v %v", r.res, r.err)
	}
	if got := approvalEvents(t, f.eng); len(got) != 0 {
		t.Fatalf("approval records for an unmarked skill: %v", got)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
