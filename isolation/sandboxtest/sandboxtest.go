// Package sandboxtest is the contract every isolation.Sandbox keeps, written as a test
// suite: limits and what their zero values mean, a timeout that covers the same work
// in every sandbox, output and log caps, the caller's cancel and the kill switch,
// memory, failing skills, egress and its records, and nothing left behind.
//
// A sandbox proves it keeps the contract with one test that calls Run with a Factory:
//
//	func TestContract(t *testing.T) { sandboxtest.Run(t, myFactory{}) }
//
// The Factory makes the sandbox and the skills the suite calls, in the sandbox's own
// form. Every skill reads an Input (JSON on stdin) naming a Behaviour; the program in
// testdata/skill does all of them and builds for any GOOS (BuildSkill): a WASI module
// for the wasm sandbox (isolation/wasm/contract_test.go), a static Linux binary in a
// FROM scratch image for the container sandbox (isolation/container/contract_test.go).
//
// A third sandbox runs the suite the same way:
//   - New returns it configured as the engine would (with its egress path, without
//     warm instances, so every case exercises a fresh one);
//   - Skill packages BuildSkill's output in its form (a Kubernetes sandbox: the
//     container image), and Unprepared a copy it has never seen;
//   - Serve returns an origin its skills reach through its egress path when granted
//     (ServeLoopback when that path leaves from this machine);
//   - Leftovers lists what it still holds of ended calls (pods, jobs, goroutines);
//   - StopTime says how long it needs past a call's end to stop and clean up.
//
// A sandbox that runs other kinds of code supplies its own skills that honour Input.
// The suite runs its cases one after another on one sandbox, so Leftovers can look at
// everything the sandbox holds; it closes the sandbox at the end. It takes about the
// DefaultTimeout (the zero-timeout case waits for it) plus a second per case.
package sandboxtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// Behaviour is what the suite asks a skill to do.
type Behaviour string

// The behaviours a skill must perform, selected by Input.Do.
const (
	Echo   Behaviour = "echo"   // write the whole input to stdout
	Stdout Behaviour = "stdout" // write N bytes to stdout in one write
	Stderr Behaviour = "stderr" // write N bytes to stderr in one write
	Sleep  Behaviour = "sleep"  // sleep forever
	Spin   Behaviour = "spin"   // loop forever, never calling out
	Fail   Behaviour = "fail"   // write FailLine to stderr and exit with FailCode
	Alloc  Behaviour = "alloc"  // allocate and touch N bytes, then write {"allocated":N}
	// Fetch makes Count (at least 1) GET requests to URL, one after another, through
	// whatever way out the sandbox gives (its host functions, its egress proxy), and
	// writes a JSON list of Fetched, one per request. A refused request is an entry
	// with an Error or a non-2xx Status, never the end of the skill.
	Fetch Behaviour = "fetch"
)

// Input is the JSON a skill reads on stdin.
type Input struct {
	Do    Behaviour `json:"do"`
	N     int64     `json:"n,omitempty"`
	URL   string    `json:"url,omitempty"`
	Count int       `json:"count,omitempty"`
}

// Fetched is one request's outcome as the Fetch skill saw it.
type Fetched struct {
	Status int    `json:"status,omitempty"`
	Body   string `json:"body,omitempty"`
	Error  string `json:"error,omitempty"`
}

// What the Fail behaviour writes and exits with.
const (
	FailLine = "contract: failing on purpose"
	FailCode = 3
)

// UnpreparedTimeout is the timeout of the call of Factory.Unprepared's skill: its
// preparation (compile, image load) must take longer than this.
const UnpreparedTimeout = 100 * time.Millisecond

