package wasm

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/skillbox-dev/skillbox/isolation/egress"
)

// hostModule is the import module name of the network host functions. It is offered
// only to calls whose grant has network origins.
const hostModule = "skillbox"

// Bounds on one http_request. The host parses the request inside the host call, where
// the call's context cannot stop it and its memory budget does not see it, so the
// request's size is checked before any parsing and its parts before they are copied.
const (
	// MaxRequestBody is the most body bytes one request may send (8 MiB).
	MaxRequestBody = 8 << 20
	// MaxRequestHead is the most bytes of request JSON apart from the body: method,
	// URL, headers and the JSON around them (64 KiB).
	MaxRequestHead = 64 << 10
	// MaxRequestHeaderValues is the most header values one request may carry.
	MaxRequestHeaderValues = 256
	// MaxRequestHeaderBytes is the most bytes of header names and values one request
	// may carry (32 KiB, as the egress proxy allows a container skill).
	MaxRequestHeaderBytes = 32 << 10

	// maxRequestJSON is the largest request JSON worth parsing: a full head and the
	// base64 of a full body.
	maxRequestJSON = MaxRequestHead + (MaxRequestBody+2)/3*4
)

// netRequest is what the guest passes to http_request. Headers and body stay raw
// until their sizes are checked.
type netRequest struct {
	Method  string          `json:"method"`
	URL     string          `json:"url"`
	Headers json.RawMessage `json:"headers,omitempty"`
	Body    json.RawMessage `json:"body,omitempty"` // base64 in JSON
}

// netResponse is what http_response hands back.
type netResponse struct {
	Status  int                 `json:"status,omitempty"`
	Headers map[string][]string `json:"headers,omitempty"`
	Body    []byte              `json:"body,omitempty"`
	Error   *netError           `json:"error,omitempty"`
}

type netError struct {
	Reason  string `json:"reason"` // EGRESS_DENIED, REQUEST_LIMIT, NETWORK, INVALID_REQUEST
	Message string `json:"message"`
}

// callNet is one call's network state, reached by the host functions through the
// call's context.
type callNet struct {
	guard    *egress.Guard
	maxBody  int64
	initOnly bool // a reactor's _initialize: every request is refused (noNetInInit)
	mu       sync.Mutex
	pending  []byte
	hasReply bool
}

type callNetKey struct{}

// noNetInInit is why a request made while a reactor's instance is made (its start
// function, then _initialize) is refused. The state they leave is every later call's
// starting state, whoever makes it, and they run within the call that made the
// instance: a request then would be charged to that caller's budget and audited as that
// caller's, and its response would reach the callers after it. So they get no network,
// pooled or fresh, as they get no stdin.
const noNetInInit = "no network during _initialize (nor the start function): a reactor makes its requests in " + exportHandle +
	", under each call's own grant, request budget and audit"

// initNet is the network state a reactor's start function and _initialize run with:
// none.
func initNet(ctx context.Context) context.Context {
	return context.WithValue(ctx, callNetKey{}, &callNet{initOnly: true})
}

// instantiateHost defines the skillbox module in r once; the per-call guard travels in
// the context, so one host module serves every call.
func instantiateHost(ctx context.Context, r wazero.Runtime) error {
	_, err := r.NewHostModuleBuilder(hostModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(httpRequest), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}).
		WithParameterNames("req_ptr", "req_len").
		Export("http_request").
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(httpResponse), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}).
		WithParameterNames("buf_ptr", "buf_len").
		Export("http_response").
		Instantiate(ctx)
	return err
}

