package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// loopbackHost plays the host side of the ABI for host-side tests: it decodes the
// request JSON exactly as a host must, performs it with a real HTTP client against a
// loopback test server, and encodes the result JSON. Origins other than allowed are
// answered with EGRESS_DENIED, like the real host.
func loopbackHost(t *testing.T, allowed string) func([]byte) ([]byte, error) {
	return func(wire []byte) ([]byte, error) {
		var req struct {
			Method  string              `json:"method"`
			URL     string              `json:"url"`
			Headers map[string][]string `json:"headers"`
			Body    []byte              `json:"body"`
		}
		if err := json.Unmarshal(wire, &req); err != nil {
			t.Fatalf("host: bad request JSON %s: %v", wire, err)
		}
		if !strings.HasPrefix(req.URL, allowed+"/") {
			return []byte(`{"error":{"reason":"EGRESS_DENIED","message":"origin not granted: ` + req.URL + `"}}`), nil
		}
		hreq, err := http.NewRequest(req.Method, req.URL, bytes.NewReader(req.Body))
		if err != nil {
			t.Fatal(err)
		}
		hreq.Header = req.Headers
		resp, err := http.DefaultClient.Do(hreq)
		if err != nil {
			return json.Marshal(map[string]any{"error": map[string]string{"reason": "NETWORK", "message": err.Error()}})
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return json.Marshal(map[string]any{"status": resp.StatusCode, "headers": resp.Header, "body": body})
	}
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRoundTripThroughABI(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo-Method", r.Method)
		w.Header().Set("X-Echo-Token", r.Header.Get("X-Token"))
		w.WriteHeader(http.StatusTeapot)
		w.Write(append([]byte("got:"), body...))
	}))
	defer srv.Close()

	host := loopbackHost(t, srv.URL)
	client := HTTPClient()
	client.Transport = rtFunc(func(r *http.Request) (*http.Response, error) { return roundTrip(r, host) })

	// A binary body with a NUL and invalid UTF-8 survives base64 both ways.
	payload := []byte{0, 0xff, 'a', '\n'}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/echo?q=1", bytes.NewReader(payload))
	req.Header.Set("X-Token", "t0k")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || resp.Status != "418 I'm a teapot" {
		t.Errorf("status %d %q", resp.StatusCode, resp.Status)
	}
	if want := append([]byte("got:"), payload...); !bytes.Equal(body, want) {
		t.Errorf("body %q, want %q", body, want)
	}
	if resp.Header.Get("X-Echo-Method") != "POST" || resp.Header.Get("X-Echo-Token") != "t0k" {
		t.Errorf("headers %v", resp.Header)
	}
	if resp.ContentLength != int64(len(body)) {
		t.Errorf("content length %d, body %d", resp.ContentLength, len(body))
	}

	// A denied origin reaches the caller as *EgressError inside *url.Error.
	_, err = client.Get("http://127.0.0.2:1/never")
	var eg *EgressError
	if !errors.As(err, &eg) || eg.Reason != ReasonEgressDenied || !strings.Contains(eg.Message, "127.0.0.2") {
		t.Fatalf("err %v, want *EgressError EGRESS_DENIED", err)
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Errorf("err %T, want *url.Error around the EgressError", err)
	}
}

func TestHTTPClientDoesNotFollowRedirects(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/a" {
			http.Redirect(w, r, "/b", http.StatusFound)
			return
		}
		t.Errorf("guest followed a redirect to %s", r.URL)
	}))
	defer srv.Close()
	// This host does not follow redirects (loopbackHost does), so a 3xx reaches the
	// guest client, which must hand it back rather than follow it.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	client := HTTPClient()
	client.Transport = rtFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := noFollow.Get(r.URL.String())
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		res, _ := json.Marshal(map[string]any{"status": resp.StatusCode, "headers": resp.Header, "body": body})
		return roundTrip(r, func([]byte) ([]byte, error) { return res, nil })
	})
	resp, err := client.Get(srv.URL + "/a")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/b" {
		t.Fatalf("status %d location %q, want 302 /b", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestEncodeRequest(t *testing.T) {
	req, _ := http.NewRequest("", "https://example.com/a%20b?x=1", nil)
	got, err := encodeRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"method":"GET","url":"https://example.com/a%20b?x=1"}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
	req, _ = http.NewRequest("PUT", "https://example.com/", strings.NewReader("hi"))
	req.Header["K"] = []string{"v1", "v2"}
	got, _ = encodeRequest(req)
	if want := `{"method":"PUT","url":"https://example.com/","headers":{"K":["v1","v2"]},"body":"aGk="}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestDecodeResult(t *testing.T) {
	req, _ := http.NewRequest("GET", "https://example.com/", nil)
	tests := []struct {
		name, result string
		status       int
		body         string
		reason       string // EgressError reason expected
		errSub       string // other error expected
	}{
		{"ok", `{"status":200,"headers":{"Content-Type":["text/plain"]},"body":"aGVsbG8="}`, 200, "hello", "", ""},
		{"no body no headers", `{"status":204}`, 204, "", "", ""},
		{"denied", `{"error":{"reason":"EGRESS_DENIED","message":"no"}}`, 0, "", ReasonEgressDenied, ""},
		{"limit", `{"error":{"reason":"REQUEST_LIMIT","message":"20 used"}}`, 0, "", ReasonRequestLimit, ""},
		{"network", `{"error":{"reason":"NETWORK","message":"refused"}}`, 0, "", ReasonNetwork, ""},
		{"not json", `nope`, 0, "", "", "bad result from host"},
		{"bad base64", `{"status":200,"body":"***"}`, 0, "", "", "bad result from host"},
		{"no status", `{"headers":{}}`, 0, "", "", "status 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := decodeResult(req, []byte(tt.result))
			var eg *EgressError
			switch {
			case tt.reason != "":
				if !errors.As(err, &eg) || eg.Reason != tt.reason {
					t.Fatalf("err %v, want reason %s", err, tt.reason)
				}
			case tt.errSub != "":
				if err == nil || !strings.Contains(err.Error(), tt.errSub) {
					t.Fatalf("err %v, want %q", err, tt.errSub)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != tt.status || string(body) != tt.body || resp.Request != req {
					t.Fatalf("got %d %q", resp.StatusCode, body)
				}
			}
		})
	}
}

func TestNotUnderSkillbox(t *testing.T) {
	_, err := HTTPClient().Get("http://127.0.0.1:1/")
	if !errors.Is(err, ErrNotUnderSkillbox) {
		t.Fatalf("err %v, want ErrNotUnderSkillbox", err)
	}
}

func TestEgressErrorJSON(t *testing.T) {
	b, _ := json.Marshal(&EgressError{Reason: ReasonNetwork, Message: "x"})
	if string(b) != `{"reason":"NETWORK","message":"x"}` {
		t.Fatalf("got %s", b)
	}
}
