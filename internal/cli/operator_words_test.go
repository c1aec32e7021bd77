package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/runtime/client"
)

// jsonError is the error object a client command prints on stdout with --json.
type jsonError struct {
	Error struct {
		Reason, Message, AuditID string
	}
}

// UX review B5: with --json, pending, skills and calls answer on stdout when they fail,
// with the error object invoke --json prints, not nothing.
func TestClientJSONFailures(t *testing.T) {
	bin := buildCLI(t)
	work := t.TempDir()
	env := []string{"SKILLBOX_HOME=" + filepath.Join(work, "home"), "SKILLBOX_SERVER=", "SKILLBOX_TOKEN="}
	nosock := "unix://" + filepath.Join(work, "no.sock")
	for _, cmd := range []string{"pending", "skills", "calls"} {
		r := signRunCLI(t, bin, env, cmd, "--json", "--server", nosock)
		var got jsonError
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 1 || strings.Count(r.stdout, "\n") != 1 ||
			got.Error.Reason != "UNAVAILABLE" || !strings.HasPrefix(got.Error.Message, "no server answers") {
			t.Errorf("%s --json with no server: exit %d, stdout %q (%v), stderr %q", cmd, r.code, r.stdout, err, r.stderr)
		}
		// The one failure line of every client command: MESSAGE (REASON).
		if want := "skillbox: " + cmd + ": " + got.Error.Message + " (" + got.Error.Reason + ")\n"; r.stderr != want {
			t.Errorf("%s --json with no server: stderr %q, want %q", cmd, r.stderr, want)
		}
		if r := signRunCLI(t, bin, env, cmd, "--server", nosock); r.stdout != "" {
			t.Errorf("%s without --json prints %q on stdout", cmd, r.stdout)
		}
	}
}

