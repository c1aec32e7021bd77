package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/runtime/audit"
)

// TestAuditTornTailThroughTheCLI: a crash left the audit log's last line torn. The
// server refuses to start and names the fix; `skillbox audit recover` moves the torn
// bytes aside and records them; the chain verifies, the head printed can be kept and
// checked with --head (which sees whole lines cut from the end), and the server starts.
func TestAuditTornTailThroughTheCLI(t *testing.T) {
	bin := signBuildCLI(t)
	home, err := os.MkdirTemp("", "sb") // short: the socket path must fit in 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	env := []string{"SKILLBOX_HOME=" + home}
	dir := filepath.Join(home, "audit")
	l, err := audit.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := l.Append(context.Background(), audit.Record{Event: audit.EventReload, Caller: "test", Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	path := filepath.Join(dir, audit.FileName)
	whole, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(whole), "\n")
	if err := os.WriteFile(path, []byte(strings.Join(lines[:2], "")+lines[2][:60]), 0o600); err != nil {
		t.Fatal(err)
	}

	r := signRunCLI(t, bin, env, "serve", "--no-container")
	if r.code == 0 || !strings.Contains(r.stderr, "torn line") || !strings.Contains(r.stderr, "skillbox audit recover") {
		t.Fatalf("serve on a torn log: exit %d: %s", r.code, r.stderr)
	}
	if r := signRunCLI(t, bin, env, "audit", "verify"); r.code == 0 || !strings.Contains(r.stderr, "line 3: torn") {
		t.Fatalf("verify of a torn log: exit %d: %s", r.code, r.stderr)
	}

	r = signRunCLI(t, bin, env, "audit", "recover", "--by", "ops")
	if r.code != 0 || !strings.Contains(r.stdout, "moved 60 torn bytes") || !strings.Contains(r.stdout, "recorded as record 3") {
		t.Fatalf("audit recover: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	sides, _ := filepath.Glob(filepath.Join(dir, audit.FileName+".torn-*"))
	if len(sides) != 1 {
		t.Fatalf("side files: %v", sides)
	}
	if b, _ := os.ReadFile(sides[0]); string(b) != lines[2][:60] {
		t.Fatalf("side file holds %q", b)
	}
	r = signRunCLI(t, bin, env, "audit", "verify")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ok: 3 records") {
		t.Fatalf("verify after recover: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	head := strings.TrimSpace(r.stdout[strings.LastIndex(r.stdout, "head ")+len("head "):])
	if len(head) != 64 {
		t.Fatalf("verify prints no head: %q", r.stdout)
	}
	if r := signRunCLI(t, bin, env, "audit", "verify", "--head", head); r.code != 0 {
		t.Fatalf("verify --head of the current head: exit %d: %s", r.code, r.stderr)
	}

	// The server starts on the recovered log.
	srv := exec.Command(bin, "serve", "--no-container")
	srv.Env = append(os.Environ(), env...)
	var srvErr bytes.Buffer
	srv.Stderr = &srvErr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() { _ = srv.Process.Kill() })
	waitUntil(t, "the server answers", func() bool { return signRunCLI(t, bin, env, "skills").code == 0 })
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve exited with %v: %s", err, srvErr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not exit after SIGTERM: %s", srvErr.String())
	}

	// Whole lines cut from the end: the chain still verifies, the kept head does not.
	b, _ := os.ReadFile(path)
	lines = strings.SplitAfter(string(b), "\n")
	if err := os.WriteFile(path, []byte(strings.Join(lines[:2], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := signRunCLI(t, bin, env, "audit", "verify"); r.code != 0 {
		t.Fatalf("plain verify of a cut log: exit %d: %s", r.code, r.stderr)
	}
	r = signRunCLI(t, bin, env, "audit", "verify", "--head", head)
	if r.code == 0 || !strings.Contains(r.stderr, "removed from its end") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("verify --head of a cut log: exit %d: %q", r.code, r.stderr)
	}
}
