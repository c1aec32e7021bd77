package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// approve tells a running server to reload with the same credentials as every client
// command (--server, --token and their environment variables): a server whose admins
// are token holders reloads when the operator's token is in SKILLBOX_TOKEN. (Before,
// approve dialled without a token, the server refused the reload, and the warning told
// the operator to set SKILLBOX_TOKEN, which approve did not read.)
func TestApproveReloadsWithTheClientsCredentials(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	const opsTok = "ops-token-0123456789abcdef0"
	tokens := filepath.Join(op.work, "tokens")
	if err := os.WriteFile(tokens, []byte("ops "+opsTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opsEnv := append(append([]string{}, op.env...), "SKILLBOX_TOKEN="+opsTok)
	srv, srvLog := startServerWith(t, bin, opsEnv, "--no-container", "--token-file", tokens, "--admin", "token:ops")
	r := signRunCLI(t, bin, opsEnv, "approve", "echo", "--yes", "--by", "test")
	if r.code != 0 || !strings.Contains(r.stdout, "the running server reloaded its approvals") || strings.Contains(r.stderr, "warning") {
		t.Fatalf("approve: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	stopServer(t, srv, srvLog)
}

// Re-approving without --grant keeps the approved version's callers and oversight (no
// manifest asks for them; dropping them would silently lift who may call the skill and
// who must allow each call) and says so; a --grant file without them lifts them.
func TestReapproveKeepsCallersAndOversight(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	grant := filepath.Join(op.work, "grant.yaml")
	if err := os.WriteFile(grant, []byte("callers: [\"token:agent\"]\noversight: {approvers: [\"token:ops\"], wait: 5m}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	op.must("approve", "echo", "--grant", grant, "--yes", "--by", "test")
	saved := filepath.Join(op.home, "approvals", "echo.yaml")
	out := op.must("approve", "echo", "--yes", "--by", "test")
	if !strings.Contains(out, "kept from the approved version: callers and oversight") {
		t.Fatalf("re-approve does not say what it kept:\n%s", out)
	}
	b, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "token:agent") || !strings.Contains(string(b), "token:ops") {
		t.Fatalf("re-approve without --grant dropped callers or oversight:\n%s", b)
	}
	empty := filepath.Join(op.work, "empty.yaml")
	if err := os.WriteFile(empty, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := op.must("approve", "echo", "--grant", empty, "--yes", "--by", "test"); strings.Contains(out, "kept from") {
		t.Fatalf("a --grant file kept the old restrictions:\n%s", out)
	}
	if b, _ := os.ReadFile(saved); strings.Contains(string(b), "token:agent") || strings.Contains(string(b), "token:ops") {
		t.Fatalf("a --grant file without callers or oversight kept them:\n%s", b)
	}
}
