package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/skillbox-dev/skillbox/runtime/mcp"
)

// TestOversightAcrossDoors: with the built binary serving gRPC (loopback, tokens), MCP
// and the console, two agents call a skill under oversight at once — one with
// `skillbox invoke` (token:agent, gRPC), one with the MCP SDK's client (token:bot,
// Streamable HTTP) — and both wait. The operator (token:ops) allows the gRPC call with
// `skillbox allow` and denies the MCP call in the console, posting the page's own form
// (session cookie from the sign-in form, CSRF token, the request's digest) as a browser
// does. The gRPC agent gets its output; the MCP agent gets APPROVAL_DENIED with the
// operator's reason; the audit log records both decisions with who and which door.
func TestOversightAcrossDoors(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	const agentTok, botTok, opsTok = "agent-token-doors-0123456789", "bot-token-doors-0123456789ab", "ops-token-doors-0123456789ab"
	tokens := filepath.Join(op.work, "tokens")
	if err := os.WriteFile(tokens, []byte("agent "+agentTok+"\nbot "+botTok+"\nops "+opsTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	grant := filepath.Join(op.work, "grant.yaml")
	if err := os.WriteFile(grant, []byte("oversight:\n  approvers: [\"token:ops\"]\n  wait: 10m\n  reason: payments leave the company\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	op.must("approve", "echo", "--grant", grant, "--yes", "--by", "test")

	// The server: gRPC on loopback TCP (tokens, so the two agents and the operator are
	// three identities), MCP and the console beside it.
	srv := exec.Command(bin, "serve", "--no-container", "--listen", "127.0.0.1:0", "--mcp", "127.0.0.1:0",
		"--console", "127.0.0.1:0", "--token-file", tokens, "--admin", "token:ops")
	srv.Env = append(os.Environ(), op.env...)
	srvLog := &lockedWriter{}
	srv.Stderr, srv.WaitDelay = srvLog, time.Minute
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if srv.ProcessState == nil {
			_ = srv.Process.Kill()
			_ = srv.Wait()
		}
	})
	var grpcAddr string
	grpcRe := regexp.MustCompile(`serving on (127\.0\.0\.1:\d+)\n`)
	waitUntil(t, "the gRPC door", func() bool {
		if m := grpcRe.FindStringSubmatch(srvLog.String()); m != nil {
			grpcAddr = m[1]
		}
		return grpcAddr != ""
	})
	mcpURL, consoleURL := serverURL(t, srvLog, "/mcp"), serverURL(t, srvLog, "/")
	as := func(tok string) []string {
		return append(append([]string{}, op.env...), "SKILLBOX_SERVER="+grpcAddr, "SKILLBOX_TOKEN="+tok)
	}
	ops := func(args ...string) signCLIResult { return signRunCLI(t, bin, as(opsTok), args...) }
	waitUntil(t, "the server answers", func() bool { return ops("skills").code == 0 })

	// The gRPC agent.
	cmd := exec.Command(bin, "invoke", "echo", "--input", `{"to":"acme","amount":100}`)
	cmd.Env = append(os.Environ(), as(agentTok)...)
	var gOut, gErr lockedWriter
	cmd.Stdout, cmd.Stderr = &gOut, &gErr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	grpcDone := make(chan int, 1)
	go func() { _ = cmd.Wait(); grpcDone <- cmd.ProcessState.ExitCode() }()

	// The MCP agent.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs := mcpOverHTTP(ctx, t, mcpURL, botTok)
	type mcpOutcome struct {
		res *sdk.CallToolResult
		err error
	}
	mcpDone := make(chan mcpOutcome, 1)
	go func() {
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"to": "mallory", "amount": 5000}})
		mcpDone <- mcpOutcome{res, err}
	}()

	// Both wait: two pending requests, one per door.
	type shown struct{ ID, Caller, Door, Digest string }
	var pending []shown
	waitUntil(t, "two pending calls", func() bool {
		r := ops("pending", "--json")
		pending = nil
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &pending) != nil {
			t.Fatalf("pending --json: exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
		return len(pending) == 2
	})
	byDoor := map[string]shown{}
	for _, p := range pending {
		byDoor[p.Door] = p
	}
	g, m := byDoor["grpc"], byDoor["mcp"]
	if g.Caller != "token:agent" || m.Caller != "token:bot" {
		t.Fatalf("pending: %+v, want token:agent over grpc and token:bot over mcp", pending)
	}
	select {
	case code := <-grpcDone:
		t.Fatalf("the gRPC call returned (exit %d) before any decision: %s %s", code, gOut.String(), gErr.String())
	case o := <-mcpDone:
		t.Fatalf("the MCP call returned before any decision: %+v", o)
	default:
	}

	// Allow the gRPC call with the CLI.
	if r := ops("allow", g.ID, "--reason", "invoice checked"); r.code != 0 {
		t.Fatalf("allow: %d %s", r.code, r.stderr)
	}
	select {
	case code := <-grpcDone:
		if code != 0 || !strings.Contains(gOut.String(), `"to": "acme"`) {
			t.Fatalf("allowed gRPC call: exit %d: %s %s", code, gOut.String(), gErr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the allowed gRPC call had not returned 30s after the decision")
	}

	// Deny the MCP call in the console, as the browser does: sign in with the token
	// (a session cookie), read the overview, post its deny form.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	origin := strings.TrimSuffix(consoleURL, "/")
	post := func(path string, form url.Values) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, origin+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		res, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := post("/login", url.Values{"token": {opsTok}})
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(page), m.ID) {
		t.Fatalf("console after sign-in: %d, the overview does not show %s:\n%s", res.StatusCode, m.ID, page)
	}
	formRe := regexp.MustCompile(`action="/pending/` + regexp.QuoteMeta(m.ID) + `/deny"[^>]*>\s*<input type="hidden" name="csrf" value="([^"]+)"><input type="hidden" name="digest" value="([^"]+)">`)
	f := formRe.FindStringSubmatch(string(page))
	if f == nil {
		t.Fatalf("no deny form for %s in the overview:\n%s", m.ID, page)
	}
	// A form without the page's CSRF token is refused, and the call still waits.
	res = post("/pending/"+m.ID+"/deny", url.Values{"csrf": {"forged"}, "digest": {f[2]}, "reason": {"forged"}, "skill": {"echo"}})
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("deny with a forged CSRF token: %d, want 403", res.StatusCode)
	}
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res = post("/pending/"+m.ID+"/deny", url.Values{"csrf": {f[1]}, "digest": {f[2]}, "reason": {"unknown payee"}, "skill": {"echo"}})
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("deny in the console: %d: %s", res.StatusCode, body)
	}
	select {
	case o := <-mcpDone:
		if o.err != nil {
			t.Fatal(o.err)
		}
		why, _ := json.Marshal(o.res.Meta[mcp.MetaError])
		var r mcp.Refusal
		_ = json.Unmarshal(why, &r)
		if !o.res.IsError || r.Reason != "APPROVAL_DENIED" || !strings.Contains(r.Message, "token:ops denied the call of echo: unknown payee") {
			t.Fatalf("denied MCP call: isError %v, _meta %s", o.res.IsError, why)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the denied MCP call had not returned 30s after the decision")
	}
	if r := ops("pending"); r.stdout != "no calls wait for a decision\n" {
		t.Fatalf("pending at the end: %q %q", r.stdout, r.stderr)
	}
	_ = cs.Close()
	stopServer(t, srv, srvLog)

	// The audit log: each decision with who made it and through which door.
	tail := op.must("audit", "tail")
	decided := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(tail), "\n") {
		var e struct {
			Event, Caller string
			Details       map[string]any
		}
		if json.Unmarshal([]byte(line), &e) == nil && (e.Event == "approval.allowed" || e.Event == "approval.denied") {
			b, _ := json.Marshal(e.Details)
			decided[e.Event] = e.Caller + " " + string(b)
		}
	}
	if a := decided["approval.allowed"]; !strings.Contains(a, "token:ops") || !strings.Contains(a, `"door":"grpc"`) {
		t.Errorf("approval.allowed record: %q, want token:ops through grpc", a)
	}
	if d := decided["approval.denied"]; !strings.Contains(d, "token:ops") || !strings.Contains(d, `"door":"console"`) || !strings.Contains(d, "unknown payee") {
		t.Errorf("approval.denied record: %q, want token:ops through the console with the reason", d)
	}
	if out := op.must("audit", "verify"); !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("audit verify: %s", out)
	}
}
