package host_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/host"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
	"github.com/skillbox-dev/skillbox/runtime/mcp"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

const (
	aliceToken = "alice-token-0123456789"
	bobToken   = "bob-token-0123456789ab"
)

// mcpServer is a served host with an MCP door on loopback and a token file naming
// alice and bob.
type mcpServer struct {
	ev  *events
	h   *host.Host
	eng *engine.Engine
	url string // http://127.0.0.1:PORT/mcp
	kit *testkit.Home
}

// install installs and approves a wasm skill (grant nil: what the manifest asks).
func (s *mcpServer) install(t testing.TB, name, module, body string, grant *approval.Grant) {
	t.Helper()
	ctx := context.Background()
	dir := s.kit.Build(t, testkit.Package{Name: name, Version: "1.0.0", Module: module, Body: body})
	if _, err := s.eng.Install(ctx, dir, "test"); err != nil {
		t.Fatal(err)
	}
	cand, err := s.eng.Candidate(ctx, name, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.eng.Approve(ctx, cand, grant, "test"); err != nil {
		t.Fatal(err)
	}
}

// startMCP opens a host, lets setup install skills, and serves gRPC on the home's
// socket and MCP on 127.0.0.1 until the test ends.
func startMCP(t testing.TB, setup func(s *mcpServer)) *mcpServer {
	t.Helper()
	return startMCPWith(t, setup, func(tokens string) transport.ServerConfig { return transport.ServerConfig{TokenFile: tokens} })
}

// startMCPWith is startMCP with the listener settings listen makes of the token file.
func startMCPWith(t testing.TB, setup func(s *mcpServer), listen func(tokens string) transport.ServerConfig) *mcpServer {
	t.Helper()
	kit := testkit.NewHome(t)
	home := resolve(t, kit.Dir)
	ev := newEvents()
	h, err := host.Open(context.Background(), host.Options{Home: home, NoContainer: true, Events: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	s := &mcpServer{ev: ev, h: h, eng: h.Engine(), kit: kit}
	setup(s)
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("alice "+aliceToken+"\nbob "+bobToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- h.Serve(sctx, host.ServeOptions{MCP: "127.0.0.1:0", Listen: listen(tokens), Drain: 5 * time.Second})
	}()
	for s.url == "" {
		if up := ev.wait(t, host.Serving); up.Door == "mcp" {
			s.url = up.Addr
		}
	}
	t.Cleanup(func() {
		stop()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("Serve did not return within a minute of its ctx ending")
		}
		h.Close()
	})
	return s
}

// bearer adds a token to every request.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// sessionRevision is the newest MCP revision with sessions, what today's clients speak.
const sessionRevision = "2025-11-25"

// connect is an MCP client session of the SDK's own client over Streamable HTTP, in
// the session revision (the SDK's client would otherwise ask for the stateless one).
func connect(t testing.TB, url, token string, opts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	return connectAs(t, url, token, opts, &sdk.ClientSessionOptions{ProtocolVersion: sessionRevision})
}

// connectAs is connect with session options (a protocol revision).
func connectAs(t testing.TB, url, token string, opts *sdk.ClientOptions, sopts *sdk.ClientSessionOptions) *sdk.ClientSession {
	t.Helper()
	c := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, opts)
	// Keep-alive connections for every concurrent caller: http.DefaultTransport keeps
	// two per host, so 32 callers would dial a new connection for most calls.
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 64
	tr := &sdk.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: bearer{token, base}}}
	cs, err := c.Connect(context.Background(), tr, sopts)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func toolNames(t *testing.T, cs *sdk.ClientSession) []string {
	t.Helper()
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	return names
}

// refusal is the machine-readable refusal of an isError result.
func refusal(t *testing.T, res *sdk.CallToolResult) mcp.Refusal {
	t.Helper()
	if !res.IsError {
		t.Fatalf("result is not an error: %+v", res)
	}
	var r mcp.Refusal
	b, _ := json.Marshal(res.Meta[mcp.MetaError])
	if err := json.Unmarshal(b, &r); err != nil || r.Reason == "" {
		t.Fatalf("isError result without a reason in _meta: %s", b)
	}
	if len(res.Content) != 1 || !strings.Contains(res.Content[0].(*sdk.TextContent).Text, r.Message) {
		t.Errorf("isError result's text %+v does not carry the message %q", res.Content, r.Message)
	}
	return r
}

const strictBody = `input:
  type: object
  properties: {n: {type: integer}}
  required: [n]
output: {type: object}
limits: {timeout: 5s, memory: 16MiB}
`

