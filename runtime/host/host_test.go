package host_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/host"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

const echoBody = `input: {type: object}
output: {type: object}
limits: {timeout: 5s, memory: 16MiB}
`

// echoPackage is a signed wasm package that echoes its input.
func echoPackage(t *testing.T, kit *testkit.Home) string {
	t.Helper()
	return kit.Build(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "../engine/testdata/echo.wasm", Body: echoBody})
}

// events collects a host's events for a test to wait on.
type events struct {
	mu   sync.Mutex
	seen []host.Event
	ch   chan host.Event
}

func newEvents() *events { return &events{ch: make(chan host.Event, 64)} }

func (e *events) add(ev host.Event) {
	e.mu.Lock()
	e.seen = append(e.seen, ev)
	e.mu.Unlock()
	e.ch <- ev
}

// wait returns the next event of kind, failing the test after a minute.
func (e *events) wait(t testing.TB, kind host.EventKind) host.Event {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case ev := <-e.ch:
			if ev.Kind == kind {
				return ev
			}
		case <-deadline:
			t.Fatalf("no event %d within a minute; seen %+v", kind, e.all())
		}
	}
}

func (e *events) all() []host.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]host.Event(nil), e.seen...)
}

func resolve(t testing.TB, dir string) host.Home {
	t.Helper()
	h, err := host.ResolveHome(dir)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestHomeLayout: $SKILLBOX_HOME is resolved in one order (flag, environment, ~), and
// each path Home names is the one the engine, store and audit log really use.
func TestHomeLayout(t *testing.T) {
	t.Run("resolve", func(t *testing.T) {
		user := t.TempDir()
		t.Setenv("HOME", user)
		t.Setenv(host.EnvHome, "")
		if got := resolve(t, "").Dir(); got != filepath.Join(user, ".skillbox") {
			t.Errorf("no flag, no %s: home %s, want ~/.skillbox", host.EnvHome, got)
		}
		env := t.TempDir()
		t.Setenv(host.EnvHome, env)
		if got := resolve(t, "").Dir(); got != env {
			t.Errorf("%s=%s: home %s", host.EnvHome, env, got)
		}
		flag := t.TempDir()
		if got := resolve(t, flag).Dir(); got != flag {
			t.Errorf("--home %s beside %s: home %s, want the flag's", flag, host.EnvHome, got)
		}
		t.Chdir(flag)
		if got := resolve(t, "rel").Dir(); got != filepath.Join(flag, "rel") {
			t.Errorf("relative --home rel: home %s, want it made absolute", got)
		}
		if _, err := os.Stat(filepath.Join(flag, "rel")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("resolving created the home (stat: %v)", err)
		}
	})

	t.Run("used", func(t *testing.T) {
		kit := testkit.NewHome(t)
		home := resolve(t, kit.Dir)
		h, err := host.Open(context.Background(), host.Options{Home: home, NoContainer: true})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		ctx := context.Background()
		eng := h.Engine()
		if _, err := eng.Install(ctx, echoPackage(t, kit), "test"); err != nil {
			t.Fatal(err)
		}
		cand, err := eng.Candidate(ctx, "echo", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eng.Approve(ctx, cand, nil, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := eng.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{}`), Caller: "test"}); err != nil {
			t.Fatal(err)
		}
		if _, err := eng.Disable(ctx, "echo", "test", "layout"); err != nil {
			t.Fatal(err)
		}
		for what, path := range map[string]string{
			"trust policy":      home.Trust(),
			"installed package": filepath.Join(home.Skills(), strings.TrimPrefix(cand.Entry.ManifestDigest, "sha256:"), "skill.yaml"),
			"approval":          home.Approval("echo"),
			"kill switch":       filepath.Join(home.Disabled(), "echo"),
			"audit log":         home.AuditLog(),
		} {
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s: Home names %s, which the engine did not write: %v", what, path, err)
			}
		}
		if home.Trust() != eng.TrustPath() || home.AuditLog() != eng.AuditPath() {
			t.Errorf("engine reads %s and %s; Home says %s and %s", eng.TrustPath(), eng.AuditPath(), home.Trust(), home.AuditLog())
		}
		if filepath.Dir(home.Approval("echo")) != home.Approvals() {
			t.Errorf("approval %s is not in %s", home.Approval("echo"), home.Approvals())
		}
		if ents, err := os.ReadDir(home.Cache()); err != nil || len(ents) == 0 {
			t.Errorf("compile cache %s: %d entries, %v; want the compiled module", home.Cache(), len(ents), err)
		}
		if want := "unix://" + filepath.Join(home.Dir(), transport.SocketName); home.Socket() != want {
			t.Errorf("socket %s, want %s", home.Socket(), want)
		}
		if home.Keys() != filepath.Join(home.Dir(), "keys") {
			t.Errorf("keys %s", home.Keys())
		}
	})
}

// TestOpenServeClose: a host on a temp home with the wasm sandbox and NoContainer
// serves a call over its gRPC door on the home's socket, drains when ctx ends, and
// leaves no socket behind.
func TestOpenServeClose(t *testing.T) {
	kit := testkit.NewHome(t)
	home := resolve(t, kit.Dir)
	ev := newEvents()
	h, err := host.Open(context.Background(), host.Options{Home: home, NoContainer: true, Events: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.SandboxError(manifest.KindContainer); !errors.Is(err, host.ErrNotOpened) {
		t.Errorf("container sandbox with NoContainer: %v, want ErrNotOpened", err)
	}
	if err := h.SandboxError(manifest.KindWasm); err != nil {
		t.Errorf("wasm sandbox: %v", err)
	}
	for _, e := range ev.all() {
		if e.Kind == host.SandboxUnavailable {
			t.Errorf("NoContainer reported the container sandbox unavailable: %v", e.Err)
		}
	}
	ctx := context.Background()
	eng := h.Engine()
	if _, err := eng.Install(ctx, echoPackage(t, kit), "test"); err != nil {
		t.Fatal(err)
	}
	cand, err := eng.Candidate(ctx, "echo", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Approve(ctx, cand, nil, "test"); err != nil {
		t.Fatal(err)
	}

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- h.Serve(sctx, host.ServeOptions{Drain: 10 * time.Second}) }()
	up := ev.wait(t, host.Serving)
	if up.Door != "grpc" || up.Addr != home.Socket() {
		t.Fatalf("serving %s on %s, want grpc on %s", up.Door, up.Addr, home.Socket())
	}
	conn, err := transport.Dial(ctx, transport.ClientConfig{Home: home.Dir()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	res, err := pb.NewSkillsClient(conn).Invoke(ctx, &pb.InvokeRequest{Name: "echo", InputJson: `{"a":1}`})
	if err != nil {
		t.Fatalf("invoke over the host's door: %v", err)
	}
	if res.GetOutputJson() != `{"a":1}` {
		t.Errorf("output %s, want the input echoed", res.GetOutputJson())
	}

	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after ctx ended: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Serve did not return after ctx ended")
	}
	ev.wait(t, host.Draining)
	if _, err := os.Stat(strings.TrimPrefix(home.Socket(), "unix://")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Serve: %v", err)
	}
	if err := h.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestServeRefusesBadListener: a listener that cannot be made is Serve's error, and
// the host stays usable.
func TestServeRefusesBadListener(t *testing.T) {
	kit := testkit.NewHome(t)
	h, err := host.Open(context.Background(), host.Options{Home: resolve(t, kit.Dir), NoSandboxes: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	err = h.Serve(context.Background(), host.ServeOptions{Listen: transport.ServerConfig{Addr: "0.0.0.0:0"}})
	if err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("plaintext TCP on every interface: %v, want a refusal that names TLS", err)
	}
	if err := h.SandboxError(manifest.KindWasm); !errors.Is(err, host.ErrNotOpened) {
		t.Errorf("wasm sandbox with NoSandboxes: %v, want ErrNotOpened", err)
	}

	// `skillbox serve` in one call listens first: nothing is opened on the home.
	fresh := resolve(t, filepath.Join(t.TempDir(), "home"))
	err = host.Serve(context.Background(), host.Options{Home: fresh, NoContainer: true},
		host.ServeOptions{Listen: transport.ServerConfig{Addr: "0.0.0.0:0"}})
	if err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("host.Serve, plaintext TCP on every interface: %v, want a refusal that names TLS", err)
	}
	if _, err := os.Stat(fresh.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused listener still opened the home (stat: %v)", err)
	}
}

// TestReload: approvals written by another process (the CLI, beside a running server)
// are seen after Reload, as after SIGHUP; a reload that fails keeps the state and says
// so. The last part sends a real SIGHUP to the serving process.
func TestReload(t *testing.T) {
	kit := testkit.NewHome(t)
	home := resolve(t, kit.Dir)
	ev := newEvents()
	ctx := context.Background()
	srv, err := host.Open(ctx, host.Options{Home: home, NoContainer: true, Events: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := srv.Engine().Install(ctx, echoPackage(t, kit), "test"); err != nil {
		t.Fatal(err)
	}
	call := func() error {
		_, err := srv.Engine().Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{}`), Caller: "test"})
		return err
	}
	if r := engine.ReasonOf(call()); r != engine.ReasonNotApproved {
		t.Fatalf("before approval: %s, want NOT_APPROVED", r)
	}

	// `skillbox approve` is another host on the same home, with no sandbox.
	cli, err := host.Open(ctx, host.Options{Home: home, NoSandboxes: true})
	if err != nil {
		t.Fatal(err)
	}
	cand, err := cli.Engine().Candidate(ctx, "echo", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Engine().Approve(ctx, cand, nil, "cli"); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	if r := engine.ReasonOf(call()); r != engine.ReasonNotApproved {
		t.Fatalf("approved elsewhere, not reloaded: %s, want NOT_APPROVED still", r)
	}
	n, err := srv.Reload(ctx, "test")
	if err != nil || n != 1 {
		t.Fatalf("Reload: %d packages, %v", n, err)
	}
	if got := ev.wait(t, host.Reloaded); got.Packages != 1 {
		t.Errorf("Reloaded event: %d packages, want 1", got.Packages)
	}
	if err := call(); err != nil {
		t.Fatalf("after reload: %v", err)
	}

	trust, err := os.ReadFile(home.Trust())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(home.Trust(), []byte("signers: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Reload(ctx, "test"); err == nil {
		t.Fatal("reload with a broken trust.yaml succeeded")
	}
	if got := ev.wait(t, host.ReloadFailed); got.Err == nil {
		t.Error("ReloadFailed without its error")
	}
	if err := call(); err != nil {
		t.Fatalf("a failed reload did not keep the previous state: %v", err)
	}
	if err := os.WriteFile(home.Trust(), trust, 0o600); err != nil {
		t.Fatal(err)
	}

	// The real signal: Serve registers for SIGHUP before it reports Serving, and
	// stops listening for it before it returns.
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, host.ServeOptions{ReloadOnSIGHUP: true}) }()
	ev.wait(t, host.Serving)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if got := ev.wait(t, host.Reloaded); got.Packages != 1 {
		t.Errorf("reload on SIGHUP: %d packages, want 1", got.Packages)
	}
	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// TestOpenAuthor: `run DIR`'s path opens only the sandbox of the package's kind and
// runs an unsigned directory through the engine's author path.
func TestOpenAuthor(t *testing.T) {
	kit := testkit.NewHome(t)
	home := resolve(t, kit.Dir)
	dir := echoPackage(t, kit)
	if err := os.Remove(filepath.Join(dir, "skill.sigstore.json")); err != nil {
		t.Fatal(err)
	}
	a, err := host.OpenAuthor(context.Background(), host.Options{Home: home}, manifest.KindWasm)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	res, err := a.InvokeUnverified(context.Background(), engine.UnverifiedRequest{Dir: dir, Input: []byte(`{"b":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Output) != `{"b":2}` {
		t.Errorf("output %s", res.Output)
	}
	if _, err := os.Stat(home.AuditLog()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the author's path touched the audit log: %v", err)
	}
	if _, err := host.OpenAuthor(context.Background(), host.Options{Home: home}, "vm"); err == nil || !strings.Contains(err.Error(), "no vm sandbox") {
		t.Errorf("unknown kind: %v", err)
	}
}

// TestOpenNeedsAHome: the zero Home is refused, not taken as the working directory.
func TestOpenNeedsAHome(t *testing.T) {
	if _, err := host.Open(context.Background(), host.Options{}); err == nil {
		t.Fatal("Open without a home succeeded")
	}
	if _, err := host.OpenAuthor(context.Background(), host.Options{}, manifest.KindWasm); err == nil {
		t.Fatal("OpenAuthor without a home succeeded")
	}
}