// Factory supplies the sandbox under test and its skills.
type Factory interface {
	// New returns the sandbox to test. Run calls it once and closes the sandbox.
	New(t *testing.T) isolation.Sandbox
	// Skill returns a skill that performs b when its input is an Input naming b. It
	// may be one skill for every behaviour. A Fetch call always has a network grant
	// except in the case that checks a call without one.
	Skill(t *testing.T, b Behaviour) isolation.Skill
	// Unprepared returns a skill performing Echo that the sandbox has never run nor
	// prepared, whose preparation takes clearly longer than UnpreparedTimeout (a
	// module not compiled yet, an image not loaded yet).
	Unprepared(t *testing.T) isolation.Skill
	// Serve makes h reachable by the sandbox's skills when granted, and returns its
	// base URL ("http://host:port", host an IP literal). ServeLoopback serves for a
	// sandbox whose egress leaves from this machine.
	Serve(t *testing.T, h http.Handler) string
	// Leftovers describes what the sandbox still holds or runs for calls that have
	// ended (containers, goroutines in the runtime); "" when nothing. What it keeps
	// on purpose for later calls (compiled code, a skill's network) is not a call's
	// leftover until the sandbox is closed: with closed set, Leftovers describes
	// everything the sandbox created that still exists. The suite asks again until it
	// is "" or StopTime has passed.
	Leftovers(t *testing.T, closed bool) string
	// StopTime is the most the sandbox takes, past a call's end (its timeout, the
	// caller's cancel), to stop the skill and return; and, past Run's return, to
	// remove what the call created. The suite allows it past every deadline.
	StopTime() time.Duration
}

// ServeLoopback serves h on 127.0.0.1 for the test's lifetime.
func ServeLoopback(t *testing.T, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

// SkillDir returns the directory of the suite's skill program (testdata/skill).
func SkillDir(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", "github.com/skillbox-dev/skillbox/isolation/sandboxtest").Output()
	if err != nil {
		t.Fatalf("find the sandboxtest package: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "testdata", "skill")
}

// BuildSkill builds the suite's skill program for goos/goarch into out, statically
// linked. tags are build tags: "skillbox_net" gives the wasip1 build the network host
// functions (and so makes it need a network grant).
func BuildSkill(t testing.TB, goos, goarch, out string, tags ...string) {
	t.Helper()
	build(t, goos, goarch, out, nil, tags)
}

// BuildReactorSkill builds the suite's skill program as a WASI reactor
// (-buildmode=c-shared): _initialize once, then its skillbox_handle export once per
// call, for a sandbox that keeps initialised instances.
func BuildReactorSkill(t testing.TB, out string, tags ...string) {
	t.Helper()
	build(t, "wasip1", "wasm", out, []string{"-buildmode=c-shared"}, tags)
}

func build(t testing.TB, goos, goarch, out string, flags, tags []string) {
	t.Helper()
	args := append([]string{"build", "-trimpath", "-o", out}, flags...)
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command("go", append(args, SkillDir(t))...)
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the contract skill for %s/%s: %v\n%s", goos, goarch, err, b)
	}
}

// suite is one Run: the sandbox, its factory and the skills already asked for.
type suite struct {
	f      Factory
	sb     isolation.Sandbox
	mu     sync.Mutex
	skills map[Behaviour]isolation.Skill
}

// base is a budget no case reaches unless it means to.
func base() isolation.Limits {
	return isolation.Limits{Timeout: time.Minute, Memory: 64 << 20, Output: 1 << 20, Logs: 64 << 10, CPU: 1}
}

// Run runs the contract suite against the sandbox f makes.
func Run(t *testing.T, f Factory) {
	s := &suite{f: f, sb: f.New(t), skills: map[Behaviour]isolation.Skill{}}
	closed := false
	defer func() {
		if !closed {
			_ = s.sb.Close(context.Background())
		}
	}()
	cases := []struct {
		name string
		run  func(t *testing.T, s *suite)
	}{
		{"echo", testEcho},
		{"concurrent calls keep apart", testConcurrent},
		{"zero output is DefaultOutput", testZeroOutput},
		{"zero logs is DefaultLogs", testZeroLogs},
		{"zero memory is DefaultMemory", testZeroMemory},
		{"zero timeout is DefaultTimeout", testZeroTimeout},
		{"output cap", testOutputCap},
		{"log cap", testLogCap},
		{"timeout ends a sleeping skill", func(t *testing.T, s *suite) { testTimeout(t, s, Sleep) }},
		{"timeout ends a spinning skill", func(t *testing.T, s *suite) { testTimeout(t, s, Spin) }},
		{"timeout covers preparation", testTimeoutCoversPreparation},
		{"timeouts at every stage leave nothing", testTimeoutAnywhere},
		{"caller deadline", testCallerDeadline},
		{"caller cancel", testCancel},
		{"kill switch", testKill},
		{"memory over budget", testMemory},
		{"skill failure", testFailure},
		{"egress: granted origin", testEgressGranted},
		{"egress: origin not granted", testEgressNotGranted},
		{"egress: request budget", testEgressBudget},
		{"egress: zero requests with a grant", testEgressZeroRequests},
		{"egress: zero response is DefaultResponse", testEgressZeroResponse},
		{"egress: no grant, no request", testEgressNoGrant},
	}
	left := false // a case left something behind: later cases would only repeat it
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if left {
				t.Skip("skipped: an earlier case left something behind")
			}
			c.run(t, s)
			left = !s.requireNothingLeft(t, false)
		})
	}
	t.Run("close", func(t *testing.T) {
		closed = true
		if err := s.sb.Close(context.Background()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s.requireNothingLeft(t, true)
	})
}