// TestMCPHTTP drives the MCP door with the SDK's client over Streamable HTTP on
// loopback against a real engine with the wasm sandbox.
func TestMCPHTTP(t *testing.T) {
	s := startMCP(t, func(s *mcpServer) {
		s.install(t, "echo", "../engine/testdata/echo.wasm", echoBody, nil)
		s.install(t, "strict", "../engine/testdata/echo.wasm", strictBody, nil)
		s.install(t, "slow", "../engine/testdata/loop.wasm", "input: {type: object}\noutput: {type: object}\nlimits: {timeout: 300ms, memory: 16MiB}\n", nil)
		s.install(t, "spin", "../engine/testdata/loop.wasm", "input: {type: object}\noutput: {type: object}\nlimits: {timeout: 60s, memory: 16MiB}\n", nil)
		s.install(t, "secret", "../engine/testdata/echo.wasm", echoBody, &approval.Grant{Callers: []string{"token:alice"}})
		// Granted one origin (where nothing listens); it fails after a request elsewhere.
		s.install(t, "failing", "../engine/testdata/failhttp.wasm",
			"input: {type: object}\noutput: {type: object}\ncapabilities:\n  network: [\"http://127.0.0.1:1\"]\nlimits: {requests: 5}\n", nil)
	})
	ctx := context.Background()
	alice := connect(t, s.url, aliceToken, nil)

	t.Run("list", func(t *testing.T) {
		got := strings.Join(toolNames(t, alice), ",")
		if got != "echo,failing,secret,slow,spin,strict" {
			t.Errorf("alice's tools %s, want echo,failing,secret,slow,spin,strict in name order", got)
		}
		res, _ := alice.ListTools(ctx, nil)
		for _, tl := range res.Tools {
			if tl.Name == "failing" {
				if tl.Annotations == nil || tl.Annotations.ReadOnlyHint || tl.Annotations.OpenWorldHint == nil || !*tl.Annotations.OpenWorldHint {
					t.Errorf("failing: annotations %+v, want open-world and not read-only (network granted)", tl.Annotations)
				}
				continue
			}
			if tl.Annotations == nil || !tl.Annotations.ReadOnlyHint || tl.Annotations.OpenWorldHint == nil || *tl.Annotations.OpenWorldHint {
				t.Errorf("%s: annotations %+v, want readOnly and closed-world (no network, no files granted)", tl.Name, tl.Annotations)
			}
		}
	})

	t.Run("hidden from a caller not in callers", func(t *testing.T) {
		bob := connect(t, s.url, bobToken, nil)
		if got := strings.Join(toolNames(t, bob), ","); got != "echo,failing,slow,spin,strict" {
			t.Errorf("bob's tools %s, want the approval's callers to hide secret", got)
		}
		if _, err := bob.CallTool(ctx, &sdk.CallToolParams{Name: "secret", Arguments: map[string]any{}}); err == nil {
			t.Error("bob called secret, a tool he was not offered")
		}
	})

	t.Run("call ok", func(t *testing.T) {
		res, err := alice.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"a": 1}})
		if err != nil {
			t.Fatal(err)
		}
		if res.IsError {
			t.Fatalf("echo: isError %+v", res.Content)
		}
		b, _ := json.Marshal(res.StructuredContent)
		if string(b) != `{"a":1}` {
			t.Errorf("structuredContent %s, want the input echoed", b)
		}
		if len(res.Content) != 1 || res.Content[0].(*sdk.TextContent).Text != `{"a":1}` {
			t.Errorf("content %+v, want the output JSON as one text block", res.Content)
		}
		if res.Meta[mcp.MetaCallID] == "" || res.Meta[mcp.MetaAuditID] == "" || res.Meta[mcp.MetaUsage] == nil {
			t.Errorf("_meta %v, want call id, audit id and usage", res.Meta)
		}
		// The audit log names the door: the call's invoke.end says mcp.
		log, err := os.ReadFile(s.eng.AuditPath())
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, line := range strings.Split(string(log), "\n") {
			if strings.Contains(line, `"invoke.end"`) && strings.Contains(line, fmt.Sprint(res.Meta[mcp.MetaCallID])) {
				found = strings.Contains(line, `"door":"mcp"`)
			}
		}
		if !found {
			t.Errorf("no invoke.end naming the mcp door for call %v", res.Meta[mcp.MetaCallID])
		}
		// So do the metrics.
		if n := callsTotal(t, s.eng, "echo", "mcp", "ok"); n < 1 {
			t.Errorf("skillbox_calls_total{skill=echo,door=mcp,outcome=ok} = %v, want the call counted under the mcp door", n)
		}
		if n := callsTotal(t, s.eng, "echo", "grpc", "ok"); n != 0 {
			t.Errorf("skillbox_calls_total{skill=echo,door=grpc,outcome=ok} = %v, want 0 (no gRPC calls were made)", n)
		}
	})

	t.Run("egress denied", func(t *testing.T) {
		var hits atomic.Int32
		other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
		defer other.Close()
		res, err := alice.CallTool(ctx, &sdk.CallToolParams{Name: "failing", Arguments: map[string]any{"method": "GET", "url": other.URL}})
		if err != nil {
			t.Fatal(err)
		}
		r := refusal(t, res)
		if r.Reason != "EGRESS_DENIED" || !strings.Contains(r.Message, other.URL) || r.AuditID == "" {
			t.Errorf("refusal %+v, want EGRESS_DENIED naming %s with its audit record", r, other.URL)
		}
		// The call ran: its id and usage are there as for a call that answered.
		if id, _ := res.Meta[mcp.MetaCallID].(string); id == "" || res.Meta[mcp.MetaUsage] == nil {
			t.Errorf("_meta %v: want the call's id and usage", res.Meta)
		}
		if hits.Load() != 0 {
			t.Error("the origin that was not granted was reached")
		}
	})

	t.Run("stateless 2026-07-28 client", func(t *testing.T) {
		changed := make(chan struct{}, 16)
		c := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, &sdk.ClientOptions{
			ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) { changed <- struct{}{} },
		})
		tr := &sdk.StreamableClientTransport{Endpoint: s.url, HTTPClient: &http.Client{Transport: bearer{bobToken, http.DefaultTransport}}}
		cs, err := c.Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: mcp.StatelessRevision})
		if err != nil {
			t.Fatalf("a client asking for %s: %v", mcp.StatelessRevision, err)
		}
		defer cs.Close()
		if v := cs.InitializeResult().ProtocolVersion; v != mcp.StatelessRevision {
			t.Fatalf("negotiated %s, want %s (the stateless revision served as such)", v, mcp.StatelessRevision)
		}
		if cs.ID() != "" {
			t.Errorf("session id %q, want none (stateless)", cs.ID())
		}
		// The same tools per caller: bob does not see secret.
		if got := strings.Join(toolNames(t, cs), ","); got != "echo,failing,slow,spin,strict" {
			t.Errorf("bob's tools %s over the stateless revision, want secret hidden", got)
		}
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"v": 2026}})
		if err != nil || res.IsError {
			t.Fatalf("call: %v %+v", err, res)
		}
		refused := mustCall(t, cs, "strict", map[string]any{"n": "x"})
		if r := refusal(t, refused); r.Reason != "INVALID_INPUT" || r.Field != "input.n" || refused.Meta[mcp.MetaCallID] != nil {
			t.Errorf("refusal %+v, _meta %v: want INVALID_INPUT for input.n, and no call id (it never ran)", r, refused.Meta)
		}
		// list_changed arrives on the subscriptions/listen stream.
		s.install(t, "later", "../engine/testdata/echo.wasm", echoBody, nil)
		deadline := time.After(time.Minute)
		for {
			select {
			case <-changed:
				if slices.Contains(toolNames(t, cs), "later") {
					return
				}
			case <-deadline:
				t.Fatalf("no list_changed listing later within a minute of approving it; tools %v", toolNames(t, cs))
			}
		}
	})

	t.Run("over budget", func(t *testing.T) {
		res, err := alice.CallTool(ctx, &sdk.CallToolParams{Name: "slow", Arguments: map[string]any{}})
		if err != nil {
			t.Fatal(err)
		}
		if r := refusal(t, res); r.Reason != "TIMEOUT" {
			t.Errorf("refusal %+v, want TIMEOUT", r)
		}
	})

	t.Run("unknown tool and a name with path characters are protocol errors", func(t *testing.T) {
		for _, name := range []string{"nosuch", "../echo", "echo/../../x"} {
			if _, err := alice.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: map[string]any{}}); err == nil {
				t.Errorf("tools/call %q: no protocol error", name)
			}
		}
	})

	t.Run("hostile arguments", func(t *testing.T) {
		deep := strings.Repeat("[", 200) + strings.Repeat("]", 200)
		res, err := alice.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: json.RawMessage(`{"a":` + deep + `}`)})
		if err != nil {
			t.Fatal(err)
		}
		if r := refusal(t, res); r.Reason != "INVALID_INPUT" || r.Field != "arguments" || !strings.Contains(r.Message, "nested") {
			t.Errorf("deep nesting: %+v, want INVALID_INPUT naming the nesting", r)
		}
		big := map[string]any{"a": strings.Repeat("x", mcp.MaxArgumentBytes)}
		res, err = alice.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: big})
		if err == nil && !res.IsError {
			t.Error("arguments over the limit were accepted")
		}
		// The server keeps serving, on a fresh session too.
		again := connect(t, s.url, aliceToken, nil)
		res, err = again.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"b": 2}})
		if err != nil || res.IsError {
			t.Fatalf("a call after hostile input: %v %+v", err, res)
		}
	})

	for i, rev := range []string{sessionRevision, mcp.StatelessRevision} {
		t.Run("list_changed after approve and disable, "+rev, func(t *testing.T) {
			changed := make(chan struct{}, 16)
			watcher := connectAs(t, s.url, aliceToken, &sdk.ClientOptions{
				ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) { changed <- struct{}{} },
			}, &sdk.ClientSessionOptions{ProtocolVersion: rev})
			if v := watcher.InitializeResult().ProtocolVersion; v != rev {
				t.Fatalf("negotiated %s, want %s", v, rev)
			}
			// The client's stream for notifications is open once a request has gone through.
			toolNames(t, watcher)
			fresh := fmt.Sprint("fresh", i)
			waitFor := func(what string, want func([]string) bool) {
				t.Helper()
				deadline := time.After(time.Minute)
				for {
					select {
					case <-changed:
						if want(toolNames(t, watcher)) {
							return
						}
					case <-deadline:
						t.Fatalf("no notifications/tools/list_changed within a minute of %s; tools %v", what, toolNames(t, watcher))
					}
				}
			}
			s.install(t, fresh, "../engine/testdata/echo.wasm", echoBody, nil)
			waitFor("approving "+fresh, func(n []string) bool { return slices.Contains(n, fresh) })
			if _, err := s.eng.Disable(ctx, fresh, "test", "incident"); err != nil {
				t.Fatal(err)
			}
			waitFor("disabling "+fresh, func(n []string) bool { return !slices.Contains(n, fresh) })
			if err := s.eng.Enable(ctx, fresh, "test"); err != nil {
				t.Fatal(err)
			}
			waitFor("enabling "+fresh, func(n []string) bool { return slices.Contains(n, fresh) })
		})
	}

	t.Run("disable cancels a call in flight", func(t *testing.T) {
		done := make(chan *sdk.CallToolResult, 1)
		go func() {
			res, err := alice.CallTool(ctx, &sdk.CallToolParams{Name: "spin", Arguments: map[string]any{}})
			if err != nil {
				t.Errorf("spin: %v", err)
			}
			done <- res
		}()
		deadline := time.Now().Add(time.Minute)
		for len(s.eng.Calls()) == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := s.eng.Disable(ctx, "spin", "test", "incident"); err != nil {
			t.Fatal(err)
		}
		select {
		case res := <-done:
			if res == nil {
				return
			}
			if r := refusal(t, res); r.Reason != "DISABLED" {
				t.Errorf("refusal %+v, want DISABLED", r)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the disabled call did not end within 30s (its timeout is 60s)")
		}
	})

	t.Run("admission", func(t *testing.T) {
		body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
		post := func(mod func(*http.Request)) int {
			req, _ := http.NewRequest("POST", s.url, bytes.NewReader([]byte(body)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Authorization", "Bearer "+aliceToken)
			mod(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if code := post(func(*http.Request) {}); code != http.StatusOK {
			t.Fatalf("a good request: HTTP %d", code)
		}
		if code := post(func(r *http.Request) { r.Header.Del("Authorization") }); code != http.StatusUnauthorized {
			t.Errorf("no token: HTTP %d, want 401", code)
		}
		if code := post(func(r *http.Request) { r.Header.Set("Authorization", "Bearer wrong-token-0123456789") }); code != http.StatusUnauthorized {
			t.Errorf("wrong token: HTTP %d, want 401", code)
		}
		if code := post(func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }); code != http.StatusForbidden {
			t.Errorf("foreign Origin: HTTP %d, want 403", code)
		}
		if code := post(func(r *http.Request) { r.Host = "evil.example" }); code != http.StatusForbidden {
			t.Errorf("foreign Host (DNS rebinding): HTTP %d, want 403", code)
		}
		if code := post(func(r *http.Request) { r.Header.Set("Origin", "http://localhost:1234") }); code != http.StatusOK {
			t.Errorf("a localhost Origin: HTTP %d, want 200", code)
		}
	})
}

// callsTotal is the value of skillbox_calls_total for skill, door and outcome.
func callsTotal(t *testing.T, eng *engine.Engine, skill, door, outcome string) float64 {
	t.Helper()
	mfs, err := eng.Metrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "skillbox_calls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["skill"] == skill && labels["door"] == door && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func mustCall(t *testing.T, cs *sdk.ClientSession, name string, args map[string]any) *sdk.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("tools/call %s: %v", name, err)
	}
	return res
}
