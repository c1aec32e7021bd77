package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOperatorFlowThroughTheCLI drives the built binary as an operator would: keygen,
// pack, sign, trust, install, approve, serve, invoke; then SIGHUP re-reads trust.yaml
// (a replaced key stops verifying) and SIGTERM drains and exits cleanly.
func TestOperatorFlowThroughTheCLI(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	home, work, env, keyFile, must := op.home, op.work, op.env, op.keyFile, op.must

	srv, srvErr := startServer(t, op, "--no-container")

	if out := must("invoke", "echo", "--input", `{"hello":"world"}`); !strings.Contains(out, `"hello": "world"`) {
		t.Fatalf("invoke: %s", out)
	}

	// The operator replaces the trusted key and sends SIGHUP: the installed package,
	// signed with the old key, no longer verifies.
	must("keygen", "--out", filepath.Join(work, "other"))
	otherPub, err := os.ReadFile(filepath.Join(work, "other.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, otherPub, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var last signCLIResult
	waitUntil(t, "the reload to take effect", func() bool {
		last = signRunCLI(t, bin, env, "invoke", "echo", "--input", `{}`)
		return last.code != 0
	})
	if !strings.Contains(last.stderr, "VERIFY_FAILED") || strings.Count(strings.TrimSpace(last.stderr), "\n") != 0 {
		t.Fatalf("after SIGHUP: %q, want one line with VERIFY_FAILED", last.stderr)
	}

	// A broken trust.yaml: the reload fails, and the log line says once that the
	// previous state is kept.
	trustPath := filepath.Join(home, "trust.yaml")
	goodTrust, err := os.ReadFile(trustPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(trustPath, []byte("signers: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the failed reload to be logged", func() bool { return strings.Contains(srvErr.String(), "previous state") })
	if err := os.WriteFile(trustPath, goodTrust, 0o600); err != nil {
		t.Fatal(err)
	}

	stopServer(t, srv, srvErr)
	if !strings.Contains(srvErr.String(), "reloaded (1 package)\n") || !strings.Contains(srvErr.String(), "draining") {
		t.Fatalf("serve's log: %s", srvErr.String())
	}
	for _, line := range strings.Split(srvErr.String(), "\n") {
		if strings.Contains(line, "previous state") && (strings.Count(line, "previous state") != 1 || !strings.Contains(line, "trust.yaml: line ")) {
			t.Fatalf("failed reload logged as %q: want the file and line, and the previous state kept said once", line)
		}
	}
	if _, err := os.Stat(filepath.Join(home, "skillbox.sock")); !os.IsNotExist(err) {
		t.Fatalf("the socket was left behind: %v", err)
	}
	if out := must("audit", "verify"); !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("audit verify: %s", out)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// operatorHome is a skill home in a temporary directory with the echo wasm skill
// signed, trusted, installed from its .tar.gz and approved, as an operator would.
type operatorHome struct {
	bin, home, work, keyFile string
	env                      []string
	must                     func(args ...string) string
}

func newOperatorHome(t *testing.T, bin string) *operatorHome {
	t.Helper()
	// A short home: the server's unix socket path must fit in 107 bytes.
	home, err := os.MkdirTemp("", "sb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	work := t.TempDir()
	env := []string{"SKILLBOX_HOME=" + home, "SKILLBOX_KEY_PASSWORD="}
	must := func(args ...string) string {
		t.Helper()
		r := signRunCLI(t, bin, env, args...)
		if r.code != 0 {
			t.Fatalf("skillbox %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
		}
		return r.stdout
	}

	pkg := writeWasmSkill(t, work, "echo", filepath.Join("..", "..", "runtime", "engine", "testdata", "echo.wasm"), "")
	must("pack", pkg)
	must("keygen", "--out", filepath.Join(work, "release"))
	must("sign", pkg, "--key", filepath.Join(work, "release.key"))
	pub, err := os.ReadFile(filepath.Join(work, "release.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(home, "keys", "release.pub")
	if err := os.WriteFile(keyFile, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	trust := "signers:\n  - name: release\n    key: keys/release.pub\n"
	if err := os.WriteFile(filepath.Join(home, "trust.yaml"), []byte(trust), 0o600); err != nil {
		t.Fatal(err)
	}
	must("pack", pkg, "-o", filepath.Join(work, "echo.tar.gz"))
	if out := must("install", filepath.Join(work, "echo.tar.gz")); !strings.Contains(out, "installed echo 1.0.0") {
		t.Fatalf("install: %s", out)
	}
	if out := must("approve", "echo", "--yes", "--by", "test"); !strings.Contains(out, "approved echo 1.0.0 for signer release") {
		t.Fatalf("approve: %s", out)
	}

	return &operatorHome{bin: bin, home: home, work: work, keyFile: keyFile, env: env, must: must}
}

// writeWasmSkill writes an unsigned, unpacked package work/name holding the module at
// wasmPath, with object input and output schemas and extra manifest lines.
func writeWasmSkill(t *testing.T, work, name, wasmPath, extra string) string {
	t.Helper()
	pkg := filepath.Join(work, name)
	code, err := os.ReadFile(wasmPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkg, "module.wasm"), code, 0o644); err != nil {
		t.Fatal(err)
	}
	manifest := "apiVersion: skillbox/v1\nname: " + name + "\nversion: 1.0.0\ndescription: A test skill.\n" +
		"sandbox:\n  wasm:\n    module: module.wasm\n    sha256: \"\"\ninput: {type: object}\noutput: {type: object}\n" + extra
	if err := os.WriteFile(filepath.Join(pkg, "skill.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return pkg
}
