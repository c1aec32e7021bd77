package host_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/mcp"
)

// Over MCP, a tool call to a skill under oversight waits for the decision: allowed, the
// client gets the output; denied, an isError result with APPROVAL_DENIED and the
// approver's reason. The pending request names the mcp door.
func TestOversightOverMCP(t *testing.T) {
	s := startMCP(t, func(s *mcpServer) {
		s.install(t, "pay", "../engine/testdata/echo.wasm", echoBody,
			&approval.Grant{Oversight: &approval.Oversight{Approvers: []string{"token:bob"}}})
	})
	ctx := context.Background()
	// A client that asks for progress hears that its call waits, with the request id.
	notices := make(chan *sdk.ProgressNotificationParams, 4)
	alice := connect(t, s.url, aliceToken, &sdk.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *sdk.ProgressNotificationClientRequest) { notices <- r.Params },
	})
	type reply struct {
		res *sdk.CallToolResult
		err error
	}
	call := func(args map[string]any) <-chan reply {
		ch := make(chan reply, 1)
		go func() {
			params := &sdk.CallToolParams{Name: "pay", Arguments: args}
			params.SetProgressToken("pay-" + strings.Repeat("1", len(args)))
			res, err := alice.CallTool(ctx, params)
			ch <- reply{res, err}
		}()
		return ch
	}
	pending := func() engine.PendingRequest {
		t.Helper()
		var got []engine.PendingRequest
		waitUntil(t, func() bool { got = s.eng.Pending(); return len(got) == 1 })
		return got[0]
	}

	notice := func(id string) {
		t.Helper()
		select {
		case pn := <-notices:
			if pn.ProgressToken != "pay-1" || pn.Meta[mcp.MetaPendingCall] != id ||
				!strings.Contains(pn.Message, "waiting for an approver's decision (request "+id+", until ") {
				t.Fatalf("progress notice %+v for request %s", pn, id)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no waiting notice for %s within 20s", id)
		}
	}

	allowed := call(map[string]any{"amount": 1})
	p := pending()
	notice(p.ID)
	if p.Door != "mcp" || p.Caller != "token:alice" {
		t.Fatalf("pending %+v", p)
	}
	if err := s.eng.Decide(ctx, engine.Decision{ID: p.ID, By: "token:bob", Allow: true}); err != nil {
		t.Fatal(err)
	}
	r := <-allowed
	if r.err != nil || r.res.IsError {
		t.Fatalf("allowed tool call: %v %+v", r.err, r.res)
	}
	if b, _ := json.Marshal(r.res.StructuredContent); string(b) != `{"amount":1}` {
		t.Fatalf("structuredContent %s", b)
	}

	denied := call(map[string]any{"amount": 5000})
	p = pending()
	notice(p.ID)
	if err := s.eng.Decide(ctx, engine.Decision{ID: p.ID, By: "token:bob", Reason: "too much"}); err != nil {
		t.Fatal(err)
	}
	r = <-denied
	if r.err != nil {
		t.Fatal(r.err)
	}
	if ref := refusal(t, r.res); ref.Reason != string(engine.ReasonApprovalDenied) || !strings.Contains(ref.Message, "token:bob denied the call of pay: too much") {
		t.Fatalf("denied tool call: %+v", ref)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