func httpRequest(ctx context.Context, mod api.Module, stack []uint64) {
	cn, _ := ctx.Value(callNetKey{}).(*callNet)
	raw, ok := mod.Memory().Read(api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
	if cn == nil || !ok {
		stack[0] = api.EncodeI32(-1)
		return
	}
	reply := cn.do(ctx, raw)
	cn.mu.Lock()
	cn.pending, cn.hasReply = reply, true
	cn.mu.Unlock()
	stack[0] = api.EncodeI32(int32(len(reply)))
}

func httpResponse(ctx context.Context, mod api.Module, stack []uint64) {
	cn, _ := ctx.Value(callNetKey{}).(*callNet)
	ptr, size := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	if cn == nil {
		stack[0] = api.EncodeI32(-1)
		return
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if !cn.hasReply || uint32(len(cn.pending)) > size || !mod.Memory().Write(ptr, cn.pending) {
		stack[0] = api.EncodeI32(-1)
		return
	}
	n := len(cn.pending)
	cn.pending, cn.hasReply = nil, false
	stack[0] = api.EncodeI32(int32(n))
}

// do sends one request through the guard and encodes the outcome for the guest. Every
// failure is a reply the skill can handle, never a trap.
func (cn *callNet) do(ctx context.Context, raw []byte) []byte {
	if cn.initOnly {
		return encodeErr("EGRESS_DENIED", noNetInInit)
	}
	if ctx.Err() != nil {
		return encodeErr("NETWORK", "the call ended before the request was sent")
	}
	req, reason, msg := parseRequest(ctx, raw)
	if req == nil {
		return encodeErr(reason, msg)
	}
	resp, err := cn.guard.Do(ctx, req)
	if err != nil {
		var denied *egress.DeniedError
		switch {
		case egress.IsBudget(err):
			return encodeErr("REQUEST_LIMIT", err.Error())
		case errors.As(err, &denied):
			return encodeErr("EGRESS_DENIED", denied.Error())
		default:
			return encodeErr("NETWORK", err.Error())
		}
	}
	defer resp.Body.Close()
	// The guard caps the body; read one byte more than the budget anyway so a guard
	// that did not can never hand the guest more than it may have.
	body, err := io.ReadAll(io.LimitReader(resp.Body, cn.maxBody+1))
	if err != nil {
		return encodeErr("NETWORK", "read response: "+err.Error())
	}
	if int64(len(body)) > cn.maxBody {
		return encodeErr("NETWORK", "response body over the limit")
	}
	out, err := json.Marshal(netResponse{Status: resp.StatusCode, Headers: resp.Header, Body: body})
	if err != nil {
		return encodeErr("NETWORK", err.Error())
	}
	return out
}

// parseRequest turns the guest's request JSON into an HTTP request bound to ctx, or
// says why it can't (reason, message). Sizes are checked before the work they bound:
// the whole JSON before parsing, the head and the body before decoding either.
func parseRequest(ctx context.Context, raw []byte) (*http.Request, string, string) {
	if len(raw) > maxRequestJSON {
		return nil, "INVALID_REQUEST", fmt.Sprintf("request is %d bytes of JSON, over the limit of %d (a body of up to %d bytes and %d bytes for method, URL and headers)",
			len(raw), maxRequestJSON, MaxRequestBody, MaxRequestHead)
	}
	var nr netRequest
	if err := json.Unmarshal(raw, &nr); err != nil {
		return nil, "INVALID_REQUEST", "request JSON: " + err.Error()
	}
	if ctx.Err() != nil {
		return nil, "NETWORK", "the call ended before the request was sent"
	}
	if head := len(raw) - len(nr.Body); head > MaxRequestHead {
		return nil, "INVALID_REQUEST", fmt.Sprintf("request's method, URL and headers are %d bytes of JSON, over the limit of %d", head, MaxRequestHead)
	}
	// The encoded length bounds the decoding; the decoded one is the limit.
	bodyOver := fmt.Sprintf("request body is over the limit of %d bytes", MaxRequestBody)
	if len(nr.Body) > base64.StdEncoding.EncodedLen(MaxRequestBody)+2 {
		return nil, "INVALID_REQUEST", bodyOver
	}
	var body []byte
	if len(nr.Body) > 0 {
		if err := json.Unmarshal(nr.Body, &body); err != nil {
			return nil, "INVALID_REQUEST", "request body: " + err.Error()
		}
	}
	if len(body) > MaxRequestBody {
		return nil, "INVALID_REQUEST", bodyOver
	}
	var headers map[string][]string
	if len(nr.Headers) > 0 {
		if err := json.Unmarshal(nr.Headers, &headers); err != nil {
			return nil, "INVALID_REQUEST", "request headers: " + err.Error()
		}
	}
	// Counted as sent: the name once per value.
	values, size := 0, 0
	for k, vs := range headers {
		values += len(vs)
		for _, v := range vs {
			size += len(k) + len(v)
		}
	}
	if values > MaxRequestHeaderValues {
		return nil, "INVALID_REQUEST", fmt.Sprintf("request has %d header values, over the limit of %d", values, MaxRequestHeaderValues)
	}
	if size > MaxRequestHeaderBytes {
		return nil, "INVALID_REQUEST", fmt.Sprintf("request headers are %d bytes, over the limit of %d", size, MaxRequestHeaderBytes)
	}
	if nr.Method == "" {
		nr.Method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, nr.Method, nr.URL, bytes.NewReader(body))
	if err != nil {
		return nil, "INVALID_REQUEST", err.Error()
	}
	for k, vs := range headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return req, "", ""
}

func encodeErr(reason, msg string) []byte {
	out, _ := json.Marshal(netResponse{Error: &netError{Reason: reason, Message: msg}})
	return out
}
