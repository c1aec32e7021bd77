package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/reasons"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/client"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
	"github.com/skillbox-dev/skillbox/runtime/server"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

const (
	echoWasm    = "../engine/testdata/echo.wasm"
	loopWasm    = "../engine/testdata/loop.wasm"
	rawhttpWasm = "../engine/testdata/rawhttp.wasm"
	echoBody    = "input: {type: object}\noutput: {type: object}\nlimits: {timeout: 5s, memory: 16MiB}\n"
	spinBody    = "input: {type: object}\noutput: {type: object}\nlimits: {timeout: 60s}\n"
)

// fixture is a skill home, an engine with a real wasm sandbox, and a gRPC server for it
// on a unix socket made by transport.Listen, with a client dialled by transport.Dial.
type fixture struct {
	home   *testkit.Home
	eng    *engine.Engine
	skills pb.SkillsClient
	admin  pb.AdminClient
	health healthpb.HealthClient
	srv    *server.Server
}

func newFixture(t testing.TB, sopts ...server.Option) *fixture {
	t.Helper()
	return newFixtureAt(t, testkit.NewHome(t), sopts...)
}

// newFixtureAt is newFixture over an existing home: another engine, with its own wasm
// sandbox, as after a restart of the server.
func newFixtureAt(t testing.TB, home *testkit.Home, sopts ...server.Option) *fixture {
	t.Helper()
	ctx := context.Background()
	eng := home.Engine(t, engine.Config{})

	// A short directory: a unix socket path must fit in 107 bytes.
	sockDir, err := os.MkdirTemp("", "sb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	addr := "unix://" + filepath.Join(sockDir, "s.sock")
	lis, opts, err := transport.Listen(ctx, transport.ServerConfig{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(append(opts, server.GRPCOptions()...)...)
	srv := server.New(eng, transport.Caller, sopts...)
	srv.Register(g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	cc, err := transport.Dial(ctx, transport.ClientConfig{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return &fixture{home: home, eng: eng, skills: pb.NewSkillsClient(cc), admin: pb.NewAdminClient(cc),
		health: healthpb.NewHealthClient(cc), srv: srv}
}

// install builds and signs a package with the home's trusted key and installs it.
func (f *fixture) install(t testing.TB, p testkit.Package) {
	t.Helper()
	if _, err := f.eng.Install(context.Background(), f.home.Build(t, p), "operator"); err != nil {
		t.Fatal(err)
	}
}

// installApprove installs p and approves it with grant (nil: as the manifest asks).
func (f *fixture) installApprove(t testing.TB, p testkit.Package, grant *approval.Grant) {
	t.Helper()
	f.install(t, p)
	ctx := context.Background()
	c, err := f.eng.Candidate(ctx, p.Name, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Approve(ctx, c, grant, "operator"); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) invoke(ctx context.Context, name, input string, lim *pb.Limits) (*pb.InvokeResponse, error) {
	return f.skills.Invoke(ctx, &pb.InvokeRequest{Name: name, InputJson: input, Limits: lim})
}

// detailOf returns the status code and the ErrorDetail of a failed call.
func detailOf(t *testing.T, err error) (codes.Code, *pb.ErrorDetail) {
	t.Helper()
	if err == nil {
		t.Fatal("call succeeded; want an error")
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("not a gRPC status: %v", err)
	}
	if ed := client.Detail(err); ed != nil {
		return st.Code(), ed
	}
	t.Fatalf("status %v carries no ErrorDetail", st)
	return 0, nil
}

func readAudit(t *testing.T, eng *engine.Engine) []audit.Entry {
	t.Helper()
	if err := audit.Verify(eng.AuditPath()); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	fh, err := os.Open(eng.AuditPath())
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []audit.Entry
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e audit.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// auditOf is the records of one event in the engine's audit log (whose chain must
// verify).
func auditOf(t *testing.T, eng *engine.Engine, event string) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	for _, e := range readAudit(t, eng) {
		if e.Event == event {
			out = append(out, e)
		}
	}
	return out
}

// countingListener is a TCP origin that only counts: connections accepted and bytes
// received. A denied request must leave both at zero.
type countingListener struct {
	net.Listener
	conns, bytes atomic.Int64
}

func newCountingOrigin(t *testing.T) *countingListener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			cl.conns.Add(1)
			go func() {
				defer c.Close()
				n, _ := io.Copy(io.Discard, c)
				cl.bytes.Add(n)
			}()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return cl
}

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	ts := httptest.NewServer(h)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// End to end: a key made, a package signed and trusted, installed, approved with a
// grant narrower than the manifest asks, called over gRPC on the unix socket. The
// granted origin is reached, the other one is denied without a byte sent to it, the
// audit chain verifies and the metrics show both calls and both decisions.
func TestEndToEndNarrowedGrant(t *testing.T) {
	var hitsA atomic.Int32
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hitsA.Add(1)
		fmt.Fprint(w, "from A")
	}))
	defer a.Close()
	b := newCountingOrigin(t)
	urlB := "http://" + b.Addr().String()

	f := newFixture(t)
	originA, err := manifest.ParseOrigin(a.URL)
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("input: {type: object}\noutput: {type: object}\ncapabilities:\n  network: [%q, %q]\nlimits: {requests: 5}\n", a.URL, urlB)
	f.installApprove(t, testkit.Package{Name: "raw", Version: "1.0.0", Module: rawhttpWasm, Body: body},
		&approval.Grant{Network: []manifest.Origin{originA}})
	ctx := context.Background()

	info, err := f.skills.Get(ctx, &pb.GetSkillRequest{Name: "raw"})
	if err != nil {
		t.Fatal(err)
	}
	if !info.GetApproved() || len(info.GetCapabilities().GetNetwork()) != 1 || info.GetSigner() == "" {
		t.Fatalf("Get: approved %v, network %v, signer %q", info.GetApproved(), info.GetCapabilities().GetNetwork(), info.GetSigner())
	}

	res, err := f.invoke(ctx, "raw", fmt.Sprintf(`{"method":"GET","url":%q}`, a.URL+"/x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.GetOutputJson(), `"status":200`) || hitsA.Load() != 1 {
		t.Fatalf("granted origin: output %s, hits %d", res.GetOutputJson(), hitsA.Load())
	}
	if res.GetAuditId() == "" || res.GetCallId() == "" || len(res.GetEgress()) != 1 || !res.GetEgress()[0].GetAllowed() {
		t.Fatalf("granted call: audit %q call %q egress %v", res.GetAuditId(), res.GetCallId(), res.GetEgress())
	}

	res, err = f.invoke(ctx, "raw", fmt.Sprintf(`{"method":"GET","url":%q}`, urlB+"/x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.GetOutputJson(), "EGRESS_DENIED") {
		t.Fatalf("asked-for but not granted origin: output %s", res.GetOutputJson())
	}
	if len(res.GetEgress()) != 1 || res.GetEgress()[0].GetAllowed() || res.GetUsage().GetDeniedRequests() != 1 {
		t.Fatalf("denied call: egress %v usage %v", res.GetEgress(), res.GetUsage())
	}
	time.Sleep(20 * time.Millisecond) // let a connection that should not exist be counted
	if c, n := b.conns.Load(), b.bytes.Load(); c != 0 || n != 0 {
		t.Fatalf("denied origin saw %d connections, %d bytes", c, n)
	}

	var starts, ends, denied int
	for _, e := range readAudit(t, f.eng) { // verifies the chain
		switch e.Event {
		case audit.EventInvokeStart:
			starts++
		case audit.EventInvokeEnd:
			ends++
			if e.Caller != transport.LocalCaller() {
				t.Errorf("invoke.end caller %q, want %q", e.Caller, transport.LocalCaller())
			}
		case audit.EventEgressDenied:
			denied++
		}
	}
	if starts != 2 || ends != 2 || denied != 1 {
		t.Fatalf("audit: %d starts, %d ends, %d egress.denied; want 2, 2, 1", starts, ends, denied)
	}

	text := scrape(t, f.eng.Metrics().Handler())
	for _, want := range []string{
		`skillbox_calls_total{door="grpc",outcome="ok",skill="raw"} 2`,
		`skillbox_egress_decisions_total{decision="allowed",skill="raw"} 1`,
		`skillbox_egress_decisions_total{decision="denied",skill="raw"} 1`,
		`skillbox_call_duration_seconds_count{door="grpc",skill="raw"} 2`,
		`skillbox_calls_in_flight{skill="raw"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// Every refusal reaches the client as the right status code with an ErrorDetail
// carrying the machine-readable reason.
func TestStatusCodesOverTheWire(t *testing.T) {
	f := newFixture(t)
	strict := "input:\n  type: object\n  required: [n]\n  properties: {n: {type: integer}}\noutput: {type: object}\n"
	f.installApprove(t, testkit.Package{Name: "strict", Version: "1.0.0", Module: echoWasm, Body: strict}, nil)
	f.installApprove(t, testkit.Package{Name: "guarded", Version: "1.0.0", Module: echoWasm, Body: echoBody},
		&approval.Grant{Callers: []string{"someone-else"}})
	f.install(t, testkit.Package{Name: "unapproved", Version: "1.0.0", Module: echoWasm, Body: echoBody})
	f.installApprove(t, testkit.Package{Name: "spin", Version: "1.0.0", Module: loopWasm, Body: spinBody}, nil)
	f.installApprove(t, testkit.Package{Name: "off", Version: "1.0.0", Module: echoWasm, Body: echoBody}, nil)
	ctx := context.Background()
	if _, err := f.admin.Disable(ctx, &pb.DisableRequest{Name: "off", Reason: "test"}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		req    *pb.InvokeRequest
		code   codes.Code
		reason reasons.Reason
		field  string // "" means any
	}{
		{"input fails the schema", &pb.InvokeRequest{Name: "strict", InputJson: `{"n":"x"}`}, codes.InvalidArgument, engine.ReasonInvalidInput, "n"},
		{"input is not JSON", &pb.InvokeRequest{Name: "strict", InputJson: `{`}, codes.InvalidArgument, engine.ReasonInvalidInput, ""},
		{"no name", &pb.InvokeRequest{InputJson: `{}`}, codes.InvalidArgument, engine.ReasonInvalidInput, ""},
		{"negative limits", &pb.InvokeRequest{Name: "strict", InputJson: `{"n":1}`, Limits: &pb.Limits{TimeoutMs: -1}}, codes.InvalidArgument, engine.ReasonInvalidInput, "limits"},
		// Finding 4: a CPU budget under 0.01 cores would round to no CFS quota at all.
		{"cpu below the floor", &pb.InvokeRequest{Name: "strict", InputJson: `{"n":1}`, Limits: &pb.Limits{Cpu: 1e-6}}, codes.InvalidArgument, engine.ReasonInvalidInput, "limits"},
		{"memory below the floor", &pb.InvokeRequest{Name: "strict", InputJson: `{"n":1}`, Limits: &pb.Limits{MemoryBytes: 1}}, codes.InvalidArgument, engine.ReasonInvalidInput, "limits"},
		{"caller not in callers", &pb.InvokeRequest{Name: "guarded", InputJson: `{}`}, codes.PermissionDenied, engine.ReasonCallerNotAllowed, ""},
		{"not approved", &pb.InvokeRequest{Name: "unapproved", InputJson: `{}`}, codes.PermissionDenied, engine.ReasonNotApproved, ""},
		{"not installed", &pb.InvokeRequest{Name: "nope", InputJson: `{}`}, codes.NotFound, engine.ReasonNotFound, ""},
		{"timeout", &pb.InvokeRequest{Name: "spin", InputJson: `{}`, Limits: &pb.Limits{TimeoutMs: 50}}, codes.DeadlineExceeded, "TIMEOUT", ""},
		{"disabled", &pb.InvokeRequest{Name: "off", InputJson: `{}`}, codes.FailedPrecondition, engine.ReasonDisabled, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.skills.Invoke(ctx, tc.req)
			code, d := detailOf(t, err)
			if code != tc.code || reasons.Reason(d.GetReason()) != tc.reason {
				t.Fatalf("got %v/%s (%v), want %v/%s", code, d.GetReason(), err, tc.code, tc.reason)
			}
			if d.GetMessage() == "" {
				t.Error("ErrorDetail has no message")
			}
			if tc.code == codes.InvalidArgument && tc.req.GetName() == "strict" && tc.field != "" && !strings.Contains(d.GetField(), tc.field) {
				t.Fatalf("field %q, want it to name %q", d.GetField(), tc.field)
			}
			if tc.reason == engine.ReasonCallerNotAllowed && !strings.Contains(d.GetMessage(), transport.LocalCaller()) {
				t.Fatalf("refusal %q does not name the socket peer %s", d.GetMessage(), transport.LocalCaller())
			}
			if tc.field == "limits" && d.GetField() != "limits" {
				t.Fatalf("field %q, want limits", d.GetField())
			}
		})
	}
	// A call that ran and timed out was recorded: its detail names its audit record.
	_, err := f.invoke(ctx, "spin", `{}`, &pb.Limits{TimeoutMs: 20})
	if _, d := detailOf(t, err); d.GetAuditId() == "" {
		t.Fatal("a failed call that ran carries no audit id")
	}
	// The caller was the peer over the socket, and the guarded skill's refusal did not run it.
	if list, err := f.admin.Calls(ctx, &pb.CallsRequest{}); err != nil || len(list.GetCalls()) != 0 {
		t.Fatalf("calls in flight after refusals: %v %v", list, err)
	}
}

// The kill switch over gRPC: a 60-second call in flight ends within 100 ms of the
// Disable request with FAILED_PRECONDITION, Disable returns only after it ended, new
// calls are refused until Enable, and both actions are audited.
func TestKillSwitchOverGRPC(t *testing.T) {
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "spin", Version: "1.0.0", Module: loopWasm, Body: spinBody}, nil)
	ctx := context.Background()

	type result struct {
		err   error
		ended time.Time
	}
	done := make(chan result, 1)
	go func() {
		_, err := f.invoke(ctx, "spin", `{}`, nil)
		done <- result{err, time.Now()}
	}()
	var inFlight *pb.Call
	deadline := time.Now().Add(10 * time.Second)
	for inFlight == nil {
		list, err := f.admin.Calls(ctx, &pb.CallsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list.GetCalls() {
			if c.GetSkill() == "spin" {
				inFlight = c
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the call never showed in Admin.Calls")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if inFlight.GetCaller() != transport.LocalCaller() || inFlight.GetCallId() == "" {
		t.Fatalf("Admin.Calls shows %v", inFlight)
	}
	time.Sleep(50 * time.Millisecond) // well inside the wasm loop

	asked := time.Now()
	resp, err := f.admin.Disable(ctx, &pb.DisableRequest{Name: "spin", Reason: "runaway"})
	returned := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetCancelledCalls() != 1 {
		t.Fatalf("Disable cancelled %d calls, want 1", resp.GetCancelledCalls())
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(60 * time.Second): // only turns a hang into a failure
		t.Fatal("the call did not end after Disable returned")
	}
	code, d := detailOf(t, r.err)
	if code != codes.FailedPrecondition || d.GetReason() != string(engine.ReasonDisabled) {
		t.Fatalf("call ended with %v/%s: %v", code, d.GetReason(), r.err)
	}
	took := r.ended.Sub(asked)
	t.Logf("kill switch: call failed %v after the Disable request; Disable returned after %v", took, returned.Sub(asked))
	// What is promised is the order (checked next: nothing in flight once Disable
	// returns), not a speed; the time is logged for the benchmark-minded.
	if list, err := f.admin.Calls(ctx, &pb.CallsRequest{}); err != nil || len(list.GetCalls()) != 0 {
		t.Fatalf("after Disable returned, calls in flight: %v %v", list.GetCalls(), err)
	}

	// Refused until Enable.
	_, err = f.invoke(ctx, "spin", `{}`, &pb.Limits{TimeoutMs: 20})
	if code, d := detailOf(t, err); code != codes.FailedPrecondition || d.GetReason() != string(engine.ReasonDisabled) {
		t.Fatalf("new call while disabled: %v", err)
	}
	info, err := f.skills.Get(ctx, &pb.GetSkillRequest{Name: "spin"})
	if err != nil || info.GetState() != pb.State_STATE_DISABLED {
		t.Fatalf("Get while disabled: %v %v", info.GetState(), err)
	}
	if _, err := f.admin.Enable(ctx, &pb.EnableRequest{Name: "spin"}); err != nil {
		t.Fatal(err)
	}
	_, err = f.invoke(ctx, "spin", `{}`, &pb.Limits{TimeoutMs: 20})
	if code, _ := detailOf(t, err); code != codes.DeadlineExceeded {
		t.Fatalf("after Enable the call should run (and time out): %v", err)
	}

	// Audited, in order: the disable (written before Disable waits for the calls),
	// the cancelled call's end, then the enable.
	var order []string
	for _, e := range readAudit(t, f.eng) {
		switch {
		case e.CallID == inFlight.GetCallId() && e.Event == audit.EventInvokeEnd:
			if e.Reason != string(engine.ReasonDisabled) {
				t.Errorf("cancelled call recorded with reason %q", e.Reason)
			}
			order = append(order, "end")
		case e.Event == audit.EventDisable, e.Event == audit.EventEnable:
			if e.Caller != transport.LocalCaller() || e.Skill != "spin" {
				t.Errorf("%s by %q of %q", e.Event, e.Caller, e.Skill)
			}
			order = append(order, e.Event)
		}
	}
	if got := strings.Join(order, " "); got != "disable end enable" {
		t.Fatalf("audit order %q, want %q", got, "disable end enable")
	}
}

func loadCalls() int {
	switch {
	case raceOn:
		return 320
	case testing.Short():
		return 640
	}
	return 3000
}

// Load: 32 concurrent gRPC callers; no call fails, and each has exactly one
// invoke.start and one invoke.end in a chain that verifies.
func TestLoad32Callers(t *testing.T) {
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: echoWasm, Body: echoBody}, nil)
	const callers = 32
	total := loadCalls()
	ctx := context.Background()
	var (
		next   atomic.Int64
		mu     sync.Mutex
		ids    = map[string]bool{}
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	start := time.Now()
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(total) {
					return
				}
				in := fmt.Sprintf(`{"i":%d}`, i)
				res, err := f.invoke(ctx, "echo", in, nil)
				if err != nil || res.GetOutputJson() != in {
					if failed.Add(1) <= 3 {
						t.Errorf("call %d: %v (output %q)", i, err, res.GetOutputJson())
					}
					continue
				}
				mu.Lock()
				ids[res.GetCallId()] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("%d calls by %d callers in %v: %.0f calls/s", total, callers, took, float64(total)/took.Seconds())
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d calls failed", n, total)
	}
	if len(ids) != total {
		t.Fatalf("%d distinct call ids for %d calls", len(ids), total)
	}
	starts, ends := map[string]int{}, map[string]int{}
	for _, e := range readAudit(t, f.eng) {
		switch e.Event {
		case audit.EventInvokeStart:
			if ends[e.CallID] != 0 {
				t.Fatalf("call %s: start after end", e.CallID)
			}
			starts[e.CallID]++
		case audit.EventInvokeEnd:
			ends[e.CallID]++
		}
	}
	for id := range ids {
		if starts[id] != 1 || ends[id] != 1 {
			t.Fatalf("call %s: %d starts, %d ends in the audit log; want 1 and 1", id, starts[id], ends[id])
		}
	}
	if len(starts) != total || len(ends) != total {
		t.Fatalf("audit has %d starts and %d ends for %d calls", len(starts), len(ends), total)
	}
}

// A TCP listener with neither TLS nor tokens refuses to start (the full table of
// refusals is transport's TestListenRefuses).
func TestTCPWithoutTLSOrTokenRefused(t *testing.T) {
	lis, _, err := transport.Listen(context.Background(), transport.ServerConfig{Addr: "127.0.0.1:0"})
	if err == nil {
		lis.Close()
		t.Fatal("a plaintext TCP listener without tokens started")
	}
	if !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("error %q does not say TLS is needed", err)
	}
}

// benchParallel runs call from 32 goroutines (16 per GOMAXPROCS on 2 cores) and reports
// calls/s, p50 and p99 latency.
func benchParallel(b *testing.B, call func(ctx context.Context) error) {
	ctx := context.Background()
	for range 50 { // warm up: connections, compiled module, caches
		if err := call(ctx); err != nil {
			b.Fatal(err)
		}
	}
	var (
		mu  sync.Mutex
		all []time.Duration
	)
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	b.RunParallel(func(p *testing.PB) {
		lat := make([]time.Duration, 0, 1024)
		for p.Next() {
			t0 := time.Now()
			if err := call(ctx); err != nil {
				b.Error(err)
				return
			}
			lat = append(lat, time.Since(t0))
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	if len(all) == 0 {
		return
	}
	// The process's CPU time (user and system: server and clients) per call: the cost
	// of a call apart from how much of the machine the benchmark got, which calls/s
	// depends on when other work shares it.
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(len(all)), "cpu-µs/call")
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) }
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "calls/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	// The process's peak resident set so far (server and clients are one process):
	// meaningful for the benchmark run alone (-bench '^BenchmarkX$').
	if mib := peakRSSMiB(); mib > 0 {
		b.ReportMetric(mib, "peak-RSS-MiB")
	}
}

// BenchmarkInvokeGRPC: echo.wasm over the unix socket, 32 concurrent callers, every
// call verified, budgeted, run in a fresh wasm instance and audited (fsync).
func BenchmarkInvokeGRPC(b *testing.B) {
	f := newFixture(b)
	f.installApprove(b, testkit.Package{Name: "echo", Version: "1.0.0", Module: echoWasm, Body: echoBody}, nil)
	req := &pb.InvokeRequest{Name: "echo", InputJson: `{"q":"hello"}`}
	benchParallel(b, func(ctx context.Context) error {
		res, err := f.skills.Invoke(ctx, req)
		if err == nil && res.GetOutputJson() != req.InputJson {
			err = errors.New("wrong output " + res.GetOutputJson())
		}
		return err
	})
}

// BenchmarkInvokeGRPCReactor is BenchmarkInvokeGRPC with the echo built as a WASI
// reactor: every call is served by a pooled instance reset after the call.
func BenchmarkInvokeGRPCReactor(b *testing.B) {
	f := newFixture(b)
	f.installApprove(b, testkit.Package{Name: "echo", Version: "1.0.0", Module: "../../isolation/wasm/testdata/rxtiny.wasm", Body: echoBody}, nil)
	req := &pb.InvokeRequest{Name: "echo", InputJson: `{"q":"hello"}`}
	benchParallel(b, func(ctx context.Context) error {
		res, err := f.skills.Invoke(ctx, req)
		if err == nil && res.GetOutputJson() != req.InputJson {
			err = errors.New("wrong output " + res.GetOutputJson())
		}
		return err
	})
}

// BenchmarkEmptyGRPC is the transport baseline: the health Check RPC through the same
// listener, interceptors and client, at the same concurrency.
func BenchmarkEmptyGRPC(b *testing.B) {
	f := newFixture(b)
	req := &healthpb.HealthCheckRequest{}
	benchParallel(b, func(ctx context.Context) error {
		_, err := f.health.Check(ctx, req)
		return err
	})
}

// The Admin service answers admins only: a caller who may invoke skills cannot lift
// the operator's kill switch.
func TestAdminNeedsAnAdmin(t *testing.T) {
	f := newFixture(t, server.WithAdmins("token:ops")) // the local caller is not an admin
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: echoWasm, Body: echoBody}, nil)
	ctx := context.Background()
	calls := []func() error{
		func() error { _, err := f.admin.Disable(ctx, &pb.DisableRequest{Name: "echo"}); return err },
		func() error { _, err := f.admin.Enable(ctx, &pb.EnableRequest{Name: "echo"}); return err },
		func() error { _, err := f.admin.Reload(ctx, &pb.ReloadRequest{}); return err },
		func() error { _, err := f.admin.Calls(ctx, &pb.CallsRequest{}); return err },
	}
	for i, call := range calls {
		code, d := detailOf(t, call())
		if code != codes.PermissionDenied || d.GetReason() != string(server.ReasonNotAdmin) {
			t.Fatalf("admin call %d: %v %v", i, code, d)
		}
	}
	if _, err := f.invoke(ctx, "echo", `{}`, nil); err != nil {
		t.Fatalf("a non-admin may still invoke: %v", err)
	}
	for _, e := range readAudit(t, f.eng) {
		if e.Event == audit.EventDisable || e.Event == audit.EventEnable {
			t.Fatalf("a refused admin call changed state: %+v", e)
		}
	}
}

// Reload re-reads trust.yaml: a signer the operator removed stops verifying, without
// a restart.
func TestReloadRereadsTrust(t *testing.T) {
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: echoWasm, Body: echoBody}, nil)
	ctx := context.Background()
	if _, err := f.invoke(ctx, "echo", `{}`, nil); err != nil {
		t.Fatal(err)
	}
	// The operator replaces the trusted key with another one.
	other := testkit.NewHome(t)
	if err := os.WriteFile(filepath.Join(f.home.Dir, "keys", "release.pub"), other.PubPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.invoke(ctx, "echo", `{}`, nil); err != nil {
		t.Fatalf("before reload the verified package still runs: %v", err)
	}
	if _, err := f.admin.Reload(ctx, &pb.ReloadRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err := f.invoke(ctx, "echo", `{}`, nil)
	if code, d := detailOf(t, err); code != codes.PermissionDenied || d.GetReason() != string(engine.ReasonVerifyFailed) {
		t.Fatalf("after reload: %v %v", code, d)
	}
}