// UX review B6 and B7: verify takes --home, whose trust.yaml it uses, as the other
// operator commands do; install without a trust.yaml says how to write one, as verify
// does, but not when the trust.yaml is there and a key file it names is not.
func TestVerifyHomeAndInstallTrustHint(t *testing.T) {
	bin := buildCLI(t)
	op := newOperatorHome(t, bin)
	tgz := filepath.Join(op.work, "echo.tar.gz")
	empty := filepath.Join(op.work, "empty")
	elsewhere := []string{"SKILLBOX_HOME=" + empty}
	if r := signRunCLI(t, bin, elsewhere, "verify", tgz, "--home", op.home); r.code != 0 || !strings.HasPrefix(r.stdout, "verified "+tgz+": signed by release") {
		t.Errorf("verify --home: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	wantLine(t, "verify without a trust.yaml", signRunCLI(t, bin, elsewhere, "verify", tgz),
		"verify: no usable trust policy at "+filepath.Join(empty, "trust.yaml")+": the file does not exist (write one listing your signers, or give --trust FILE or --key PUB)")
	wantLine(t, "install without a trust.yaml", signRunCLI(t, bin, elsewhere, "install", tgz),
		"install: no usable trust policy at "+filepath.Join(empty, "trust.yaml")+": the file does not exist (write one listing your signers: skillbox install --help shows how)")
	// A trust.yaml that exists but names a key file that does not is not told to write
	// one: the line names the key and where relative paths are read from, and stops.
	typo := filepath.Join(op.work, "typo")
	if err := os.MkdirAll(typo, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(typo, "trust.yaml"), []byte("signers:\n  - name: release\n    key: keys/relase.pub\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyLine := filepath.Join(typo, "trust.yaml") + ": signers[0].key: keys/relase.pub does not exist (relative paths are read from " + typo + ", the trust file's directory)"
	wantLine(t, "verify with a trust.yaml naming no key file", signRunCLI(t, bin, []string{"SKILLBOX_HOME=" + typo}, "verify", tgz), "verify: "+keyLine)
	for _, cmd := range []string{"install", "verify"} {
		if r := signRunCLI(t, bin, []string{"SKILLBOX_HOME=" + typo}, cmd, tgz); r.code != 1 || strings.Contains(r.stderr, "write one") || !strings.Contains(r.stderr, keyLine) {
			t.Errorf("%s with a trust.yaml naming no key file: exit %d, %q", cmd, r.code, r.stderr)
		}
	}
	if r := signRunCLI(t, bin, nil, "install", "--help"); !strings.Contains(r.stdout, "signers:") || !strings.Contains(r.stdout, "key: keys/acme.pub") {
		t.Errorf("install --help does not show a trust.yaml:\n%s", r.stdout)
	}
}

// UX review B8: review NAME (an installed skill) has the kind: line review DIR has,
// and so does approve, which shows the same review.
func TestReviewInstalledNamesKind(t *testing.T) {
	bin := buildCLI(t)
	op := newOperatorHome(t, bin)
	const kind = "\n  kind:     command: a fresh instance for every call\n"
	dir := writeWasmSkill(t, filepath.Join(op.work, "fresh"), "echo", filepath.Join("..", "..", "runtime", "engine", "testdata", "echo.wasm"), "")
	op.must("pack", dir) // fills in the module's digest
	if out := op.must("review", dir); !strings.Contains(out, kind) {
		t.Fatalf("review DIR has no kind line:\n%s", out)
	}
	if out := op.must("review", "echo"); !strings.Contains(out, kind) {
		t.Errorf("review NAME has no kind line:\n%s", out)
	}
	if out := op.must("review", "echo", "--json"); !strings.Contains(out, `"wasmKind": "command"`) {
		t.Errorf("review NAME --json has no wasmKind:\n%s", out)
	}
	if out := op.must("approve", "echo", "--yes", "--by", "test"); !strings.Contains(out, kind) {
		t.Errorf("approve's review has no kind line:\n%s", out)
	}
}

// UX review B9: how long a call has run, as `calls` prints it, is written as people
// write durations.
func TestCallAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1234 * time.Millisecond: "1.234s", 90*time.Second + 300*time.Millisecond: "1m30s", 10 * time.Minute: "10m", 61 * time.Minute: "1h1m",
	} {
		if got := callAge(d); got != want {
			t.Errorf("callAge(%v) = %q, want %q", d, got, want)
		}
	}
}

// UX review B10: a console no --admin can use (the default admin is the socket's uid,
// never a console caller) is warned of at start; an --admin token:NAME silences it.
func TestServeWarnsOfAConsoleNobodyCanUse(t *testing.T) {
	bin := buildCLI(t)
	home, err := os.MkdirTemp("", "sb") // short: the socket path must fit in 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	tokens := filepath.Join(home, "tokens")
	if err := os.WriteFile(tokens, []byte("ops ops-token-console-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"SKILLBOX_HOME=" + home, "SKILLBOX_SERVER=", "SKILLBOX_TOKEN="}
	const warning = "skillbox: warning: nobody can use the console: only --admin identities may, and none is a token:NAME " +
		"(add --admin token:NAME, a NAME in the token file)\n"
	for _, admin := range [][]string{{"--admin", "unix:uid=0"}, {"--admin", "token:ops"}} {
		args := append([]string{"--no-container", "--console", "127.0.0.1:0", "--token-file", tokens}, admin...)
		srv, log := startServerWith(t, bin, env, args...)
		stopServer(t, srv, log)
		if warned := strings.Contains(log.String(), warning); warned != (admin[1] != "token:ops") {
			t.Errorf("serve %q: warned %v:\n%s", args, warned, log)
		}
	}
}

// UX review B12: the docs show what the binary prints: operator-guide.md's GRANT
// sample (a skill like init's hello, approved without a grant file) and
// oversight.md's waiting: line.
func TestDocsSamplesMatchTheBinary(t *testing.T) {
	guide, err := os.ReadFile(filepath.Join("..", "..", "docs", "operator-guide.md"))
	if err != nil {
		t.Fatal(err)
	}
	const head = "GRANT (what the skill will really get):\n"
	i := strings.Index(string(guide), head)
	if i < 0 {
		t.Fatal("operator-guide.md has no GRANT sample")
	}
	sample := string(guide[i:])
	sample = sample[:strings.Index(sample, "```")]

	bin := buildCLI(t)
	op := newOperatorHome(t, bin)
	op.installWasmSkill(t, "hello", "limits: {timeout: 5s, memory: 32MiB, output: 64KiB}\n")
	out := op.must("approve", "hello", "--by", "alice", "--yes")
	j := strings.Index(out, head)
	if j < 0 {
		t.Fatalf("approve prints no GRANT section:\n%s", out)
	}
	if got := out[j : j+strings.Index(out[j:], "\n\n")+1]; got != sample {
		t.Errorf("operator-guide.md's GRANT sample:\n%s\nwhat approve prints:\n%s", sample, got)
	}

	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "oversight.md"))
	if err != nil {
		t.Fatal(err)
	}
	k := strings.Index(string(doc), "`waiting: ")
	if k < 0 {
		t.Fatal("oversight.md has no waiting: line")
	}
	line := string(doc[k+1:])
	line = line[:strings.Index(line, "`")]
	at := time.Date(2026, 1, 2, 14, 5, 9, 0, time.Local)
	want := strings.Replace(line, "14:05:09 UTC", at.Format("15:04:05 MST"), 1)
	if got := waitingLine("pay", client.Waiting{CallID: "4f007c3e…", Expires: at}); got != want {
		t.Errorf("oversight.md's waiting: line:\n%s\ninvoke prints:\n%s", want, got)
	}
}
