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
