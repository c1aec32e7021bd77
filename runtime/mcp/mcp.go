// Package mcp is skillbox's MCP door: the Model Context Protocol over the same engine
// as gRPC. Every installed, approved, enabled skill a caller may call is one tool for
// that caller (an approval's callers hide it from everyone else), with the manifest's
// name, description and JSON Schemas, and annotations (and, in _meta, the brokered
// secrets with their origins) derived from the operator's grant, never from the
// author's claims. tools/call goes to the backend's Invoke with
// the caller's identity; the engine behind it does every check and writes every audit
// record, so the door has no checks of its own beyond bounding the arguments it hands
// on. A refused or failed call is a tool result with isError set, one sentence the
// model can act on, and the machine-readable reason gRPC carries.
//
// The door serves Streamable HTTP (Handler, behind the host's admission) and stdio
// (ServeStdio, for `skillbox mcp`, whose backend is a gRPC client of a running server).
package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/skillbox-dev/skillbox/runtime/client"
)

// Bounds on what a caller hands the door; past them a call is refused as a tool error
// naming the bound, and the server keeps serving.
const (
	// MaxArgumentBytes bounds a call's arguments (JSON).
	MaxArgumentBytes = 1 << 20
	// MaxArgumentDepth bounds the nesting of a call's arguments.
	MaxArgumentDepth = 64
	// MaxRequestBytes bounds one HTTP request body; larger ones get 413.
	MaxRequestBytes = MaxArgumentBytes + 64<<10
	// maxCallers bounds the per-caller tool sets kept for live list updates; callers
	// past it get a tool set made for the request (no list_changed for them).
	maxCallers = 1024
)

// Skill is one callable skill as a tool needs it.
type Skill struct {
	Name, Version, Description string
	Input, Output              map[string]any // JSON Schemas from the manifest
	// From the operator's grant: granted network origins, read-write files.
	Network, ReadWrite bool
	// From the grant too: the brokered secrets and where they are sent, shown in the
	// tool's _meta (MetaBrokeredSecrets); never a value.
	Brokered []BrokeredSecret
}

// BrokeredSecret is a secret skillbox adds at egress to the skill's requests for
// Origins, in Header; the skill never sees its value.
type BrokeredSecret struct {
	Name    string   `json:"name"`
	Origins []string `json:"origins"`
	Header  string   `json:"header"`
}

// Usage is what a call used.
type Usage struct {
	WallMillis     int64 `json:"wallMs"`
	PeakMemory     int64 `json:"peakMemoryBytes"`
	OutputBytes    int64 `json:"outputBytes"`
	Requests       int   `json:"requests"`
	DeniedRequests int   `json:"deniedRequests"`
}

// Result is a successful call.
type Result struct {
	Output          []byte // JSON
	CallID, AuditID string
	Version         string
	Usage           Usage
}

