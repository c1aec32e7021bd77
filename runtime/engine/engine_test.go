package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/reasons"
	"github.com/skillbox-dev/skillbox/review"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

const echoBody = `input: {type: object}
output: {type: object}
limits: {timeout: 5s, memory: 16MiB}
`

type fixture struct {
	home *testkit.Home
	eng  *engine.Engine
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	home := testkit.NewHome(t)
	return &fixture{home: home, eng: home.Engine(t, engine.Config{})}
}

// installApprove installs a package and approves it with grant (nil: as asked).
func (f *fixture) installApprove(t *testing.T, p testkit.Package, grant *approval.Grant) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.eng.Install(ctx, f.home.Build(t, p), "test"); err != nil {
		t.Fatal(err)
	}
	c, err := f.eng.Candidate(ctx, p.Name, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Approve(ctx, c, grant, "test"); err != nil {
		t.Fatal(err)
	}
}

func reasonOf(t *testing.T, err error) reasons.Reason {
	t.Helper()
	if err == nil {
		t.Fatal("call succeeded; want an error")
	}
	return engine.ReasonOf(err)
}

func auditEvents(t *testing.T, eng *engine.Engine) []audit.Entry {
	t.Helper()
	if err := audit.Verify(eng.AuditPath()); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	data, err := os.ReadFile(eng.AuditPath())
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Entry
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var e audit.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestInvokeRunsApprovedSkillAndRecordsIt(t *testing.T) {
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody}, nil)
	res, err := f.eng.Invoke(context.Background(), engine.Request{Skill: "echo", Input: []byte(`{"a":1}`), Caller: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Output) != `{"a":1}` {
		t.Fatalf("output %q", res.Output)
	}
	var events []string
	for _, e := range auditEvents(t, f.eng) {
		events = append(events, e.Event)
	}
	want := "install approve invoke.start invoke.end"
	if got := strings.Join(events, " "); got != want {
		t.Fatalf("audit events %q, want %q", got, want)
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm",
		Body: "input:\n  type: object\n  required: [n]\n  properties: {n: {type: integer}}\noutput: {type: object}\n"},
		&approval.Grant{Callers: []string{"alice"}})
	if _, err := f.eng.Install(ctx, f.home.Build(t, testkit.Package{Name: "other", Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody}), "test"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		req    engine.Request
		reason reasons.Reason
	}{
		{"not installed", engine.Request{Skill: "nope", Input: []byte(`{}`), Caller: "alice"}, engine.ReasonNotFound},
		{"installed but not approved", engine.Request{Skill: "other", Input: []byte(`{}`), Caller: "alice"}, engine.ReasonNotApproved},
		{"caller not in callers", engine.Request{Skill: "echo", Input: []byte(`{"n":1}`), Caller: "mallory"}, engine.ReasonCallerNotAllowed},
		{"input fails the schema", engine.Request{Skill: "echo", Input: []byte(`{"n":"x"}`), Caller: "alice"}, engine.ReasonInvalidInput},
		{"input is not JSON", engine.Request{Skill: "echo", Input: []byte(`{`), Caller: "alice"}, engine.ReasonInvalidInput},
		{"pinned to a version not approved", engine.Request{Skill: "echo", Pin: "9.9.9", Input: []byte(`{"n":1}`), Caller: "alice"}, engine.ReasonNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.eng.Invoke(ctx, tc.req)
			if got := reasonOf(t, err); got != tc.reason {
				t.Fatalf("reason %s (%v), want %s", got, err, tc.reason)
			}
		})
	}
	_, err := f.eng.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{"n":"x"}`), Caller: "alice"})
	var ee *engine.Error
	if !errors.As(err, &ee) || ee.Field == "" || !strings.Contains(err.Error(), "n") {
		t.Fatalf("invalid input should name the field: %v (field %q)", err, ee.Field)
	}
	if ee.AuditID == "" {
		t.Fatal("a refused call carries no audit id")
	}
	// Every refusal is in the audit log, with its caller and reason.
	var refused []string
	for _, e := range auditEvents(t, f.eng) {
		if e.Event == engine.EventInvokeRefused {
			refused = append(refused, e.Caller+":"+e.Reason)
		}
	}
	if len(refused) != len(cases)+1 || refused[2] != "mallory:"+string(engine.ReasonCallerNotAllowed) {
		t.Fatalf("refusal records %v", refused)
	}
}

func TestOutputMustMatchSchema(t *testing.T) {
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm",
		Body: "input: {type: object}\noutput:\n  type: object\n  required: [result]\n"}, nil)
	_, err := f.eng.Invoke(context.Background(), engine.Request{Skill: "echo", Input: []byte(`{"other":1}`), Caller: "t"})
	if got := reasonOf(t, err); got != engine.ReasonInvalidOutput {
		t.Fatalf("reason %s (%v)", got, err)
	}
}

// The operator narrows the grant to one origin of the two asked: the other is denied
// by the sandbox, before any byte reaches it, and the denial is audited.
func TestNarrowedGrantCannotBeExceeded(t *testing.T) {
	var hitsA, hitsB atomic.Int32
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hitsA.Add(1); fmt.Fprint(w, "from A") }))
	defer a.Close()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hitsB.Add(1); fmt.Fprint(w, "from B") }))
	defer b.Close()
	body := fmt.Sprintf("input: {type: object}\noutput: {type: object}\ncapabilities:\n  network: [%q, %q]\nlimits: {requests: 5}\n", a.URL, b.URL)
	originA, err := manifest.ParseOrigin(a.URL)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "raw", Version: "1.0.0", Module: "testdata/rawhttp.wasm", Body: body},
		&approval.Grant{Network: []manifest.Origin{originA}})
	ctx := context.Background()

	res, err := f.eng.Invoke(ctx, engine.Request{Skill: "raw", Input: []byte(fmt.Sprintf(`{"method":"GET","url":%q}`, a.URL+"/x")), Caller: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.Output), `"status":200`) || hitsA.Load() != 1 {
		t.Fatalf("granted origin: output %s, hits %d", res.Output, hitsA.Load())
	}

	res, err = f.eng.Invoke(ctx, engine.Request{Skill: "raw", Input: []byte(fmt.Sprintf(`{"method":"GET","url":%q}`, b.URL+"/x")), Caller: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.Output), "EGRESS_DENIED") {
		t.Fatalf("asked-for but not granted origin: output %s", res.Output)
	}
	if hitsB.Load() != 0 {
		t.Fatalf("denied server was reached %d times", hitsB.Load())
	}
	if res.Usage.DeniedRequests != 1 || len(res.Egress) != 1 || res.Egress[0].Allowed {
		t.Fatalf("usage %+v egress %+v", res.Usage, res.Egress)
	}
	var denied int
	for _, e := range auditEvents(t, f.eng) {
		if e.Event == audit.EventEgressDenied {
			denied++
		}
	}
	if denied != 1 {
		t.Fatalf("%d egress.denied records, want 1", denied)
	}
}

// A new version asking for a new origin is not run until approved, and the review
// shows exactly that origin as new.
func TestBumpedVersionNeedsApproval(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	v1 := "input: {type: object}\noutput: {type: object}\ncapabilities:\n  network: [\"https://api.example.com\"]\n"
	v2 := "input: {type: object}\noutput: {type: object}\ncapabilities:\n  network: [\"https://api.example.com\", \"https://evil.example.net\"]\n"
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm", Body: v1}, nil)
	if _, err := f.eng.Install(ctx, f.home.Build(t, testkit.Package{Name: "echo", Version: "1.1.0", Module: "testdata/echo.wasm", Body: v2}), "test"); err != nil {
		t.Fatal(err)
	}
	_, err := f.eng.Invoke(ctx, engine.Request{Skill: "echo", Pin: "1.1.0", Input: []byte(`{}`), Caller: "t"})
	if got := reasonOf(t, err); got != engine.ReasonNotApproved {
		t.Fatalf("reason %s (%v)", got, err)
	}
	// Unpinned calls keep running the approved version.
	res, err := f.eng.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{}`), Caller: "t"})
	if err != nil || res.Version != "1.0.0" {
		t.Fatalf("unpinned call: %v, version %v", err, res)
	}
	c, err := f.eng.Candidate(ctx, "echo", "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Entry.Version != "1.1.0" || c.Approved == nil || c.Approved.Version != "1.0.0" {
		t.Fatalf("candidate %s, approved %+v", c.Entry.Version, c.Approved)
	}
	ch := review.Diff(c.Approved.Manifest, c.Entry.Manifest)
	if len(ch.AddedOrigins) != 1 || ch.AddedOrigins[0] != "https://evil.example.net" {
		t.Fatalf("new origins %v", ch.AddedOrigins)
	}
	if _, err := f.eng.Approve(ctx, c, nil, "test"); err != nil {
		t.Fatal(err)
	}
	res, err = f.eng.Invoke(ctx, engine.Request{Skill: "echo", Pin: "1.1.0", Input: []byte(`{}`), Caller: "t"})
	if err != nil || res.Version != "1.1.0" {
		t.Fatalf("after approval: %v", err)
	}
}

func TestGrantWiderThanManifestIsRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if _, err := f.eng.Install(ctx, f.home.Build(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody}), "t"); err != nil {
		t.Fatal(err)
	}
	c, err := f.eng.Candidate(ctx, "echo", "")
	if err != nil {
		t.Fatal(err)
	}
	o, _ := manifest.ParseOrigin("https://api.example.com")
	_, err = f.eng.Approve(ctx, c, &approval.Grant{Network: []manifest.Origin{o}}, "t")
	if err == nil || !strings.Contains(err.Error(), "grant.network[0]") {
		t.Fatalf("wider grant: %v", err)
	}
	if _, err := os.Stat(approval.Path(f.home.Dir, "echo")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("approval file written for a refused grant: %v", err)
	}
}

func TestTamperedStoreIsRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody}, nil)
	info, err := f.eng.Get(ctx, "echo", "")
	if err != nil {
		t.Fatal(err)
	}
	mod := filepath.Join(info.Entry.Dir, "module.wasm")
	data, err := os.ReadFile(mod)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 1
	os.Chmod(mod, 0o600)
	if err := os.WriteFile(mod, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Reload(ctx, "test"); err != nil { // drops the verification cache
		t.Fatal(err)
	}
	_, err = f.eng.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{}`), Caller: "t"})
	if got := reasonOf(t, err); got != engine.ReasonVerifyFailed {
		t.Fatalf("reason %s (%v)", got, err)
	}
}

func TestInstallRefusesUnsignedAndUntrusted(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	dir := f.home.Build(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody})
	other := testkit.NewHome(t) // a key nobody trusts
	other.Sign(t, dir)
	if _, err := f.eng.Install(ctx, dir, "t"); err == nil || !strings.Contains(err.Error(), "untrusted") {
		t.Fatalf("untrusted key: %v", err)
	}
	os.Remove(filepath.Join(dir, "skill.sigstore.json"))
	if _, err := f.eng.Install(ctx, dir, "t"); err == nil {
		t.Fatal("unsigned package installed")
	}
	if list, _ := f.eng.List(ctx); len(list) != 0 {
		t.Fatalf("store holds %d skills after refused installs", len(list))
	}
}

// The kill switch ends a call in flight, refuses new calls until enabled, and the
// state survives a restart.
func TestDisableEndsCallInFlight(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "spin", Version: "1.0.0", Module: "testdata/loop.wasm",
		Body: "input: {type: object}\noutput: {type: object}\nlimits: {timeout: 60s}\n"}, nil)
	errc := make(chan error, 1)
	var ended atomic.Int64
	go func() {
		_, err := f.eng.Invoke(ctx, engine.Request{Skill: "spin", Input: []byte(`{}`), Caller: "t"})
		ended.Store(time.Now().UnixNano())
		errc <- err
	}()
	waitFor(t, func() bool { return len(f.eng.Calls()) == 1 })
	start := time.Now()
	n, err := f.eng.Disable(ctx, "spin", "test", "runaway")
	if err != nil || n != 1 {
		t.Fatalf("disable: %d calls, %v", n, err)
	}
	// The promise is an order, not a speed: Disable returns once the call has ended
	// (it is no longer in flight).
	if calls := f.eng.Calls(); len(calls) != 0 {
		t.Fatalf("Disable returned with the cancelled call still in flight: %+v", calls)
	}
	err = <-errc
	if got := reasonOf(t, err); got != engine.ReasonDisabled {
		t.Fatalf("reason %s (%v)", got, err)
	}
	t.Logf("disable ended the call in %v", time.Duration(ended.Load()-start.UnixNano()))
	if _, err := f.eng.Invoke(ctx, engine.Request{Skill: "spin", Input: []byte(`{}`), Caller: "t"}); reasonOf(t, err) != engine.ReasonDisabled {
		t.Fatalf("new call while disabled: %v", err)
	}
	// A restart keeps it disabled.
	f.eng.Close()
	eng2, err := engine.Open(ctx, engine.Config{Home: f.home.Dir})
	if err != nil {
		t.Fatal(err)
	}
	defer eng2.Close()
	if info, err := eng2.Get(ctx, "spin", ""); err != nil || !info.Disabled {
		t.Fatalf("after restart: %v %+v", err, info)
	}
	if err := eng2.Enable(ctx, "spin", "test"); err != nil {
		t.Fatal(err)
	}
	if info, _ := eng2.Get(ctx, "spin", ""); info.Disabled {
		t.Fatal("still disabled after enable")
	}
}

// A call that cannot be recorded does not happen.
func TestCallFailsWhenAuditCannotBeWritten(t *testing.T) {
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody}, nil)
	f.eng.Close() // closes the audit log
	_, err := f.eng.Invoke(context.Background(), engine.Request{Skill: "echo", Input: []byte(`{}`), Caller: "t"})
	if got := reasonOf(t, err); got != engine.ReasonAuditFailed {
		t.Fatalf("reason %s (%v)", got, err)
	}
}

func TestBudgetsAreMinOfManifestGrantAndCaller(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "spin", Version: "1.0.0", Module: "testdata/loop.wasm",
		Body: "input: {type: object}\noutput: {type: object}\nlimits: {timeout: 10s}\n"},
		&approval.Grant{Limits: manifest.Limits{Timeout: manifest.Duration(2 * time.Second)}})
	start := time.Now()
	_, err := f.eng.Invoke(ctx, engine.Request{Skill: "spin", Input: []byte(`{}`), Caller: "t",
		Limits: manifest.Limits{Timeout: manifest.Duration(50 * time.Millisecond)}})
	if got := reasonOf(t, err); got != "TIMEOUT" {
		t.Fatalf("reason %s (%v)", got, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("call took %v: the caller's lower timeout was not applied", took)
	}
}

// A caller cannot "lower" a budget to a value a sandbox reads as no limit: a CPU share
// below the floor is refused as invalid input, and the refusal is recorded.
func TestCallerLimitsBelowAFloorAreRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm",
		Body: "input: {type: object}\noutput: {type: object}\n"}, nil)
	_, err := f.eng.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{}`), Caller: "t",
		Limits: manifest.Limits{CPU: 1e-6}})
	if got := reasonOf(t, err); got != engine.ReasonInvalidInput {
		t.Fatalf("reason %s (%v), want %s", got, err, engine.ReasonInvalidInput)
	}
	if msg := err.Error(); !strings.Contains(msg, "cpu") || strings.Contains(msg, "\n") {
		t.Fatalf("message %q: want one line naming cpu", msg)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// A skill that fails after a denied request is reported with the denial as the
// reason (PERMISSION_DENIED on the wire), not as a bare SKILL_FAILED.
func TestFailureAfterDenialNamesTheDenial(t *testing.T) {
	var hits atomic.Int32
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer b.Close()
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "failing", Version: "1.0.0", Module: "testdata/failhttp.wasm",
		Body: "input: {type: object}\noutput: {type: object}\ncapabilities:\n  network: [\"http://127.0.0.1:1\"]\nlimits: {requests: 5}\n"}, nil)
	_, err := f.eng.Invoke(context.Background(), engine.Request{Skill: "failing",
		Input: []byte(fmt.Sprintf(`{"method":"GET","url":%q}`, b.URL)), Caller: "t"})
	if got := reasonOf(t, err); got != "EGRESS_DENIED" || !strings.Contains(err.Error(), b.URL) {
		t.Fatalf("reason %s: %v", got, err)
	}
	if hits.Load() != 0 {
		t.Fatal("the denied server was reached")
	}
}