func (s *suite) skill(t *testing.T, b Behaviour) isolation.Skill {
	s.mu.Lock()
	defer s.mu.Unlock()
	sk, ok := s.skills[b]
	if !ok {
		sk = s.f.Skill(t, b)
		// Made ready first, as install does for an installed skill, so that a case's
		// budget is its call's (compiling a Go module can take a minute on a loaded
		// machine). "timeout covers preparation" uses an unprepared skill instead.
		if p, isPreparer := s.sb.(isolation.Preparer); isPreparer {
			if err := p.Prepare(context.Background(), sk); err != nil {
				t.Fatalf("prepare the %v skill: %v", b, err)
			}
		}
		s.skills[b] = sk
	}
	return sk
}

// call builds a call of the behaviour's skill.
func (s *suite) call(t *testing.T, in Input, lim isolation.Limits) isolation.Call {
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	return isolation.Call{ID: "contract-" + randomID(), Skill: s.skill(t, in.Do), Input: raw, Limits: lim}
}

// run runs call and returns what came back and how long Run took. A call gets a
// caller's deadline well past its timeout, so a sandbox that ignores the timeout
// fails its case (on the time Run took) instead of hanging the suite.
func (s *suite) run(ctx context.Context, call isolation.Call) (isolation.Result, time.Duration, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, call.Limits.WithDefaults().Timeout+2*s.f.StopTime()+5*time.Second)
		defer cancel()
	}
	start := time.Now()
	res, err := s.sb.Run(ctx, call)
	return res, time.Since(start), err
}