// Refusal is a refused or failed call as the caller sees it: the machine-readable
// reason (the same word gRPC's ErrorDetail carries), the offending field for invalid
// input, the message and the audit record.
type Refusal struct {
	Reason  string `json:"reason"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	AuditID string `json:"auditId,omitempty"`
	// CallID and Usage are set for a call that ran and failed; they go under their own
	// _meta keys (skillbox/callId, skillbox/usage), as a successful call's.
	CallID string `json:"-"`
	Usage  *Usage `json:"-"`
}

func (r *Refusal) Error() string { return r.Message }

// Backend is what the door calls: the engine in `skillbox serve`, a gRPC client of a
// running server in `skillbox mcp`. Invoke's refusals are *Refusal.
type Backend interface {
	// Skills lists the skills caller may call now, in any order.
	Skills(ctx context.Context, caller string) ([]Skill, error)
	// Invoke calls skill; waiting, if not nil, is told once if the call waits for a
	// person's decision (the skill is under oversight).
	Invoke(ctx context.Context, caller, skill string, input []byte, waiting func(client.Waiting)) (*Result, error)
}

// Door serves MCP over a backend. Create it with New; it is safe for concurrent use.
type Door struct {
	b    Backend
	impl *sdk.Implementation
	door string

	inflight sync.WaitGroup // tool calls under way, for a graceful stop

	mu      sync.Mutex
	callers map[string]*callerServer
	busy    map[string]int // HTTP requests under way per caller (MaxCallerRequests)
}

// Drain waits for the tool calls under way to end, then closes every session (ending
// the streams clients keep open for notifications), so that an HTTP server's graceful
// shutdown can finish. Calls that arrive meanwhile are served.
func (d *Door) Drain() {
	d.inflight.Wait()
	d.mu.Lock()
	all := slices.Collect(maps.Values(d.callers))
	d.mu.Unlock()
	for _, cs := range all {
		for ss := range cs.srv.Sessions() {
			_ = ss.Close()
		}
	}
}

// callerServer is one caller's MCP server and the tools it holds.
type callerServer struct {
	caller string
	srv    *sdk.Server
	// http serves this caller's Streamable HTTP sessions: one handler per caller, so
	// that a session ID is only ever looked up among its own caller's sessions.
	http *sdk.StreamableHTTPHandler
	// stateless serves the 2026-07-28 revision (no sessions; list_changed goes on a
	// subscriptions/listen stream), over the same server and tools.
	stateless *sdk.StreamableHTTPHandler
	mu        sync.Mutex        // serialises syncs
	tools     map[string][]byte // name → the tool's JSON, to see what changed
}

// New makes a door over b; version is skillbox's, told to clients.
func New(b Backend, version string) *Door {
	return &Door{b: b, impl: &sdk.Implementation{Name: "skillbox", Version: version}, callers: map[string]*callerServer{}, busy: map[string]int{}}
}

// Server is caller's MCP server, its tools in step with the backend.
func (d *Door) Server(ctx context.Context, caller string) (*sdk.Server, error) {
	cs, err := d.callerServer(ctx, caller)
	if err != nil {
		return nil, err
	}
	return cs.srv, nil
}

func (d *Door) callerServer(ctx context.Context, caller string) (*callerServer, error) {
	d.mu.Lock()
	cs := d.callers[caller]
	fresh := cs == nil
	if fresh {
		cs = d.newCallerServer(caller)
		if len(d.callers) < maxCallers {
			d.callers[caller] = cs
		}
	}
	d.mu.Unlock()
	if fresh {
		if err := cs.sync(ctx, d); err != nil {
			d.mu.Lock()
			delete(d.callers, caller)
			d.mu.Unlock()
			return nil, err
		}
	}
	return cs, nil
}

// SessionIdle is how long an MCP session may stay without a request before it is
// closed.
const SessionIdle = 10 * time.Minute

func (d *Door) newCallerServer(caller string) *callerServer {
	srv := sdk.NewServer(d.impl, &sdk.ServerOptions{
		Capabilities: &sdk.ServerCapabilities{Tools: &sdk.ToolCapabilities{ListChanged: true}},
	})
	cs := &callerServer{caller: caller, srv: srv, tools: map[string][]byte{}}
	// Session-based revisions (2025-11-25 and before) go to a stateful handler; the
	// stateless 2026-07-28 revision, which the SDK (v1.8.0) serves only from a
	// stateless handler, to a second one over the same server (see statelessRevision).
	// Idle sessions end after SessionIdle: a client that opens sessions and walks away
	// must not grow the server's memory without bound. Replies are plain JSON (one
	// response per request needs no event stream); list_changed goes on the session's
	// standalone stream.
	cs.http = sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv },
		&sdk.StreamableHTTPOptions{MaxRequestBodyBytes: MaxRequestBytes, SessionTimeout: SessionIdle, JSONResponse: true})
	cs.stateless = sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv },
		&sdk.StreamableHTTPOptions{MaxRequestBodyBytes: MaxRequestBytes, Stateless: true, JSONResponse: true})
	return cs
}

// Sync brings every caller's tools in step with the backend (after an approve,
// disable, enable or reload); connected clients get notifications/tools/list_changed
// where their session has a stream for it.
func (d *Door) Sync(ctx context.Context) error {
	d.mu.Lock()
	all := slices.Collect(maps.Values(d.callers))
	d.mu.Unlock()
	var errs []error
	for _, cs := range all {
		errs = append(errs, cs.sync(ctx, d))
	}
	return errors.Join(errs...)
}

// Follow syncs (Sync) on every receive from changed until ctx ends: changed is the
// engine's Watch.
func (d *Door) Follow(ctx context.Context, changed <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			_ = d.Sync(ctx) // a caller whose list cannot be read keeps its last one
		}
	}
}

func (cs *callerServer) sync(ctx context.Context, d *Door) error {
	// Listing under the lock: a sync that starts later never publishes an older list.
	cs.mu.Lock()
	defer cs.mu.Unlock()
	skills, err := d.b.Skills(ctx, cs.caller)
	if err != nil {
		return fmt.Errorf("list skills: %w", err)
	}
	want := map[string]bool{}
	for _, s := range skills {
		t := toolOf(s)
		b, err := json.Marshal(t)
		if err != nil {
			continue // a schema that is not JSON cannot be offered
		}
		want[t.Name] = true
		if bytes.Equal(cs.tools[t.Name], b) {
			continue
		}
		cs.srv.AddTool(t, d.handler(cs.caller, s))
		cs.tools[t.Name] = b
	}
	var gone []string
	for name := range cs.tools {
		if !want[name] {
			gone = append(gone, name)
			delete(cs.tools, name)
		}
	}
	if len(gone) > 0 {
		cs.srv.RemoveTools(gone...)
	}
	return nil
}

// toolOf is the tool of a skill. A schema that is not an object schema is wrapped, as
// MCP wants objects: the input as {"input": …} (unwrapped before the call) and the
// output as {"result": …}.
func toolOf(s Skill) *sdk.Tool {
	t := &sdk.Tool{
		Name:        s.Name,
		Title:       s.Name + " " + s.Version,
		Description: s.Description,
		InputSchema: s.Input,
	}
	if !objectSchema(s.Input) {
		t.InputSchema = wrapSchema("input", s.Input)
	}
	if s.Output != nil {
		t.OutputSchema = s.Output
		if !objectSchema(s.Output) {
			t.OutputSchema = wrapSchema("result", s.Output)
		}
	}
	yes, no := true, false
	a := &sdk.ToolAnnotations{Title: t.Title, OpenWorldHint: &no, DestructiveHint: &no}
	if s.Network {
		a.OpenWorldHint = &yes
	}
	if s.ReadWrite {
		a.DestructiveHint = &yes
	}
	a.ReadOnlyHint = !s.Network && !s.ReadWrite
	t.Annotations = a
	if len(s.Brokered) > 0 {
		t.Meta = sdk.Meta{MetaBrokeredSecrets: s.Brokered}
	}
	return t
}

func objectSchema(s map[string]any) bool {
	return s != nil && s["type"] == "object"
}

func wrapSchema(key string, s map[string]any) map[string]any {
	inner := any(s)
	if s == nil {
		inner = map[string]any{}
	}
	return map[string]any{"type": "object", "properties": map[string]any{key: inner}, "required": []any{key}}
}

// MetaBrokeredSecrets is the tool's _meta key listing its brokered secrets (name,
// origins, header) from the operator's grant.
const MetaBrokeredSecrets = "skillbox/brokeredSecrets"

// Meta keys of a result.
const (
	MetaCallID  = "skillbox/callId"
	MetaAuditID = "skillbox/auditId"
	MetaUsage   = "skillbox/usage"
	MetaVersion = "skillbox/version"
	MetaError   = "skillbox/error"
	// MetaPendingCall, in a progress notification, is the id of the request an
	// approver must decide before the call runs.
	MetaPendingCall = "skillbox/pendingCall"
)

func (d *Door) handler(caller string, s Skill) sdk.ToolHandler {
	wrappedIn := !objectSchema(s.Input)
	wrappedOut := s.Output != nil && !objectSchema(s.Output)
	return func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		d.inflight.Add(1)
		defer d.inflight.Done()
		args := []byte(req.Params.Arguments)
		if err := checkArguments(args); err != nil {
			return refused(err), nil
		}
		if len(args) == 0 || string(args) == "null" {
			args = []byte("{}")
		}
		if wrappedIn {
			var w map[string]json.RawMessage
			if err := json.Unmarshal(args, &w); err != nil || w["input"] == nil {
				return refused(&Refusal{Reason: "INVALID_INPUT", Field: "input", Message: "arguments: want an object with the skill's input under \"input\""}), nil
			}
			args = w["input"]
		}
		res, err := d.b.Invoke(ctx, caller, s.Name, args, waitingNotice(ctx, req))
		if err != nil {
			return refused(err), nil
		}
		var out any
		if err := json.Unmarshal(res.Output, &out); err != nil {
			return refused(&Refusal{Reason: "INVALID_OUTPUT", Message: "the skill's output is not JSON", AuditID: res.AuditID}), nil
		}
		if wrappedOut {
			out = map[string]any{"result": out}
		} else if _, ok := out.(map[string]any); !ok {
			out = map[string]any{"result": out}
		}
		return &sdk.CallToolResult{
			Meta: sdk.Meta{MetaCallID: res.CallID, MetaAuditID: res.AuditID, MetaUsage: res.Usage, MetaVersion: res.Version},
			// The same JSON as text, for clients that read only content.
			Content:           []sdk.Content{&sdk.TextContent{Text: string(res.Output)}},
			StructuredContent: out,
		}, nil
	}
}

// waitingNotice tells a client that asked for progress (a progressToken) that its
// call waits for an approver's decision: without it an agent's user sees a tool call
// that hangs for minutes with no reason given.
func waitingNotice(ctx context.Context, req *sdk.CallToolRequest) func(client.Waiting) {
	tok := req.Params.GetProgressToken()
	if tok == nil || req.Session == nil {
		return nil
	}
	return func(w client.Waiting) {
		msg := fmt.Sprintf("waiting for an approver's decision (request %s", w.CallID)
		if !w.Expires.IsZero() {
			msg += ", until " + w.Expires.UTC().Format(time.RFC3339)
		}
		msg += ")"
		// Best effort, and never holding up the call (a slow client's stream may
		// block): the notice ends with the call's context.
		go func() {
			_ = req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{
				ProgressToken: tok, Message: msg, Progress: 0,
				Meta: sdk.Meta{MetaPendingCall: w.CallID},
			})
		}()
	}
}

// refused is the tool result of a refused or failed call: isError, one sentence,
// and the reason (and field) under _meta; a call that ran has its id and usage there
// too, as a successful call's.
func refused(err error) *sdk.CallToolResult {
	var r *Refusal
	if !errors.As(err, &r) {
		r = &Refusal{Reason: "INTERNAL", Message: err.Error()}
	}
	text := r.Message
	if r.Field != "" {
		text = fmt.Sprintf("%s (%s, field %s)", r.Message, r.Reason, r.Field)
	} else if r.Reason != "" {
		text = fmt.Sprintf("%s (%s)", r.Message, r.Reason)
	}
	meta := sdk.Meta{MetaError: r, MetaAuditID: r.AuditID}
	if r.CallID != "" {
		meta[MetaCallID], meta[MetaUsage] = r.CallID, r.Usage
	}
	return &sdk.CallToolResult{
		IsError: true,
		Meta:    meta,
		Content: []sdk.Content{&sdk.TextContent{Text: text}},
	}
}

// checkArguments refuses arguments past MaxArgumentBytes or MaxArgumentDepth (the
// engine would refuse them too, but only after decoding them whole), and arguments
// that are not UTF-8 (the engine refuses them as input; the gRPC backend could not
// even send them).
func checkArguments(args []byte) error {
	if len(args) > MaxArgumentBytes {
		return &Refusal{Reason: "INVALID_INPUT", Field: "arguments",
			Message: fmt.Sprintf("arguments are %d bytes, over the limit of %d", len(args), MaxArgumentBytes)}
	}
	if !utf8.Valid(args) {
		return &Refusal{Reason: "INVALID_INPUT", Field: "arguments", Message: "arguments: not valid JSON (not UTF-8 text)"}
	}
	depth, inString, escaped := 0, false, false
	for _, c := range args {
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			if depth++; depth > MaxArgumentDepth {
				return &Refusal{Reason: "INVALID_INPUT", Field: "arguments",
					Message: fmt.Sprintf("arguments are nested deeper than %d levels", MaxArgumentDepth)}
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// ServeStdio serves caller's tools over the process's stdin and stdout until the
// client goes or ctx ends (`skillbox mcp`). Sync refreshes the list as it does for
// HTTP sessions.
func (d *Door) ServeStdio(ctx context.Context, caller string) error {
	srv, err := d.Server(ctx, caller)
	if err != nil {
		return err
	}
	return srv.Run(ctx, &sdk.StdioTransport{})
}
