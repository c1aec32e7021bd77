package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	skillboxv1 "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

// TestKillNineUnderLoad kills the server with SIGKILL while callers keep it busy: every
// call a client saw answered has its invoke.end in the log at the audit id it was given,
// the chain verifies, and the server starts again on the same home and serves.
func TestKillNineUnderLoad(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)

	srv, srvErr := startServer(t, op, "--no-container")
	answered := loadUntilKilled(t, op, srv, 200)
	if len(answered) < 200 {
		t.Fatalf("only %d calls answered before the kill; server log: %s", len(answered), srvErr)
	}

	// The log holds every answered call at the id its caller was given.
	ends := invokeEnds(t, op.home)
	for id, callID := range answered {
		if got, ok := ends[id]; !ok || got != callID {
			t.Fatalf("audit id %d (call %s) answered but the log has %q there", id, callID, got)
		}
	}
	if out := op.must("audit", "verify"); !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("audit verify after kill -9: %s", out)
	}

	// The server starts again on the same home and serves.
	srv2, log2 := startServer(t, op, "--no-container")
	if out := op.must("invoke", "echo", "--input", `{"again":true}`); !strings.Contains(out, `"again": true`) {
		t.Fatalf("invoke after restart: %s", out)
	}
	stopServer(t, srv2, log2)
	if out := op.must("audit", "verify"); !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("audit verify after restart: %s", out)
	}
}

// loadUntilKilled runs 16 callers against the server until at least want calls were
// answered, then SIGKILLs it mid-load. It returns audit id → call id for every call a
// caller saw answered.
func loadUntilKilled(t *testing.T, op *operatorHome, srv *exec.Cmd, want int) map[uint64]string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cc, err := transport.Dial(ctx, transport.ClientConfig{Home: op.home})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := skillboxv1.NewSkillsClient(cc)

	var mu sync.Mutex
	answered := map[uint64]string{}
	enough := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				in := `{"caller":` + strconv.Itoa(i) + `,"n":` + strconv.Itoa(n) + `}`
				resp, err := client.Invoke(ctx, &skillboxv1.InvokeRequest{Name: "echo", InputJson: in})
				if err != nil {
					return // the server is gone
				}
				id, err := strconv.ParseUint(resp.GetAuditId(), 10, 64)
				if err != nil {
					t.Errorf("audit id %q: %v", resp.GetAuditId(), err)
					return
				}
				mu.Lock()
				answered[id] = resp.GetCallId()
				if len(answered) >= want {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(60 * time.Second):
		t.Error("the load never reached its target")
	}
	// Kill while the callers are still calling: some calls are in flight.
	if err := srv.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = srv.Wait()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return answered
}