// A skill's concurrency limit holds: a call that cannot get a slot within the
// queue wait is refused with BUSY rather than queued without bound.
func TestConcurrencyLimitRefusesWithBusy(t *testing.T) {
	ctx := context.Background()
	home := testkit.NewHome(t)
	eng := home.Engine(t, engine.Config{MaxConcurrent: 1, QueueWait: 20 * time.Millisecond})
	f := &fixture{home: home, eng: eng}
	f.installApprove(t, testkit.Package{Name: "spin", Version: "1.0.0", Module: "testdata/loop.wasm",
		Body: "input: {type: object}\noutput: {type: object}\nlimits: {timeout: 60s}\n"}, nil)
	callCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := eng.Invoke(callCtx, engine.Request{Skill: "spin", Input: []byte(`{}`), Caller: "t"})
		done <- err
	}()
	waitFor(t, func() bool { return len(eng.Calls()) == 1 })
	_, err := eng.Invoke(ctx, engine.Request{Skill: "spin", Input: []byte(`{}`), Caller: "t"})
	if got := reasonOf(t, err); got != engine.ReasonBusy {
		t.Fatalf("second call: reason %s (%v)", got, err)
	}
	cancel()
	if got := reasonOf(t, <-done); got != "CANCELED" {
		t.Fatalf("cancelled call: reason %s", got)
	}
}