// requireNothingLeft waits up to StopTime for Leftovers to be empty, and says whether
// it became so.
func (s *suite) requireNothingLeft(t *testing.T, closed bool) bool {
	t.Helper()
	deadline := time.Now().Add(s.f.StopTime())
	for {
		left := s.f.Leftovers(t, closed)
		if left == "" {
			return true
		}
		if time.Now().After(deadline) {
			t.Errorf("left behind %s after the calls ended: %s", s.f.StopTime(), left)
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// requireOK fails on a failed call, with its logs.
func requireOK(t *testing.T, res isolation.Result, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("Run: %v (reason %s; logs %q)", err, isolation.ReasonOf(err), tail(res.Logs))
	}
}

// requireReason fails unless err is an *isolation.Error with reason want.
func requireReason(t *testing.T, err error, want isolation.Reason) *isolation.Error {
	t.Helper()
	var ie *isolation.Error
	if !errors.As(err, &ie) {
		t.Fatalf("Run = %v, want an *isolation.Error with reason %s", err, want)
	}
	if ie.Reason != want {
		t.Fatalf("Run = %s (%v), want %s", ie.Reason, err, want)
	}
	return ie
}

// requireWithin fails unless d is at most bound plus the sandbox's StopTime.
func (s *suite) requireWithin(t *testing.T, what string, d, bound time.Duration) {
	t.Helper()
	if limit := bound + s.f.StopTime(); d > limit {
		t.Fatalf("%s: Run returned after %s, want at most %s (%s plus the sandbox's stop time)", what, d, limit, bound)
	}
}

func testEcho(t *testing.T, s *suite) {
	call := s.call(t, Input{Do: Echo}, base())
	res, _, err := s.run(context.Background(), call)
	requireOK(t, res, err)
	if !bytes.Equal(res.Output, call.Input) {
		t.Fatalf("output %q, want the input %q", res.Output, call.Input)
	}
	if res.Usage.OutputBytes != int64(len(res.Output)) || res.Usage.Wall <= 0 {
		t.Fatalf("usage %+v for %d output bytes", res.Usage, len(res.Output))
	}
}

// testConcurrent: calls running at once on one sandbox each get their own input and
// output.
func testConcurrent(t *testing.T, s *suite) {
	const n = 4
	errs := make(chan error, n)
	for i := range n {
		call := s.call(t, Input{Do: Stdout, N: int64(100 + i)}, base())
		go func() {
			res, err := s.sb.Run(context.Background(), call)
			switch {
			case err != nil:
				errs <- fmt.Errorf("call %d: %w", i, err)
			case string(res.Output) != strings.Repeat("o", 100+i):
				errs <- fmt.Errorf("call %d: output of %d bytes, want %d", i, len(res.Output), 100+i)
			default:
				errs <- nil
			}
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// capCase checks that a skill may write exactly limit bytes to the stream and that
// the byte after ends the call with reason, keeping the first limit bytes.
func capCase(t *testing.T, s *suite, b Behaviour, lim isolation.Limits, limit int64, reason isolation.Reason) {
	t.Helper()
	fill := "e" // what the skill writes, byte after byte
	kept := func(r isolation.Result) []byte { return r.Logs }
	if b == Stdout {
		fill = "o"
		kept = func(r isolation.Result) []byte { return r.Output }
	}
	res, _, err := s.run(context.Background(), s.call(t, Input{Do: b, N: limit}, lim))
	requireOK(t, res, err)
	if int64(len(kept(res))) != limit {
		t.Fatalf("%s of exactly the budget: kept %d bytes, want %d", b, len(kept(res)), limit)
	}
	res, _, err = s.run(context.Background(), s.call(t, Input{Do: b, N: limit + 1}, lim))
	requireReason(t, err, reason)
	if got := kept(res); int64(len(got)) != limit || strings.Trim(string(got), fill) != "" {
		t.Fatalf("%s one byte over the budget: kept %d bytes (%.40q), want the first %d", b, len(got), got, limit)
	}
}

func testZeroOutput(t *testing.T, s *suite) {
	lim := base()
	lim.Output = 0
	capCase(t, s, Stdout, lim, isolation.DefaultOutput, isolation.ReasonOutput)
}

func testZeroLogs(t *testing.T, s *suite) {
	lim := base()
	lim.Logs = 0
	capCase(t, s, Stderr, lim, isolation.DefaultLogs, isolation.ReasonLogs)
}

func testOutputCap(t *testing.T, s *suite) {
	lim := base()
	lim.Output = 1000
	capCase(t, s, Stdout, lim, 1000, isolation.ReasonOutput)
}

func testLogCap(t *testing.T, s *suite) {
	lim := base()
	lim.Logs = 1000
	capCase(t, s, Stderr, lim, 1000, isolation.ReasonLogs)
}

// testZeroMemory: a zero memory budget is DefaultMemory: a quarter of it can be
// used, twice it cannot (neither "nothing" nor "unlimited").
func testZeroMemory(t *testing.T, s *suite) {
	lim := base()
	lim.Memory = 0
	res, _, err := s.run(context.Background(), s.call(t, Input{Do: Alloc, N: isolation.DefaultMemory / 4}, lim))
	requireOK(t, res, err)
	res, _, err = s.run(context.Background(), s.call(t, Input{Do: Alloc, N: 2 * isolation.DefaultMemory}, lim))
	if err == nil {
		t.Fatalf("allocated %d bytes under a zero memory budget (output %q), want MEMORY at DefaultMemory (%d)", 2*isolation.DefaultMemory, res.Output, isolation.DefaultMemory)
	}
	requireReason(t, err, isolation.ReasonMemory)
}

// testZeroTimeout: a zero timeout is DefaultTimeout, not "no timeout".
func testZeroTimeout(t *testing.T, s *suite) {
	lim := base()
	lim.Timeout = 0
	_, took, err := s.run(context.Background(), s.call(t, Input{Do: Sleep}, lim))
	requireReason(t, err, isolation.ReasonTimeout)
	if took < isolation.DefaultTimeout {
		t.Fatalf("a zero timeout ended the call after %s, want DefaultTimeout (%s)", took, isolation.DefaultTimeout)
	}
	s.requireWithin(t, "zero timeout", took, isolation.DefaultTimeout)
}

func testTimeout(t *testing.T, s *suite, b Behaviour) {
	lim := base()
	lim.Timeout = 500 * time.Millisecond
	_, took, err := s.run(context.Background(), s.call(t, Input{Do: b}, lim))
	requireReason(t, err, isolation.ReasonTimeout)
	if took < lim.Timeout {
		t.Fatalf("timed out after %s, before the budget of %s", took, lim.Timeout)
	}
	s.requireWithin(t, "timeout", took, lim.Timeout)
}

// testTimeoutCoversPreparation: the timeout runs from Run's entry, so a call whose
// preparation alone is longer ends with TIMEOUT at its budget, not after preparing.
func testTimeoutCoversPreparation(t *testing.T, s *suite) {
	call := s.call(t, Input{Do: Echo}, base())
	call.Skill = s.f.Unprepared(t)
	call.Limits.Timeout = UnpreparedTimeout
	res, took, err := s.run(context.Background(), call)
	if err == nil {
		t.Fatalf("a call whose preparation is longer than its timeout of %s succeeded after %s (output %.60q): the timer did not cover preparation",
			UnpreparedTimeout, took, res.Output)
	}
	requireReason(t, err, isolation.ReasonTimeout)
	s.requireWithin(t, "timeout during preparation", took, UnpreparedTimeout)
}

// testTimeoutAnywhere ends calls at many points of their way (preparing, creating,
// starting, running, replying): each ends in time, as a success or TIMEOUT, and
// nothing is left behind by any of them (checked after the case).
func testTimeoutAnywhere(t *testing.T, s *suite) {
	for d := time.Millisecond; d < 200*time.Millisecond; d += 20 * time.Millisecond {
		lim := base()
		lim.Timeout = d
		_, took, err := s.run(context.Background(), s.call(t, Input{Do: Sleep}, lim))
		requireReason(t, err, isolation.ReasonTimeout)
		s.requireWithin(t, "timeout of "+d.String(), took, d)
	}
}

func testCallerDeadline(t *testing.T, s *suite) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, took, err := s.run(ctx, s.call(t, Input{Do: Sleep}, base()))
	requireReason(t, err, isolation.ReasonTimeout)
	s.requireWithin(t, "caller deadline", took, 500*time.Millisecond)
}

// cancelAfter runs a sleeping skill and cancels it with cancel after a while.
func (s *suite) cancelAfter(t *testing.T, ctx context.Context, cancel func()) error {
	t.Helper()
	time.AfterFunc(300*time.Millisecond, cancel)
	_, took, err := s.run(ctx, s.call(t, Input{Do: Sleep}, base()))
	s.requireWithin(t, "cancel", took, 300*time.Millisecond)
	return err
}

func testCancel(t *testing.T, s *suite) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	requireReason(t, s.cancelAfter(t, ctx, cancel), isolation.ReasonCanceled)
}

// testKill: the engine's kill switch cancels a call's context with a cause of its
// own; the call ends as CANCELED.
func testKill(t *testing.T, s *suite) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	errKilled := errors.New("skill disabled by the kill switch")
	requireReason(t, s.cancelAfter(t, ctx, func() { cancel(errKilled) }), isolation.ReasonCanceled)
}

func testMemory(t *testing.T, s *suite) {
	lim := base()
	lim.Memory = 32 << 20
	res, _, err := s.run(context.Background(), s.call(t, Input{Do: Alloc, N: 128 << 20}, lim))
	if err == nil {
		t.Fatalf("allocated 128 MiB under a 32 MiB budget (output %q)", res.Output)
	}
	requireReason(t, err, isolation.ReasonMemory)
}

// testFailure: a non-zero exit is SKILL_FAILED, saying the code; the skill's last
// stderr line is its own words (SkillMsg, for the caller only), never in Error(), which
// is what gets logged; the logs are kept.
func testFailure(t *testing.T, s *suite) {
	res, _, err := s.run(context.Background(), s.call(t, Input{Do: Fail}, base()))
	ie := requireReason(t, err, isolation.ReasonSkillFailed)
	if !regexp.MustCompile(`\b` + strconv.Itoa(FailCode) + `\b`).MatchString(ie.Error()) {
		t.Fatalf("failure %q does not say the exit code %d", ie.Error(), FailCode)
	}
	if strings.Contains(ie.Error(), FailLine) {
		t.Fatalf("failure %q carries the skill's stderr: it would reach the audit log", ie.Error())
	}
	if !strings.Contains(isolation.SkillMessage(err), FailLine) {
		t.Fatalf("the skill's words %q lack its last stderr line %q", isolation.SkillMessage(err), FailLine)
	}
	if !strings.Contains(string(res.Logs), FailLine) {
		t.Fatalf("logs %q lack the skill's stderr", res.Logs)
	}
}

// origin is a served test origin that counts the requests it saw.
type origin struct {
	url  string
	hits atomic.Int32
}

func (s *suite) serve(t *testing.T, body string) *origin {
	o := &origin{}
	o.url = s.f.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		fmt.Fprint(w, body)
	}))
	return o
}

