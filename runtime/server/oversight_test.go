package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/client"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
	"github.com/skillbox-dev/skillbox/runtime/server"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

// Over gRPC: an agent's call to a skill under oversight waits; WatchPending shows it
// (skill, grant in plain words, input, caller, time left) to an admin and refuses a
// non-admin; Decide from a non-admin is refused NOT_ADMIN (even one listed as an
// approver), and from an admin approver it allows the call, whose reply then arrives.
// A denial reaches the caller as PERMISSION_DENIED, APPROVAL_DENIED, with the reason.
func TestOversightOverGRPC(t *testing.T) {
	ctx := context.Background()
	home := testkit.NewHome(t)
	eng := home.Engine(t, engine.Config{})
	dir, err := os.MkdirTemp("", "sb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	tokens := filepath.Join(dir, "tokens")
	const agentTok, opsTok = "agent-token-0123456789abcdef", "ops-token-0123456789abcdef0"
	if err := os.WriteFile(tokens, []byte("agent "+agentTok+"\nops "+opsTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := "unix://" + filepath.Join(dir, "s.sock")
	lis, gopts, err := transport.Listen(ctx, transport.ServerConfig{Addr: addr, TokenFile: tokens})
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(append(gopts, server.GRPCOptions()...)...)
	server.New(eng, transport.Caller, server.WithAdmins("token:ops")).Register(g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	dial := func(tok string) *grpc.ClientConn {
		cc, err := transport.Dial(ctx, transport.ClientConfig{Addr: addr, Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	agentConn, opsConn := dial(agentTok), dial(opsTok)

	if _, err := eng.Install(ctx, home.Build(t, testkit.Package{Name: "pay", Version: "1.0.0", Module: echoWasm, Body: echoBody}), "operator"); err != nil {
		t.Fatal(err)
	}
	c, err := eng.Candidate(ctx, "pay", "")
	if err != nil {
		t.Fatal(err)
	}
	grant := &approval.Grant{Oversight: &approval.Oversight{Approvers: []string{"token:ops", "token:agent"}, Reason: "payments"}}
	if _, err := eng.Approve(ctx, c, grant, "operator"); err != nil {
		t.Fatal(err)
	}

	// A non-admin may not watch.
	st, err := pb.NewAdminClient(agentConn).WatchPending(ctx, &pb.WatchPendingRequest{})
	if err == nil {
		_, err = st.Recv()
	}
	if code, d := detailOf(t, err); code != codes.PermissionDenied || d.GetReason() != string(server.ReasonNotAdmin) {
		t.Fatalf("WatchPending by a non-admin: %v %v", code, d)
	}

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch, err := pb.NewAdminClient(opsConn).WatchPending(wctx, &pb.WatchPendingRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if snap, err := watch.Recv(); err != nil || len(snap.GetRequests()) != 0 {
		t.Fatalf("first snapshot: %v %v", snap, err)
	}
	type reply struct {
		res *pb.InvokeResponse
		err error
	}
	call := func(input string) <-chan reply {
		ch := make(chan reply, 1)
		go func() {
			res, err := pb.NewSkillsClient(agentConn).Invoke(ctx, &pb.InvokeRequest{Name: "pay", InputJson: input})
			ch <- reply{res, err}
		}()
		return ch
	}
	next := func(n int) []*pb.PendingRequest {
		t.Helper()
		for {
			snap, err := watch.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if len(snap.GetRequests()) == n {
				return snap.GetRequests()
			}
		}
	}
	allowed := call(`{"to":"acme","amount":100}`)
	p := next(1)[0]
	if p.GetSkill() != "pay" || p.GetCaller() != "token:agent" || p.GetInputJson() != `{"to":"acme","amount":100}` ||
		p.GetTimeLeftMs() <= 0 || p.GetDoor() != "grpc" || p.GetReason() != "payments" ||
		!strings.Contains(p.GetReview(), "oversight: every call waits for a decision by token:ops, token:agent") {
		t.Fatalf("pending request as shown: %v", p)
	}

	admin := func(cc *grpc.ClientConn, id string, d pb.Decision, reason string) error {
		_, err := pb.NewAdminClient(cc).Decide(ctx, &pb.DecideRequest{Id: id, Decision: d, Reason: reason, Digest: p.GetDigest()})
		return err
	}
	// The agent is listed as an approver, but is not an admin: the door refuses it.
	if code, d := detailOf(t, admin(agentConn, p.GetId(), pb.Decision_DECISION_ALLOW, "")); code != codes.PermissionDenied || d.GetReason() != string(server.ReasonNotAdmin) {
		t.Fatalf("Decide by a non-admin: %v %v", code, d)
	}
	if code, d := detailOf(t, admin(opsConn, p.GetId(), pb.Decision_DECISION_UNSPECIFIED, "")); code != codes.InvalidArgument || d.GetField() != "decision" {
		t.Fatalf("Decide without a decision: %v %v", code, d)
	}
	if err := admin(opsConn, p.GetId(), pb.Decision_DECISION_ALLOW, "ok"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-allowed:
		if r.err != nil || r.res.GetOutputJson() != `{"to":"acme","amount":100}` || r.res.GetCallId() != p.GetId() {
			t.Fatalf("allowed call: %v %v", r.res, r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the allowed call had not returned after 20s")
	}

	// A caller that reads the headers learns the call waits, with its id, before
	// anyone decides.
	waiting := make(chan client.Waiting, 1)
	denied := make(chan reply, 1)
	go func() {
		res, err := client.Invoke(ctx, agentConn, &pb.InvokeRequest{Name: "pay", InputJson: `{"to":"mallory","amount":5000}`},
			func(w client.Waiting) { waiting <- w })
		denied <- reply{res, err}
	}()
	p = next(1)[0]
	select {
	case w := <-waiting:
		if w.CallID != p.GetId() || w.Expires.IsZero() || time.Until(w.Expires) <= 0 {
			t.Fatalf("waiting notice %+v for request %s", w, p.GetId())
		}
	case r := <-denied:
		t.Fatalf("the call ended before it was decided: %v %v", r.res, r.err)
	case <-time.After(20 * time.Second):
		t.Fatal("no waiting notice 20s after the request was listed")
	}
	if err := admin(opsConn, p.GetId(), pb.Decision_DECISION_DENY, "unknown payee"); err != nil {
		t.Fatal(err)
	}
	r := <-denied
	if code, d := detailOf(t, r.err); code != codes.PermissionDenied || d.GetReason() != string(engine.ReasonApprovalDenied) ||
		!strings.Contains(d.GetMessage(), "token:ops denied the call of pay: unknown payee") || d.GetAuditId() == "" {
		t.Fatalf("denied call: %v %v", code, d)
	}
	if code, d := detailOf(t, admin(opsConn, p.GetId(), pb.Decision_DECISION_ALLOW, "")); code != codes.NotFound || d.GetReason() != string(engine.ReasonNotPending) {
		t.Fatalf("a decision on an ended request: %v %v", code, d)
	}

	// The stream ends when approvals stop (the server drains).
	eng.StopApprovals()
	for {
		if _, err := watch.Recv(); err != nil {
			if code, d := detailOf(t, err); code != codes.Unavailable {
				t.Fatalf("stream end: %v %v", code, d)
			}
			break
		}
	}
}
