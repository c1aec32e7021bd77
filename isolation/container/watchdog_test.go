package container

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/skillbox-dev/skillbox/isolation/egress"
	"github.com/skillbox-dev/skillbox/manifest"
)

// The test binary's roles (first argument), dispatched by TestMain.
const (
	watchdogRole = "skillbox-test-watchdog" // [exit] INSTANCE: RunWatchdog (or exit 3 at once)
	serverRole   = "skillbox-test-server"   // IMAGE-ID firewall|nofirewall: a server to be killed
)

// watchdogChild is what `skillbox internal container-watchdog` does.
func watchdogChild(args []string) int {
	if len(args) == 0 || args[0] == "exit" {
		return 3
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := RunWatchdog(context.Background(), os.Stdin, args[len(args)-1], log); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// serverChild plays a server that the test kills with SIGKILL: a sandbox with a
// watchdog and a warm pool, network-granted containers (so a network and firewall
// rules exist), and a call sleeping for an hour. It prints "INSTANCE WATCHDOG-PID
// CALL-ID" once the pool is warm, then runs the call.
func serverChild(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: IMAGE-ID firewall|nofirewall")
		return 2
	}
	env.hostileID = args[0]
	ctx := context.Background()
	proxy := egress.NewProxy()
	opts := []Option{WithEgressProxy(proxy), WithWarmPool(1), WithWatchdog([]string{os.Args[0], watchdogRole}),
		WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil)))}
	if args[1] == "nofirewall" {
		opts = append(opts, WithoutHostFirewallUnsafe())
	}
	s, err := New(ctx, withTestRuntime(opts)...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	call := hostileCall(`{"mode":"sleep","sleep":"3600s"}`)
	call.Limits.Timeout = time.Hour
	call.Grant.Network = []manifest.Origin{{Scheme: "http", Host: "192.0.2.1", Port: 80}}
	call.Limits.Requests = 1
	call.Limits.Response = 1 << 10
	if err := s.Prewarm(ctx, call); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("%s %d %s\n", s.Instance(), s.wd.cmd.Process.Pid, call.ID)
	// Takes the warm container; the pool refills behind it. The test kills us here.
	_, err = s.Run(ctx, call)
	fmt.Fprintln(os.Stderr, "the sleeping call returned:", err)
	return 1
}

// TestWatchdogReapsAfterKill: a server killed with SIGKILL never runs Close, yet its
// warm container, its running call's container, its network and its host firewall
// rules are gone within 20 s, without any new start: the watchdog removes them and
// exits.
func TestWatchdogReapsAfterKill(t *testing.T) {
	needEngine(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	fw := "firewall"
	if env.noFirewall != nil {
		fw = "nofirewall"
	}
	errFile, err := os.CreateTemp(t.TempDir(), "server-stderr")
	if err != nil {
		t.Fatal(err)
	}
	srv := exec.Command(exe, serverRole, env.hostileID, fw)
	srv.Stderr = errFile
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	serverLog := func() string { b, _ := os.ReadFile(errFile.Name()); return "server log: " + string(b) }
	var instance string
	watchdogPID := 0
	t.Cleanup(func() {
		if srv.ProcessState == nil {
			_ = srv.Process.Kill()
			_ = srv.Wait()
		}
		if watchdogPID > 0 && alive(watchdogPID) {
			_ = syscall.Kill(watchdogPID, syscall.SIGKILL)
		}
		if instance != "" { // whatever the watchdog left, so the test leaves nothing
			_, _ = reap(context.Background(), env.cli, reapScope{label: LabelInstance + "=" + instance,
				firewall: env.noFirewall == nil, ruleTag: "skillbox:" + instance})
		}
	})
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
	}()
	var callID string
	select {
	case l := <-line:
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("server child said %q; %s", l, serverLog())
		}
		instance, callID = f[0], f[2]
		if watchdogPID, err = strconv.Atoi(f[1]); err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the server child never got its pool warm; %s", serverLog())
	}
	// Both containers run: the call's (a warm one, renamed after it) and the refill.
	waitFor(t, "the sleeping call's container and a new warm one running", func() bool {
		cs := instanceContainers(t, instance)
		named := false
		for _, c := range cs {
			named = named || (c.State == "running" && len(c.Names) == 1 && c.Names[0] == "/"+containerName("hostile", callID))
		}
		return named && len(cs) == 2 && cs[0].State == "running" && cs[1].State == "running"
	}, serverLog)
	if n := len(instanceNetworks(t, instance)); n != 1 {
		t.Fatalf("%d networks of the server, want 1", n)
	}
	if env.noFirewall == nil && firewallRules(t, instance) == 0 {
		t.Fatal("the network-granted containers have no host firewall rules: the test proves nothing about them")
	}
	if !alive(watchdogPID) {
		t.Fatalf("the watchdog (pid %d) is not running", watchdogPID)
	}

	if err := srv.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = srv.Wait()
	waitFor(t, "the killed server's containers, network and firewall rules removed", func() bool {
		return len(instanceContainers(t, instance)) == 0 && len(instanceNetworks(t, instance)) == 0 &&
			(env.noFirewall != nil || firewallRules(t, instance) == 0)
	}, func() string {
		return fmt.Sprintf("left: %d containers, %d networks; %s", len(instanceContainers(t, instance)), len(instanceNetworks(t, instance)), serverLog())
	})
	waitFor(t, "the watchdog to exit after its work", func() bool { return !alive(watchdogPID) })
	// The watchdog (its standard error is the server's) did it, not a new start.
	if l := serverLog(); !strings.Contains(l, "the server is gone without closing its sandbox") ||
		!strings.Contains(l, "removed the sandbox's containers and networks") {
		t.Errorf("the watchdog does not report its work; %s", l)
	}
}

