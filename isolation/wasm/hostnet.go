package wasm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

// netRequest is what the guest passes to http_request.
type netRequest struct {
	Method  string              `json:"method"`
	URL     string              `json:"url"`
	Headers map[string][]string `json:"headers,omitempty"`
	Body    []byte              `json:"body,omitempty"` // base64 in JSON
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
	mu       sync.Mutex
	pending  []byte
	hasReply bool
}

type callNetKey struct{}

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
	var nr netRequest
	if err := json.Unmarshal(raw, &nr); err != nil {
		return encodeErr("INVALID_REQUEST", "request JSON: "+err.Error())
	}
	if nr.Method == "" {
		nr.Method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, nr.Method, nr.URL, bytes.NewReader(nr.Body))
	if err != nil {
		return encodeErr("INVALID_REQUEST", err.Error())
	}
	for k, vs := range nr.Headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
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

func encodeErr(reason, msg string) []byte {
	out, _ := json.Marshal(netResponse{Error: &netError{Reason: reason, Message: msg}})
	return out
}