// invokeEnds reads the audit log: seq → call id of its invoke.end lines.
func invokeEnds(t *testing.T, home string) map[uint64]string {
	t.Helper()
	f, err := os.Open(filepath.Join(home, "audit", "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[uint64]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct {
			Seq    uint64 `json:"seq"`
			Event  string `json:"event"`
			CallID string `json:"callId"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if e.Event == "invoke.end" {
			out[e.Seq] = e.CallID
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// startServer starts `skillbox serve` on op's home and waits until it answers.
func startServer(t *testing.T, op *operatorHome, args ...string) (*exec.Cmd, *lockedWriter) {
	t.Helper()
	return startServerWith(t, op.bin, op.env, args...)
}

// startServerWith starts `bin serve args` with env added and waits until it answers;
// the server is killed when the test ends if it is still running.
func startServerWith(t *testing.T, bin string, env []string, args ...string) (*exec.Cmd, *lockedWriter) {
	t.Helper()
	srv := exec.Command(bin, append([]string{"serve"}, args...)...)
	srv.Env = append(os.Environ(), env...)
	errb := &lockedWriter{}
	srv.Stderr = errb
	// Wait also waits for the server's standard error to close, which its container
	// watchdog holds too: bound that.
	srv.WaitDelay = time.Minute
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if srv.ProcessState == nil {
			_ = srv.Process.Kill()
			_ = srv.Wait()
		}
	})
	waitUntil(t, "the server answers", func() bool { return serverAnswers(t, bin, env) })
	return srv, errb
}

// stopServer sends SIGTERM and waits for a clean exit; a failure shows the server's
// log.
func stopServer(t *testing.T, srv *exec.Cmd, log *lockedWriter) {
	t.Helper()
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v: %s", err, log)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not exit after SIGTERM: %s", log)
	}
}

// lockedWriter lets the test read a child's stderr while the child writes it.
type lockedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestKillNineLeavesNoContainers kills a server that runs container skills: its
// watchdog removes its warm containers (and networks and firewall rules) without any
// new start, and exits. The next start finds nothing left, and a cleanly stopped
// server leaves neither containers nor a watchdog.
func TestKillNineLeavesNoContainers(t *testing.T) {
	requireDocker(t)
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	installTextstat(t, op)

	srv, srvErr := startServer(t, op)
	if out := op.must("invoke", "textstat", "--input", `{"text":"one two two"}`); !strings.Contains(out, `"two"`) {
		t.Fatalf("invoke textstat: %s", out)
	}
	pid := strconv.Itoa(srv.Process.Pid)
	t.Cleanup(func() { removeObjects(t, pid) }) // if the test fails: leave nothing running
	waitUntil(t, "the warm pool to fill", func() bool { return len(dockerObjects(t, "ps", "-aq", pid)) >= 1 })
	instance := sandboxInstance(t, pid)
	if n := len(watchdogs(t, instance)); n != 1 {
		t.Fatalf("%d watchdogs run for the server's sandbox %s, want 1; server log: %s", n, instance, srvErr)
	}
	if err := srv.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// No new start: the dead server's watchdog removes them, and exits.
	waitUntil(t, "the killed server's containers and networks removed without a restart", func() bool {
		return len(dockerObjects(t, "ps", "-aq", pid)) == 0 && len(dockerObjects(t, "network", "ls", "-q", pid)) == 0
	})
	waitUntil(t, "the killed server's watchdog to exit", func() bool { return len(watchdogs(t, instance)) == 0 })
	_ = srv.Wait() // after the watchdog: it held the server's standard error
	if !strings.Contains(srvErr.String(), "removed the sandbox's containers and networks") {
		t.Errorf("the watchdog does not report its work; server log: %s", srvErr)
	}

	srv2, log2 := startServer(t, op)
	if left := dockerObjects(t, "ps", "-aq", pid); len(left) != 0 {
		t.Fatalf("the killed server's containers came back: %v", left)
	}
	if out := op.must("invoke", "textstat", "--input", `{"text":"again"}`); !strings.Contains(out, `"again"`) {
		t.Fatalf("invoke textstat after restart: %s", out)
	}
	pid2 := strconv.Itoa(srv2.Process.Pid)
	waitUntil(t, "the new server's warm pool to fill", func() bool { return len(dockerObjects(t, "ps", "-aq", pid2)) >= 1 })
	instance2 := sandboxInstance(t, pid2)
	stopServer(t, srv2, log2)
	if left := dockerObjects(t, "ps", "-aq", pid2); len(left) != 0 {
		t.Fatalf("a cleanly stopped server left containers: %v", left)
	}
	if w := watchdogs(t, instance2); len(w) != 0 {
		t.Fatalf("a cleanly stopped server left its watchdog running: pids %v", w)
	}
}

// removeObjects force-removes the containers and networks skillbox process pid
// labelled.
func removeObjects(t *testing.T, pid string) {
	if ids := dockerObjects(t, "ps", "-aq", pid); len(ids) > 0 {
		_ = exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
	}
	if ids := dockerObjects(t, "network", "ls", "-q", pid); len(ids) > 0 {
		_ = exec.Command("docker", append([]string{"network", "rm"}, ids...)...).Run()
	}
}

// sandboxInstance is the instance id on the containers of skillbox process pid.
func sandboxInstance(t *testing.T, pid string) string {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-a", "--filter", "label=dev.skillbox.pid="+pid,
		"--format", `{{.Label "dev.skillbox.instance"}}`).Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	if len(f) == 0 || f[0] == "" {
		t.Fatalf("no instance label on the containers of pid %s", pid)
	}
	return f[0]
}

// watchdogs lists the pids of running container watchdogs for a sandbox instance.
func watchdogs(t *testing.T, instance string) []string {
	t.Helper()
	want := "\x00internal\x00container-watchdog\x00" + instance + "\x00"
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		// A zombie's command line is empty: only running watchdogs match.
		if b, err := os.ReadFile("/proc/" + d.Name() + "/cmdline"); err == nil && strings.Contains(string(b), want) {
			pids = append(pids, d.Name())
		}
	}
	return pids
}

// dockerObjects lists the IDs of containers ("ps", "-aq") or networks ("network", "ls",
// "-q") that skillbox process pid labelled.
func dockerObjects(t *testing.T, args ...string) []string {
	t.Helper()
	pid := args[len(args)-1]
	args = append(args[:len(args)-1], "--filter", "label=dev.skillbox.pid="+pid, "--filter", "label=dev.skillbox.managed=true")
	out, err := exec.Command("docker", args...).Output()
	if err != nil {
		t.Fatalf("docker %v: %v", args, err)
	}
	return strings.Fields(string(out))
}

// requireDocker skips without a Docker engine, unless CI requires one.
func requireDocker(t *testing.T) {
	t.Helper()
	if err := exec.Command("docker", "version").Run(); err != nil {
		if os.Getenv("SKILLBOX_REQUIRE_DOCKER") == "1" {
			t.Fatalf("SKILLBOX_REQUIRE_DOCKER=1 but no docker engine answers: %v", err)
		}
		t.Skipf("SKIPPING: no docker engine answers (%v)", err)
	}
}

// installTextstat builds the textstat container skill (a static binary in a FROM-scratch
// image, saved to image.tar), signs it with op's key, installs and approves it. The
// image is removed when the test ends.
func installTextstat(t *testing.T, op *operatorHome) {
	t.Helper()
	build := t.TempDir()
	gb := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(build, "textstat"), "../../skills/textstat")
	gb.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := gb.CombinedOutput(); err != nil {
		t.Fatalf("go build textstat: %v\n%s", err, out)
	}
	df, err := os.ReadFile("../../skills/textstat/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// A label of this run's own: image IDs are content addresses, and another run's
	// cleanup (or the demo's) must not delete the image this test installed.
	df = append(df, "\nLABEL dev.skillbox.test-run="+filepath.Base(build)+"\n"...)
	if err := os.WriteFile(filepath.Join(build, "Dockerfile"), df, 0o644); err != nil {
		t.Fatal(err)
	}
	tag := "skillbox-test/textstat-cli:" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("docker", "build", "-q", "-t", tag, build).CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	idOut, err := exec.Command("docker", "image", "inspect", "-f", "{{.Id}}", tag).Output()
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(string(idOut))
	t.Cleanup(func() { _ = exec.Command("docker", "image", "rm", "-f", tag, id).Run() })

	pkg := filepath.Join(op.work, "textstat")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("docker", "save", "-o", filepath.Join(pkg, "image.tar"), tag).CombinedOutput(); err != nil {
		t.Fatalf("docker save: %v\n%s", err, out)
	}
	m, err := os.ReadFile("../../skills/textstat/skill.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkg, "skill.yaml"), m, 0o644); err != nil {
		t.Fatal(err)
	}
	op.must("pack", pkg)
	op.must("sign", pkg, "--key", filepath.Join(op.work, "release.key"))
	op.must("install", pkg)
	op.must("approve", "textstat", "--yes", "--by", "test")
}