// TestWatchdogEndsWithClose: a clean Close leaves no watchdog process behind; the
// watchdog, told that nothing is left, exits of its own accord (status 0, not
// killed) without removing anything.
func TestWatchdogEndsWithClose(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	wlog, withStderr := watchdogStderr(t)
	s := newSandbox(t, WithWarmPool(1), WithWatchdog([]string{exe, watchdogRole}), withStderr)
	if err := s.Prewarm(context.Background(), hostileCall(`{"mode":"echo"}`)); err != nil {
		t.Fatal(err)
	}
	cmd := s.wd.cmd
	if !alive(cmd.Process.Pid) {
		t.Fatal("no watchdog runs")
	}
	start := time.Now()
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if alive(cmd.Process.Pid) {
		t.Fatalf("watchdog pid %d still runs after Close", cmd.Process.Pid)
	}
	if st := cmd.ProcessState; st == nil || st.ExitCode() != 0 {
		t.Fatalf("the watchdog did not exit by itself after a clean Close: %v", st)
	}
	if d := time.Since(start); d > watchdogCleanExit {
		t.Errorf("Close took %v: the watchdog was killed, not told", d)
	}
	if l := wlog(); strings.Contains(l, "removing") || strings.Contains(l, "removed") {
		t.Errorf("after a clean Close the watchdog removed things: %s", l)
	}
}

// TestWatchdogReapsWhatCloseLeft: what Close could not remove (here: a container of
// the sandbox's that Close does not know) the watchdog removes before it exits.
func TestWatchdogReapsWhatCloseLeft(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	wlog, withStderr := watchdogStderr(t)
	s := newSandbox(t, WithWatchdog([]string{exe, watchdogRole}), withStderr)
	ctx := context.Background()
	c, err := env.cli.ContainerCreate(ctx, &container.Config{Image: env.hostileID, Labels: s.labels("hostile", "stray")},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.cli.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true}) })
	cmd := s.wd.cmd
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if alive(cmd.Process.Pid) {
		t.Fatalf("watchdog pid %d still runs after Close", cmd.Process.Pid)
	}
	if _, err := env.cli.ContainerInspect(ctx, c.ID); err == nil {
		t.Fatalf("a container of the sandbox survived its Close and its watchdog; watchdog log: %s", wlog())
	}
	if !strings.Contains(wlog(), "removed=1") {
		t.Errorf("the watchdog does not say it removed the container: %s", wlog())
	}
}

// watchdogStderr sends the watchdog's standard error to a file the test reads.
func watchdogStderr(t *testing.T) (func() string, Option) {
	f, err := os.CreateTemp(t.TempDir(), "watchdog-stderr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	read := func() string { b, _ := os.ReadFile(f.Name()); return string(b) }
	return read, func(s *Sandbox) { s.watchStderr = f }
}

// TestWatchdogRestarted: a watchdog that dies while the server runs is reported and
// replaced, and the replacement does the work: when the server's end of its pipe
// closes (as at the server's death), the sandbox's containers go.
func TestWatchdogRestarted(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	_, withStderr := watchdogStderr(t)
	s := newSandbox(t, WithWarmPool(1), WithWatchdog([]string{exe, watchdogRole}), withStderr,
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), func(s *Sandbox) { s.watchBackoff = 10 * time.Millisecond })
	if err := s.Prewarm(context.Background(), hostileCall(`{"mode":"echo"}`)); err != nil {
		t.Fatal(err)
	}
	current := func() *exec.Cmd {
		s.wd.mu.Lock()
		defer s.wd.mu.Unlock()
		return s.wd.cmd
	}
	first := current().Process.Pid
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the watchdog's death reported", func() bool {
		return strings.Contains(logs.String(), "container watchdog ended while the server runs; restarting it")
	})
	waitFor(t, "a new watchdog", func() bool { p := current().Process.Pid; return p != first && alive(p) }, logs.String)
	if !strings.Contains(logs.String(), "signal: killed") {
		t.Errorf("the report does not say how the watchdog ended: %s", logs.String())
	}
	if pooled(t, s) != 1 {
		t.Fatalf("%d warm containers, want 1", pooled(t, s))
	}
	// The server's end of the new watchdog's pipe closes without the clean word.
	s.wd.mu.Lock()
	s.wd.pipe.Close()
	s.wd.mu.Unlock()
	waitFor(t, "the restarted watchdog to remove the sandbox's containers", func() bool {
		return len(instanceContainers(t, s.Instance())) == 0
	})
}

