package engine_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

// goSandbox is a third sandbox, for tests only: it runs no code at all, it answers
// each call in Go with the call's skill name and input. It also implements the
// optional install-time preparation and drain, and remembers what it was asked.
type goSandbox struct {
	mu       sync.Mutex
	prepared []string // skill names, with the directory they were prepared in
	drained  []string
	calls    []isolation.Call
}

func (s *goSandbox) Run(_ context.Context, call isolation.Call) (isolation.Result, error) {
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	out, err := json.Marshal(map[string]any{"ran": call.Skill.Manifest.Name, "input": json.RawMessage(call.Input)})
	if err != nil {
		return isolation.Result{}, &isolation.Error{Reason: isolation.ReasonInternal, Msg: "encode", Err: err}
	}
	return isolation.Result{Output: out, Usage: isolation.Usage{Wall: time.Millisecond, OutputBytes: int64(len(out))}}, nil
}

func (s *goSandbox) Close(context.Context) error { return nil }

func (s *goSandbox) Prepare(_ context.Context, sk isolation.Skill) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prepared = append(s.prepared, sk.Manifest.Name+" in "+sk.Dir)
	return nil
}

func (s *goSandbox) Drain(_ context.Context, skill string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drained = append(s.drained, skill)
	return nil
}

var (
	_ isolation.Preparer = (*goSandbox)(nil)
	_ isolation.Drainer  = (*goSandbox)(nil)
)

// TestSandboxRegisteredByKind: a sandbox the engine has never heard of, registered
// under a kind, is prepared at install, runs the call end to end (input and output
// validation, audit, metrics) and is drained by the kill switch: adding a sandbox
// needs no edit to the engine. The manifest only knows the wasm and container kinds,
// so the test sandbox takes the wasm kind's place.
func TestSandboxRegisteredByKind(t *testing.T) {
	ctx := context.Background()
	home := testkit.NewHome(t)
	sb := &goSandbox{}
	eng := home.Engine(t, engine.Config{Sandboxes: map[string]isolation.Sandbox{manifest.KindWasm: sb}})
	f := &fixture{home: home, eng: eng}
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm",
		Body: "input: {type: object}\noutput: {type: object, required: [ran]}\n"}, nil)
	if len(sb.prepared) != 1 || !strings.HasPrefix(sb.prepared[0], "echo in ") || !strings.Contains(sb.prepared[0], ".stage-") {
		t.Fatalf("prepared %q, want echo once, in the staged copy (not yet in the store)", sb.prepared)
	}

	if strings.Join(sb.drained, ",") != "echo" {
		t.Fatalf("drained %q after approve, want echo (warm instances of the old grant)", sb.drained)
	}

	res, err := eng.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{"a":1}`), Caller: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Output); got != `{"input":{"a":1},"ran":"echo"}` {
		t.Fatalf("output %s: the call did not run in the registered sandbox", got)
	}
	if len(sb.calls) != 1 || sb.calls[0].Limits.Timeout <= 0 || sb.calls[0].Skill.Digest == "" {
		t.Fatalf("sandbox calls %+v: want one, with effective limits and the code digest", sb.calls)
	}
	var events []string
	for _, e := range auditEvents(t, eng) {
		events = append(events, e.Event)
	}
	if got, want := strings.Join(events, " "), "install approve invoke.start invoke.end"; got != want {
		t.Fatalf("audit events %q, want %q", got, want)
	}

	if _, err := eng.Disable(ctx, "echo", "test", "drill"); err != nil {
		t.Fatal(err)
	}
	if strings.Join(sb.drained, ",") != "echo,echo" {
		t.Fatalf("drained %q, want the disabled skill drained again", sb.drained)
	}
}

// TestKindWithoutSandbox: a skill whose kind has no registered sandbox is refused
// UNAVAILABLE with a line naming the kind, and the refusal is audited; its install is
// refused too (nothing could prepare it).
func TestKindWithoutSandbox(t *testing.T) {
	ctx := context.Background()
	home := testkit.NewHome(t)
	f := &fixture{home: home, eng: home.Engine(t, engine.Config{})}
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody}, nil)

	none := home.Engine(t, engine.Config{Sandboxes: map[string]isolation.Sandbox{}})
	_, err := none.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{}`), Caller: "test"})
	if reasonOf(t, err) != engine.ReasonUnavailable || !strings.Contains(err.Error(), "echo needs the wasm sandbox, which is not available") {
		t.Fatalf("invoke without a wasm sandbox: %v (%s)", err, engine.ReasonOf(err))
	}
	evs := auditEvents(t, none)
	if last := evs[len(evs)-1]; last.Event != engine.EventInvokeRefused || last.Reason != string(engine.ReasonUnavailable) {
		t.Fatalf("last audit record %+v, want invoke.refused UNAVAILABLE", last)
	}
	pkg := home.Build(t, testkit.Package{Name: "other", Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody})
	if _, err := none.Install(ctx, pkg, "test"); err == nil || !strings.Contains(err.Error(), "needs the wasm sandbox, which is not available") {
		t.Fatalf("install without a wasm sandbox: %v", err)
	}
}
