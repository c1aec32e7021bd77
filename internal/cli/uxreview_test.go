package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// installWasmSkill signs and installs the echo module as skill name with extra
// manifest lines, unapproved.
func (o *operatorHome) installWasmSkill(t *testing.T, name, extra string) {
	t.Helper()
	pkg := writeWasmSkill(t, o.work, name, filepath.Join("..", "..", "runtime", "engine", "testdata", "echo.wasm"), extra)
	o.must("pack", pkg)
	o.must("sign", pkg, "--key", filepath.Join(o.work, "release.key"))
	tgz := filepath.Join(o.work, name+".tar.gz")
	o.must("pack", pkg, "-o", tgz)
	o.must("install", tgz)
}

// approve without --grant gives what the manifest asks, but env and secret values need a
// source that only a grant file names: the GRANT section says they are left out instead
// of "exactly what it asks" alone.
func TestApproveWithoutGrantNamesValuesLeftOut(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	op.installWasmSkill(t, "keyed", `capabilities:
  network: [https://api.example.com]
  env: [LANG]
  secrets:
    - PLAIN_KEY
    - name: API_TOKEN
      origins: [https://api.example.com]
`)
	out := op.must("approve", "keyed", "--yes", "--by", "test")
	for _, want := range []string{
		"what it asks but env and secret values (no --grant file; only one names their sources:",
		"left out: env LANG, secret PLAIN_KEY, secret API_TOKEN",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("approve without --grant does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "exactly what it asks") {
		t.Errorf("approve without --grant says it gives exactly what is asked:\n%s", out)
	}
}

// The client commands speak the docs' words: gRPC codes as docs/api.md writes them
// (PERMISSION_DENIED, not Go's PermissionDenied), the way forward when a token is
// missing, required flags in words, `skills --json` lists as lists, and a pending
// call's grant without trailing blanks.
func TestClientWordsThroughTheServer(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	const agentTok, opsTok, watchTok = "agent-token-words-0123456789", "ops-token-words-0123456789ab", "watch-token-words-0123456789"
	tokens := filepath.Join(op.work, "tokens")
	if err := os.WriteFile(tokens, []byte("agent "+agentTok+"\nops "+opsTok+"\nwatch "+watchTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	grant := filepath.Join(op.work, "grant.yaml")
	if err := os.WriteFile(grant, []byte("oversight:\n  approvers: [\"token:ops\"]\n  wait: 10m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	op.must("approve", "echo", "--grant", grant, "--yes", "--by", "test")
	as := func(tok string) []string { return append(append([]string{}, op.env...), "SKILLBOX_TOKEN="+tok) }
	srv, srvLog := startServerWith(t, bin, as(opsTok), "--no-container", "--token-file", tokens, "--admin", "token:ops", "--admin", "token:watch")

	var listed []skillJSON
	js := signRunCLI(t, bin, as(agentTok), "skills", "--json")
	if err := json.Unmarshal([]byte(js.stdout), &listed); err != nil || len(listed) != 1 {
		t.Fatalf("skills --json: %v: %s %s", err, js.stdout, js.stderr)
	}
	if !strings.Contains(js.stdout, `"files": []`) || strings.Contains(js.stdout, "null") {
		t.Errorf("skills --json has a null list:\n%s", js.stdout)
	}

	wantLine(t, "no token", signRunCLI(t, bin, op.env, "skills"),
		": pass --token or set SKILLBOX_TOKEN to a token from the server's --token-file (UNAUTHENTICATED)")
	wantLine(t, "pending by a non-admin", signRunCLI(t, bin, as(agentTok), "pending"),
		"pending: token:agent may not use the Admin service (NOT_ADMIN)")
	for _, cmd := range []string{"pending", "calls"} {
		r := signRunCLI(t, bin, as(agentTok), cmd, "--json")
		var got jsonError
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 1 || got.Error.Reason != "NOT_ADMIN" ||
			got.Error.Message != "token:agent may not use the Admin service" {
			t.Errorf("%s --json by a non-admin: exit %d, stdout %q (%v)", cmd, r.code, r.stdout, err)
		}
	}
	wantLine(t, "deny without a reason", signRunCLI(t, bin, as(opsTok), "deny", "0c11b9fae5de00c7e4999d74"),
		"deny 0c11b9fae5de00c7e4999d74: --reason is required: the caller is told why")
	wantLine(t, "invoke without input", signRunCLI(t, bin, as(agentTok), "invoke", "echo"),
		"invoke: --input is required")

	cmd := exec.Command(bin, "invoke", "echo", "--input", `{"n":1}`)
	cmd.Env = append(os.Environ(), as(agentTok)...)
	var out, errb lockedWriter
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var pending string
	waitUntil(t, "a pending call", func() bool {
		pending = signRunCLI(t, bin, as(opsTok), "pending").stdout
		return strings.Contains(pending, "decide: skillbox allow")
	})
	for _, line := range strings.Split(pending, "\n") {
		if strings.TrimRight(line, " ") != line {
			t.Errorf("pending prints trailing blanks: %q", line)
		}
	}
	id := strings.Fields(pending)[0]
	// UX review B11: an admin who is not an approver is not told how to decide, and
	// --json says who may (mayDecide).
	watched := signRunCLI(t, bin, as(watchTok), "pending").stdout
	if !strings.Contains(watched, id) || strings.Contains(watched, "skillbox allow") ||
		!strings.Contains(watched, "  decide: not yours to decide (approvers: token:ops; never the call's own caller)\n") {
		t.Errorf("pending for an admin who is not an approver:\n%s", watched)
	}
	for tok, want := range map[string]bool{opsTok: true, watchTok: false} {
		var list []struct{ MayDecide *bool }
		r := signRunCLI(t, bin, as(tok), "pending", "--json")
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 || list[0].MayDecide == nil || *list[0].MayDecide != want {
			t.Errorf("pending --json (mayDecide %v): %v %s", want, err, r.stdout)
		}
	}
	if r := signRunCLI(t, bin, as(opsTok), "deny", id, "--reason", "not now"); r.code != 0 {
		t.Fatalf("deny: %s", r.stderr)
	}
	_ = cmd.Wait()
	if got := errb.String(); !strings.Contains(got, "invoke echo: token:ops denied the call of echo: not now (APPROVAL_DENIED) audit ") {
		t.Errorf("the caller sees %q", got)
	}
	stopServer(t, srv, srvLog)
}

// A package path that does not exist is said so, for install and verify, instead of
// "stat …" or a missing-bundle check of a directory that is not there.
func TestMissingPackageSource(t *testing.T) {
	bin := signBuildCLI(t)
	home := []string{"SKILLBOX_HOME=" + t.TempDir()}
	missing := filepath.Join(t.TempDir(), "nosuch")
	for _, verb := range []string{"install", "verify"} {
		wantLine(t, verb+" of a missing path", signRunCLI(t, bin, home, verb, missing),
			verb+": no file or directory "+missing+" (want a package directory, a .tar.gz made by skillbox pack -o, or oci://REF)")
	}
}

// review and approve of a name or version that is not installed say what is: the
// installed versions for a --pin that matches none, where to look for a name that has
// none (as disable does).
func TestNotInstalledSaysWhatIs(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"approve", "nothere", "--yes"}, "skillbox: approve: no skill named nothere is installed (skillbox skills lists them; skillbox install PACKAGE adds one)\n"},
		{[]string{"approve", "echo", "--pin", "9.9.9", "--yes"}, "skillbox: approve: echo@9.9.9 is not installed; installed versions of echo: 1.0.0 (--pin takes one, or a sha256: manifest digest)\n"},
		{[]string{"review", "echo", "--pin", "9.9.9"}, "skillbox: review: echo@9.9.9 is not installed; installed versions of echo: 1.0.0 (--pin takes one, or a sha256: manifest digest)\n"},
	} {
		r := signRunCLI(t, bin, op.env, tc.args...)
		if r.code != 1 || r.stderr != tc.want {
			t.Errorf("%s: exit %d, stderr %q; want exit 1, %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
}