// TestWatchdogGivesUp: a watchdog that keeps exiting is restarted a bounded number
// of times, each reported, and then the sandbox says it gives up.
func TestWatchdogGivesUp(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	newSandbox(t, WithWatchdog([]string{exe, watchdogRole, "exit"}),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), func(s *Sandbox) { s.watchBackoff = 10 * time.Millisecond })
	waitFor(t, "the sandbox to give up on its watchdog", func() bool {
		return strings.Contains(logs.String(), "container watchdog keeps ending; giving up")
	}, logs.String)
	if n := strings.Count(logs.String(), "restarting it"); n != watchdogRestarts {
		t.Errorf("%d restarts reported, want %d: %s", n, watchdogRestarts, logs.String())
	}
	if !strings.Contains(logs.String(), "exit status 3") {
		t.Errorf("the report does not say how the watchdog ended: %s", logs.String())
	}
}

// TestWatchdogInstance: the watchdog refuses an instance id that is not one, so its
// label filter can never select more than one sandbox's objects.
func TestWatchdogInstance(t *testing.T) {
	for _, id := range []string{"", "abc", "0123456789AB", "0123456789abc", `x",dev.skillbox.managed=true`, "0123456789a "} {
		err := RunWatchdog(context.Background(), strings.NewReader(""), id, nil)
		if err == nil || !strings.Contains(err.Error(), "want the 12 lowercase hex digits") {
			t.Errorf("instance %q: %v, want refused", id, err)
		}
	}
}

// alive says whether pid runs (a zombie does not).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) STATE ...: comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func instanceContainers(t testing.TB, instance string) []container.Summary {
	t.Helper()
	cs, err := env.cli.ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", LabelInstance+"="+instance))})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func instanceNetworks(t testing.TB, instance string) []network.Summary {
	t.Helper()
	ns, err := env.cli.NetworkList(context.Background(), network.ListOptions{
		Filters: filters.NewArgs(filters.Arg("label", LabelInstance+"="+instance))})
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// firewallRules counts the host firewall rules of a sandbox instance.
func firewallRules(t testing.TB, instance string) int {
	t.Helper()
	n := 0
	for _, chain := range []string{"INPUT", "DOCKER-USER"} {
		out, err := exec.Command("iptables", "-w", "5", "-S", chain).Output()
		if err != nil {
			continue
		}
		n += strings.Count(string(out), "skillbox:"+instance)
	}
	return n
}

// lockedBuffer collects a logger's output while the sandbox writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWatchdogSignals: SIGHUP (the server's reload) and a first SIGTERM leave the live
// server's containers alone; a second SIGTERM removes them at once, and the sandbox,
// still open, starts a new watchdog.
func TestWatchdogSignals(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	wlog, withStderr := watchdogStderr(t)
	s := newSandbox(t, WithWarmPool(1), WithWatchdog([]string{exe, watchdogRole}), withStderr,
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), func(s *Sandbox) { s.watchBackoff = 10 * time.Millisecond })
	if err := s.Prewarm(context.Background(), hostileCall(`{"mode":"echo"}`)); err != nil {
		t.Fatal(err)
	}
	s.wd.mu.Lock()
	pid := s.wd.cmd.Process.Pid
	s.wd.mu.Unlock()
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM} {
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the watchdog to note the first SIGTERM", func() bool {
		return strings.Contains(wlog(), "waiting for the server to end")
	}, wlog)
	if !alive(pid) || pooled(t, s) != 1 || strings.Contains(wlog(), "removing") {
		t.Fatalf("SIGHUP and one SIGTERM: watchdog alive %v, %d warm containers (want 1); watchdog log: %s", alive(pid), pooled(t, s), wlog())
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a second SIGTERM to remove the containers", func() bool {
		return len(instanceContainers(t, s.Instance())) == 0
	}, wlog)
	waitFor(t, "a new watchdog", func() bool {
		s.wd.mu.Lock()
		defer s.wd.mu.Unlock()
		return s.wd.cmd.Process.Pid != pid && alive(s.wd.cmd.Process.Pid)
	}, logs.String)
}
