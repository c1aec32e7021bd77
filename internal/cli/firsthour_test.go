package cli

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/skillpkg"
)

// The CLI basics a newcomer tries first, through the built binary: help both ways,
// the version, a suggestion for a typo, and keygen's refusals in plain words.
func TestCLIBasics(t *testing.T) {
	bin := signBuildCLI(t)
	work := t.TempDir()
	env := []string{"SKILLBOX_HOME=" + filepath.Join(work, "home"), "SKILLBOX_KEY_PASSWORD="}
	run := func(args ...string) signCLIResult { t.Helper(); return signRunCLI(t, bin, env, args...) }

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"help"}, "skillbox - run untrusted"},
		{[]string{"help", "init"}, "skillbox init - scaffold"},
		{[]string{"help", "audit", "verify"}, "skillbox audit verify - "},
	} {
		r := run(tc.args...)
		if r.code != 0 || !strings.Contains(r.stdout, tc.want) {
			t.Errorf("skillbox %s: exit %d, stdout %q, stderr %q: want %q", strings.Join(tc.args, " "), r.code, r.stdout, r.stderr, tc.want)
		}
	}
	// `help X` and `X --help` are one text.
	if a, b := run("help", "approve"), run("approve", "--help"); a.stdout != b.stdout {
		t.Errorf("help approve and approve --help differ:\n%s\n---\n%s", a.stdout, b.stdout)
	}

	v1, v2 := run("version"), run("--version")
	if v1.code != 0 || !strings.HasPrefix(v1.stdout, "skillbox version ") || !strings.Contains(v1.stdout, "go1.") || v1.stdout != v2.stdout {
		t.Errorf("version: %q / --version: %q", v1.stdout, v2.stdout)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"invok"}, `unknown command "invok"; did you mean skillbox invoke?`},
		{[]string{"aprove", "x"}, "did you mean skillbox approve?"},
		{[]string{"audit", "verfy"}, `unknown command "audit verfy"; did you mean skillbox audit verify?`},
		{[]string{"help", "nosuchthing"}, `help: unknown command "nosuchthing" (see skillbox --help)`},
		{[]string{"keygen", "--out", filepath.Join(work, "nodir", "acme")}, "the directory " + filepath.Join(work, "nodir") + " does not exist; create it first"},
	} {
		r := run(tc.args...)
		line := strings.TrimRight(r.stderr, "\n")
		if r.code == 0 || strings.Contains(line, "\n") || !strings.Contains(line, tc.want) {
			t.Errorf("skillbox %s: exit %d, stderr %q: want one line with %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
		if strings.Contains(r.stderr, "No help topic") {
			t.Errorf("skillbox %s: urfave/cli's words reached the user: %q", strings.Join(tc.args, " "), r.stderr)
		}
	}

	// An existing key is never overwritten.
	prefix := filepath.Join(work, "acme")
	if r := run("keygen", "--out", prefix); r.code != 0 {
		t.Fatalf("keygen: %s", r.stderr)
	}
	before, _ := os.ReadFile(prefix + ".key")
	if r := run("keygen", "--out", prefix); r.code == 0 || !strings.Contains(r.stderr, "never overwrites a key") {
		t.Fatalf("second keygen: exit %d, %q", r.code, r.stderr)
	}
	if after, _ := os.ReadFile(prefix + ".key"); string(after) != string(before) {
		t.Fatal("the existing key was overwritten")
	}
}

// reload and calls answer over the socket; the kill switch refuses a name that is not
// installed and tells callers the operator's reason.
func TestAdminCommandsThroughTheCLI(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	run := func(args ...string) signCLIResult { t.Helper(); return signRunCLI(t, bin, op.env, args...) }

	// With no server answering, reload says so in one line.
	if r := run("reload"); r.code == 0 || !strings.Contains(r.stderr, "no server answers") {
		t.Fatalf("reload without a server: exit %d %q", r.code, r.stderr)
	}
	// Offline, too, a typo is not a switch.
	if r := run("disable", "ecoh"); r.code == 0 || !strings.Contains(r.stderr, "no skill named ecoh is installed") {
		t.Fatalf("offline disable of a typo: exit %d %q", r.code, r.stderr)
	}
	// Offline, the switch is written to the home; a server running elsewhere on it (one
	// this CLI could not reach) takes it at its next reload, which the line must not deny.
	for _, verb := range []string{"disable", "enable"} {
		want := verb + "d echo (no server answered: written to the skill home; a server on this home honours it when it starts or reloads)\n"
		if out := op.must(verb, "echo"); out != want {
			t.Fatalf("offline %s: %q; want %q", verb, out, want)
		}
	}

	srv, srvLog := startServer(t, op, "--no-container")
	defer stopServer(t, srv, srvLog)

	if out := op.must("reload"); out != "reloaded: the server knows 1 installed package(s)\n" {
		t.Fatalf("reload: %q", out)
	}
	if out := op.must("calls"); out != "no calls in flight\n" {
		t.Fatalf("calls: %q", out)
	}
	if out := op.must("calls", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("calls --json: %q", out)
	}

	for _, args := range [][]string{{"disable", "nosuch"}, {"enable", "nosuch"}} {
		r := run(args...)
		if r.code == 0 || !strings.Contains(r.stderr, "NOT_FOUND") || !strings.Contains(r.stderr, "no skill named nosuch is installed") {
			t.Errorf("%s: exit %d %q", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	// The unknown name still answers NOT_FOUND, not DISABLED.
	if r := run("invoke", "nosuch", "--input", "{}"); !strings.Contains(r.stderr, "NOT_FOUND") {
		t.Errorf("invoke nosuch after disable nosuch: %q", r.stderr)
	}

	op.must("disable", "echo", "--reason", "leaks tokens, see ticket 42")
	r := run("invoke", "echo", "--input", "{}")
	if r.code == 0 || !strings.Contains(r.stderr, "DISABLED") || !strings.Contains(r.stderr, "leaks tokens, see ticket 42") {
		t.Fatalf("invoke of a disabled skill: exit %d %q: want DISABLED with the operator's reason", r.code, r.stderr)
	}
	op.must("enable", "echo")
	if out := op.must("invoke", "echo", "--input", `{"a":1}`); !strings.Contains(out, `"a": 1`) {
		t.Fatalf("invoke after enable: %q", out)
	}
}

// A disable of a skill already disabled says so and what became of its reason (callers
// are told the new one), and an enable of one that is not disabled says there was
// nothing to lift: offline and through a server alike. Both were silent.
func TestSwitchTwiceSaysSo(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	const offline = " (no server answered: written to the skill home; a server on this home honours it when it starts or reloads)\n"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"disable", "echo", "--reason", "leaks"}, "disabled echo" + offline},
		{[]string{"disable", "echo", "--reason", "leaks tokens"}, "echo was already disabled (reason \"leaks\"); its reason is now \"leaks tokens\"\ndisabled echo" + offline},
		{[]string{"enable", "echo"}, "enabled echo" + offline},
		{[]string{"enable", "echo"}, "echo was not disabled: nothing to lift\nenabled echo" + offline},
	} {
		if out := op.must(tc.args...); out != tc.want {
			t.Errorf("offline %s: %q; want %q", strings.Join(tc.args, " "), out, tc.want)
		}
	}

	// A server named with --server that does not answer is a failure, not a switch
	// written to this machine's home, where it would not hold for that server.
	nosock := "unix://" + filepath.Join(op.work, "none.sock")
	for _, verb := range []string{"disable", "enable"} {
		r := signRunCLI(t, bin, op.env, verb, "echo", "--server", nosock)
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "skillbox: "+verb+" echo: no server answers") {
			t.Errorf("%s --server (down): exit %d, stdout %q, stderr %q", verb, r.code, r.stdout, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(op.home, "disabled", "echo")); err == nil {
		t.Fatal("disable --server (down) wrote the switch to the skill home")
	}

	srv, srvLog := startServer(t, op, "--no-container")
	defer stopServer(t, srv, srvLog)
	const ended = "; 0 call(s) in flight cancelled and ended\n"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"disable", "echo", "--reason", "leaks"}, "disabled echo" + ended},
		{[]string{"disable", "echo", "--reason", "leaks"}, "echo was already disabled, with this reason\ndisabled echo" + ended},
		{[]string{"disable", "echo"}, "echo was already disabled (reason \"leaks\"); it now has none\ndisabled echo" + ended},
		{[]string{"enable", "echo"}, "enabled echo\n"},
		{[]string{"enable", "echo"}, "echo was not disabled: nothing to lift\nenabled echo\n"},
	} {
		if out := op.must(tc.args...); out != tc.want {
			t.Errorf("through the server, %s: %q; want %q", strings.Join(tc.args, " "), out, tc.want)
		}
	}
	// A switch in the skill home that the server has not read yet (written while it
	// ran, before a reload) is one enable lifts, and a disable replaces.
	marker := filepath.Join(op.home, "disabled", "echo")
	if err := os.WriteFile(marker, []byte(`{"at":"2026-01-01T00:00:00Z","reason":"written by hand"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := op.must("disable", "echo", "--reason", "leaks"); out != "echo was already disabled (reason \"written by hand\"); its reason is now \"leaks\"\ndisabled echo"+ended {
		t.Errorf("disable over a switch the server has not read: %q", out)
	}
	op.must("enable", "echo")
	if err := os.WriteFile(marker, []byte(`{"at":"2026-01-01T00:00:00Z"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := op.must("enable", "echo"); out != "enabled echo\n" {
		t.Errorf("enable of a switch the server has not read: %q; want %q", out, "enabled echo\n")
	}
}

// verify reads the archive an operator receives, as install would, and refuses a
// tampered one.
func TestVerifyArchive(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	archive := filepath.Join(op.work, "echo.tar.gz")
	if out := op.must("verify", archive); !strings.Contains(out, "verified "+archive+": signed by release") {
		t.Fatalf("verify archive: %q", out)
	}
	// The signed package's files with the module changed after signing.
	pkg := filepath.Join(op.work, "echo")
	bad := filepath.Join(op.work, "bad.tar.gz")
	f, err := os.Create(bad)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	files, err := skillpkg.Files(pkg)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(filepath.Join(pkg, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "module.wasm" {
			data = append(data, 0) // one byte more: a different module
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	if err := errors.Join(tw.Close(), gz.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
	r := signRunCLI(t, bin, op.env, "verify", bad)
	if line := strings.TrimSpace(r.stderr); r.code == 0 || strings.Contains(line, "\n") || !strings.Contains(line, "verify "+bad+": ") || !strings.Contains(line, "digest") {
		t.Fatalf("verify of a tampered archive: exit %d %q: want one line naming the archive and the digest", r.code, r.stderr)
	}
}