// Installing the same package twice is not an error and changes nothing; a copy of it
// whose code was changed is refused as a new install would be, not reported installed.
func TestInstallTwice(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	dir := f.home.Build(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody})
	first, err := f.eng.Install(ctx, dir, "t")
	if err != nil || first.Already {
		t.Fatalf("first install: %+v %v", first, err)
	}
	again, err := f.eng.Install(ctx, dir, "t")
	if err != nil || !again.Already || again.Signer == nil || again.Entry.ManifestDigest != first.Entry.ManifestDigest {
		t.Fatalf("second install: %+v %v", again, err)
	}
	module := filepath.Join(dir, "module.wasm")
	code, err := os.ReadFile(module)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(module, append(code, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	tampered, err := f.eng.Install(ctx, dir, "t")
	if err == nil || !strings.Contains(err.Error(), "code-digest check failed") {
		t.Fatalf("install of the same skill.yaml over changed code: %+v %v; want a code-digest refusal", tampered, err)
	}
}

// A caller that gives up (deadline) after the skill's request was denied does not
// erase the call from the audit log: start, denial and end are all recorded.
func TestCallerDeadlineStillRecordsTheCall(t *testing.T) {
	var hits atomic.Int32
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer b.Close()
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "stuck", Version: "1.0.0", Module: "testdata/denyloop.wasm",
		Body: "input: {type: object}\noutput: {type: object}\ncapabilities:\n  network: [\"http://127.0.0.1:1\"]\nlimits: {requests: 5, timeout: 60s}\n"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := f.eng.Invoke(ctx, engine.Request{Skill: "stuck", Input: []byte(fmt.Sprintf(`{"method":"GET","url":%q}`, b.URL)), Caller: "t"})
	if got := reasonOf(t, err); got == engine.ReasonAuditFailed {
		t.Fatalf("the call was not recorded: %v", err)
	}
	var events []string
	for _, e := range auditEvents(t, f.eng) {
		if e.Skill == "stuck" && strings.HasPrefix(e.Event, "invoke") || e.Event == audit.EventEgressDenied {
			events = append(events, e.Event)
		}
	}
	if got := strings.Join(events, " "); got != "invoke.start egress.denied invoke.end" {
		t.Fatalf("audit events %q", got)
	}
	if hits.Load() != 0 {
		t.Fatal("the denied server was reached")
	}
}

// An audit commit delay past the maximum is refused when the engine opens, naming the
// bound; the maximum itself is accepted.
func TestAuditCommitDelayBounded(t *testing.T) {
	ctx := context.Background()
	_, err := engine.Open(ctx, engine.Config{Home: t.TempDir(), AuditCommitDelay: engine.MaxAuditCommitDelay + time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "at most 100ms") {
		t.Fatalf("a 101ms commit delay: %v", err)
	}
	eng, err := engine.Open(ctx, engine.Config{Home: t.TempDir(), AuditCommitDelay: engine.MaxAuditCommitDelay})
	if err != nil {
		t.Fatal(err)
	}
	eng.Close()
}

// A torn last line of the audit log stops the engine with one sentence naming the log
// and the fix, in the operator's words (serve and run NAME print it as it is).
func TestTornAuditLogNamedPlainly(t *testing.T) {
	home := t.TempDir()
	log := filepath.Join(home, "audit", "audit.jsonl")
	if err := os.MkdirAll(filepath.Dir(log), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(log, []byte(`{"seq":1,"ti`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := engine.Open(context.Background(), engine.Config{Home: home})
	want := "audit log " + log + ": line 1 is torn"
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "run `skillbox audit recover` to move it aside") {
		t.Fatalf("engine.Open over a torn log: %v; want %q…", err, want)
	}
}