// grant is the network grant of exactly o's origin.
func (o *origin) grant(t *testing.T) []manifest.Origin {
	u, err := url.Parse(o.url)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("origin %s: %v", o.url, err)
	}
	return []manifest.Origin{{Scheme: u.Scheme, Host: u.Hostname(), Port: port}}
}

func (o *origin) hostPort(t *testing.T) string {
	u, err := url.Parse(o.url)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// fetch runs the Fetch skill under a grant of grantTo with the given budget.
func (s *suite) fetch(t *testing.T, grantTo *origin, rawURL string, count, requests int, response int64) ([]Fetched, isolation.Result) {
	t.Helper()
	lim := base()
	lim.Requests, lim.Response = requests, response
	call := s.call(t, Input{Do: Fetch, URL: rawURL, Count: count}, lim)
	call.Grant.Network = grantTo.grant(t)
	res, _, err := s.run(context.Background(), call)
	requireOK(t, res, err)
	var out []Fetched
	if err := json.Unmarshal(res.Output, &out); err != nil || len(out) != max(count, 1) {
		t.Fatalf("fetch output %q: %v, want %d results", res.Output, err, max(count, 1))
	}
	return out, res
}

func testEgressGranted(t *testing.T, s *suite) {
	o := s.serve(t, "pong")
	out, res := s.fetch(t, o, o.url+"/ping", 1, 5, 1<<20)
	if out[0].Status != http.StatusOK || out[0].Body != "pong" {
		t.Fatalf("granted origin: %+v", out[0])
	}
	if len(res.Egress) != 1 || !res.Egress[0].Allowed || res.Egress[0].Status != http.StatusOK || res.Egress[0].Denial != "" {
		t.Fatalf("egress records %+v, want one allowed request with status 200", res.Egress)
	}
	if res.Usage.Requests != 1 || res.Usage.DeniedRequests != 0 || o.hits.Load() != 1 {
		t.Fatalf("usage %+v, origin saw %d requests; want 1 made, 0 denied, 1 seen", res.Usage, o.hits.Load())
	}
}

func testEgressNotGranted(t *testing.T, s *suite) {
	granted, other := s.serve(t, "granted"), s.serve(t, "must not be reached")
	out, res := s.fetch(t, granted, other.url+"/x", 1, 5, 1<<20)
	if other.hits.Load() != 0 || out[0].Body == "must not be reached" {
		t.Fatalf("an origin not granted was reached: %+v", out[0])
	}
	if len(res.Egress) != 1 || res.Egress[0].Allowed || res.Egress[0].Denial != isolation.DenialNotGranted ||
		!strings.Contains(res.Egress[0].URL, other.hostPort(t)) || res.Egress[0].Reason == "" {
		t.Fatalf("egress records %+v, want one refusal NOT_GRANTED of %s with a reason", res.Egress, other.url)
	}
	if res.Usage.Requests != 0 || res.Usage.DeniedRequests != 1 {
		t.Fatalf("usage %+v, want 0 made and 1 denied", res.Usage)
	}
}

func testEgressBudget(t *testing.T, s *suite) {
	o := s.serve(t, "pong")
	out, res := s.fetch(t, o, o.url+"/", 3, 2, 1<<20)
	if o.hits.Load() != 2 || out[2].Status == http.StatusOK {
		t.Fatalf("a request budget of 2: the origin saw %d requests; results %+v", o.hits.Load(), out)
	}
	if len(res.Egress) != 3 || !res.Egress[0].Allowed || !res.Egress[1].Allowed ||
		res.Egress[2].Allowed || res.Egress[2].Denial != isolation.DenialRequestLimit {
		t.Fatalf("egress records %+v, want two allowed and one REQUEST_LIMIT", res.Egress)
	}
	if res.Usage.Requests != 2 || res.Usage.DeniedRequests != 1 {
		t.Fatalf("usage %+v, want 2 made and 1 denied", res.Usage)
	}
}

// testEgressZeroRequests: zero requests with a network grant means none may be made.
func testEgressZeroRequests(t *testing.T, s *suite) {
	o := s.serve(t, "pong")
	out, res := s.fetch(t, o, o.url+"/", 1, 0, 1<<20)
	if o.hits.Load() != 0 || out[0].Status == http.StatusOK {
		t.Fatalf("zero requests: the origin saw %d requests; result %+v", o.hits.Load(), out[0])
	}
	if len(res.Egress) != 1 || res.Egress[0].Allowed || res.Egress[0].Denial != isolation.DenialRequestLimit {
		t.Fatalf("egress records %+v, want one REQUEST_LIMIT", res.Egress)
	}
}

// testEgressZeroResponse: a zero response budget is DefaultResponse, not "no body".
func testEgressZeroResponse(t *testing.T, s *suite) {
	body := strings.Repeat("r", 64<<10)
	o := s.serve(t, body)
	out, res := s.fetch(t, o, o.url+"/", 1, 1, 0)
	if out[0].Status != http.StatusOK || out[0].Body != body {
		t.Fatalf("a 64 KiB body under a zero response budget (DefaultResponse %d): status %d, %d bytes, error %q",
			isolation.DefaultResponse, out[0].Status, len(out[0].Body), out[0].Error)
	}
	if len(res.Egress) != 1 || !res.Egress[0].Allowed || res.Egress[0].Bytes != int64(len(body)) {
		t.Fatalf("egress records %+v, want one allowed request of %d bytes", res.Egress, len(body))
	}
}

// testEgressNoGrant: without a network grant no request leaves, whether the sandbox
// refuses the call or the skill finds no way out.
func testEgressNoGrant(t *testing.T, s *suite) {
	o := s.serve(t, "must not be reached")
	lim := base()
	lim.Requests = 5
	res, _, err := s.run(context.Background(), s.call(t, Input{Do: Fetch, URL: o.url + "/"}, lim))
	if o.hits.Load() != 0 {
		t.Fatalf("a call without a network grant reached the origin (output %q)", res.Output)
	}
	if err != nil {
		requireReason(t, err, isolation.ReasonNotGranted)
	}
	for _, r := range res.Egress {
		if r.Allowed {
			t.Fatalf("an allowed request without a grant: %+v", r)
		}
	}
}

func tail(b []byte) string {
	if len(b) > 300 {
		b = b[len(b)-300:]
	}
	return string(b)
}

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
