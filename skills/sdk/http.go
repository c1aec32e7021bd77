package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// Reasons the host gives for a request that was not made or did not complete.
const (
	ReasonEgressDenied   = "EGRESS_DENIED"   // the origin (or a redirect's, or the dialled address) is not granted, or a reactor's _initialize asked
	ReasonRequestLimit   = "REQUEST_LIMIT"   // the call's outbound request budget is spent
	ReasonNetwork        = "NETWORK"         // the request was allowed but failed: DNS, connect, TLS, timeout, body cap
	ReasonInvalidRequest = "INVALID_REQUEST" // the host could not read the request
)

// ErrNotUnderSkillbox is returned by Transport when the skill is not running as a wasip1
// module under skillbox, for example in a host-side `go test`.
var ErrNotUnderSkillbox = errors.New("skillbox: not running under skillbox: outbound HTTP exists only in a wasip1 module run by skillbox with a network grant")

// EgressError is a request the host refused or could not complete. It reaches callers
// of http.Client wrapped in a *url.Error; use errors.As to get it.
type EgressError struct {
	Reason  string // one of the Reason* constants
	Message string // the host's explanation
}

func (e *EgressError) Error() string {
	return fmt.Sprintf("skillbox egress %s: %s", e.Reason, e.Message)
}

// Transport is an http.RoundTripper that sends each request through the skillbox host.
// The host checks the origin, follows redirects itself (re-checking each hop), caps the
// response body and returns it whole.
type Transport struct{}

// RoundTrip implements http.RoundTripper.
func (Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return roundTrip(req, hostCall)
}

// HTTPClient returns a client that uses Transport and never follows redirects in the
// guest: the host has already followed and checked them, so a 3xx that reaches the guest
// is final (for example when the host's redirect limit was reached).
func HTTPClient() *http.Client {
	return &http.Client{
		Transport: Transport{},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// wireRequest is the request JSON passed to skillbox.http_request.
type wireRequest struct {
	Method  string              `json:"method"`
	URL     string              `json:"url"`
	Headers map[string][]string `json:"headers,omitempty"`
	Body    []byte              `json:"body,omitempty"` // base64 in JSON
}

// wireResult is the result JSON read with skillbox.http_response.
type wireResult struct {
	Status  int                 `json:"status"`
	Headers map[string][]string `json:"headers"`
	Body    []byte              `json:"body"` // base64 in JSON
	Error   *EgressError        `json:"error"`
}

// UnmarshalJSON decodes the ABI form {"reason":…,"message":…}.
func (e *EgressError) UnmarshalJSON(b []byte) error {
	var w struct {
		Reason  string `json:"reason"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	e.Reason, e.Message = w.Reason, w.Message
	return nil
}

// MarshalJSON encodes the ABI form {"reason":…,"message":…}.
func (e *EgressError) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Reason  string `json:"reason"`
		Message string `json:"message"`
	}{e.Reason, e.Message})
}

// encodeRequest turns req into the ABI's request JSON, reading (and closing) its body.
func encodeRequest(req *http.Request) ([]byte, error) {
	if req.URL == nil {
		return nil, errors.New("skillbox: request has no URL")
	}
	w := wireRequest{Method: req.Method, URL: req.URL.String()}
	if w.Method == "" {
		w.Method = http.MethodGet
	}
	if len(req.Header) > 0 {
		w.Headers = map[string][]string(req.Header)
	}
	if req.Body != nil && req.Body != http.NoBody {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("skillbox: read request body: %w", err)
		}
		w.Body = body
	}
	return json.Marshal(w)
}

// decodeResult turns the ABI's result JSON into a response to req, or an *EgressError.
func decodeResult(req *http.Request, data []byte) (*http.Response, error) {
	var w wireResult
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("skillbox: bad result from host: %w", err)
	}
	if w.Error != nil {
		return nil, w.Error
	}
	if w.Status < 100 || w.Status > 999 {
		return nil, fmt.Errorf("skillbox: bad result from host: status %d", w.Status)
	}
	header := http.Header(w.Headers)
	if header == nil {
		header = http.Header{}
	}
	text := http.StatusText(w.Status)
	status := strconv.Itoa(w.Status)
	if text != "" {
		status += " " + text
	}
	return &http.Response{
		Status:        status,
		StatusCode:    w.Status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          io.NopCloser(bytes.NewReader(w.Body)),
		ContentLength: int64(len(w.Body)),
		Request:       req,
	}, nil
}

// roundTrip is Transport.RoundTrip with the host call as a parameter, so the encoding
// is tested on the host against a real HTTP server.
func roundTrip(req *http.Request, call func([]byte) ([]byte, error)) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	wire, err := encodeRequest(req)
	if err != nil {
		return nil, err
	}
	res, err := call(wire)
	if err != nil {
		return nil, err
	}
	return decodeResult(req, res)
}
