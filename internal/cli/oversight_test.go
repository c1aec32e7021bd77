package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Per-call oversight through the built binary: an agent (token:agent) invokes a skill
// under oversight and waits; the operator (token:ops, an admin and the approver) sees
// it with `skillbox pending`, allows it with `skillbox allow` and the agent gets its
// output; a second call is denied with `skillbox deny --reason` and the agent gets
// APPROVAL_DENIED with the reason, in one line. The agent can neither list nor decide.
func TestOversightThroughTheCLI(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	const agentTok, opsTok = "agent-token-0123456789abcdef", "ops-token-0123456789abcdef0"
	tokens := filepath.Join(op.work, "tokens")
	if err := os.WriteFile(tokens, []byte("agent "+agentTok+"\nops "+opsTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	grant := filepath.Join(op.work, "grant.yaml")
	if err := os.WriteFile(grant, []byte("oversight:\n  approvers: [\"token:ops\"]\n  wait: 10m\n  reason: payments leave the company\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := op.must("approve", "echo", "--grant", grant, "--yes", "--by", "test"); !strings.Contains(out, "oversight: every call waits for a decision by token:ops, at most 10m (payments leave the company)") {
		t.Fatalf("approve shows no oversight: %s", out)
	}
	opsEnv := append(append([]string{}, op.env...), "SKILLBOX_TOKEN="+opsTok)
	agentEnv := append(append([]string{}, op.env...), "SKILLBOX_TOKEN="+agentTok)
	srv, srvLog := startServerWith(t, bin, opsEnv, "--no-container", "--token-file", tokens, "--admin", "token:ops")
	ops := func(args ...string) signCLIResult { return signRunCLI(t, bin, opsEnv, args...) }

	type done struct {
		code           int
		stdout, stderr string
	}
	invoke := func(input string, flags ...string) <-chan done {
		cmd := exec.Command(bin, append([]string{"invoke", "echo", "--input", input}, flags...)...)
		cmd.Env = append(os.Environ(), agentEnv...)
		var out, errb lockedWriter
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		ch := make(chan done, 1)
		go func() { _ = cmd.Wait(); ch <- done{cmd.ProcessState.ExitCode(), out.String(), errb.String()} }()
		return ch
	}
	type shown struct {
		ID, Caller, Skill, Review, Digest string
		Input                             json.RawMessage
		TimeLeftMs                        int64
	}
	waitOne := func() shown {
		t.Helper()
		var got []shown
		waitUntil(t, "a pending call", func() bool {
			r := ops("pending", "--json")
			if r.code != 0 {
				t.Fatalf("pending --json: %s", r.stderr)
			}
			got = nil
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
				t.Fatalf("pending --json: %v: %s", err, r.stdout)
			}
			return len(got) == 1
		})
		var b bytes.Buffer
		if err := json.Compact(&b, got[0].Input); err != nil {
			t.Fatal(err)
		}
		got[0].Input = b.Bytes()
		return got[0]
	}
	result := func(ch <-chan done) done {
		t.Helper()
		select {
		case d := <-ch:
			return d
		case <-time.After(30 * time.Second):
			t.Fatal("the agent's call had not returned 30s after the decision")
		}
		return done{}
	}

	first := invoke(`{"to":"acme","amount":100}`)
	p := waitOne()
	if p.Caller != "token:agent" || p.Skill != "echo" || string(p.Input) != `{"to":"acme","amount":100}` || p.TimeLeftMs <= 0 ||
		!strings.Contains(p.Review, "payments leave the company") {
		t.Fatalf("pending shows %+v", p)
	}
	text := ops("pending")
	for _, w := range []string{p.ID + "  echo 1.0.0  from token:agent over grpc", "    {\n      \"amount\": 100,\n      \"to\": \"acme\"\n    }\n",
		"decide: skillbox allow " + p.ID, "nothing but compute on its input"} {
		if !strings.Contains(text.stdout, w) {
			t.Errorf("pending lacks %q:\n%s", w, text.stdout)
		}
	}
	// The agent is no admin: it may neither list nor decide, and its call still waits.
	if r := signRunCLI(t, bin, agentEnv, "pending"); r.code == 0 || !strings.Contains(r.stderr, "NOT_ADMIN") {
		t.Fatalf("pending by the agent: %d %q", r.code, r.stderr)
	}
	if r := signRunCLI(t, bin, agentEnv, "allow", p.ID); r.code == 0 || !strings.Contains(r.stderr, "NOT_ADMIN") {
		t.Fatalf("allow by the agent: %d %q", r.code, r.stderr)
	}
	if r := ops("allow", p.ID, "--reason", "invoice checked"); r.code != 0 || r.stdout != "allowed "+p.ID+"\n" {
		t.Fatalf("allow: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if d := result(first); d.code != 0 || !strings.Contains(d.stdout, `"amount": 100`) {
		t.Fatalf("allowed call: exit %d: %s %s", d.code, d.stdout, d.stderr)
	}
	if r := ops("allow", p.ID); r.code == 0 || !strings.Contains(r.stderr, "NOT_PENDING") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("allow again: %d %q", r.code, r.stderr)
	}

	second := invoke(`{"to":"mallory","amount":5000}`, "--json")
	p = waitOne()
	if r := ops("deny", p.ID); r.code == 0 || !strings.Contains(r.stderr, "reason") {
		t.Fatalf("deny without --reason: %d %q", r.code, r.stderr)
	}
	if r := ops("deny", p.ID, "--reason", "unknown payee"); r.code != 0 || r.stdout != "denied "+p.ID+"\n" {
		t.Fatalf("deny: %d %q %q", r.code, r.stdout, r.stderr)
	}
	d := result(second)
	// While it waited the agent saw why no answer came; then one line says why it failed.
	lines := strings.Split(strings.TrimSpace(d.stderr), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "waiting: this call of echo needs an approver's decision (request "+p.ID+", until ") ||
		!strings.Contains(lines[0], "skillbox pending") {
		t.Fatalf("denied call's stderr, want a waiting line then the error: %q", d.stderr)
	}
	if msg := lines[1]; d.code == 0 || !strings.Contains(msg, "skillbox: invoke echo: token:ops denied the call of echo: unknown payee (APPROVAL_DENIED) audit ") {
		t.Fatalf("denied call: exit %d: %q", d.code, msg)
	}
	// With --json, stdout says so too: the reason, and the id of the call that waited.
	if f := parseFailure(t, d.stdout); f.Error.Reason != "APPROVAL_DENIED" || f.Error.CallID != p.ID || f.Error.AuditID == "" || !strings.Contains(f.Error.Message, "unknown payee") {
		t.Errorf("denied call --json: %s: want APPROVAL_DENIED, callId %s, an auditId and the approver's reason", d.stdout, p.ID)
	}
	if r := ops("pending"); r.code != 0 || r.stdout != "no calls wait for a decision\n" {
		t.Fatalf("pending at the end: %q %q", r.stdout, r.stderr)
	}
	stopServer(t, srv, srvLog)
	// run NAME opens the engine for one call that no approver can reach: refused at
	// once with where to call it instead, not after the grant's 10 minutes.
	if r := signRunCLI(t, bin, op.env, "run", "echo", "--input", `{"to":"acme","amount":1}`); r.code == 0 ||
		!strings.Contains(r.stderr, "run echo: echo needs an approver's decision for each call, which run cannot ask for: call it through the server (skillbox invoke echo)") {
		t.Fatalf("run NAME of a skill under oversight: %d %q", r.code, r.stderr)
	}
	if out := op.must("audit", "verify"); !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("audit verify: %s", out)
	}
}
