package wasm_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/manifest"
)

// server is a loopback HTTP server that counts the requests it saw.
type server struct {
	*httptest.Server
	hits atomic.Int32
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) origin(t *testing.T, host string) manifest.Origin {
	u, err := url.Parse(s.URL)
	must(t, err)
	port, err := strconv.Atoi(u.Port())
	must(t, err)
	if host == "" {
		host = u.Hostname()
	}
	return manifest.Origin{Scheme: "http", Host: host, Port: port}
}

func (s *server) port(t *testing.T) int { return s.origin(t, "").Port }

// resolver answers only the names a test gives it.
type resolver map[string]string

func (r resolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	ip, ok := r[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host (test resolver)", Name: host, IsNotFound: true}
	}
	return []net.IPAddr{{IP: net.ParseIP(ip)}}, nil
}

type hostReply struct {
	Status int                 `json:"status"`
	Body   string              `json:"body"` // base64
	Header map[string][]string `json:"headers"`
	Error  *struct {
		Reason  string `json:"reason"`
		Message string `json:"message"`
	} `json:"error"`
}

// fetch runs the net guest for one GET and decodes the host's reply.
func fetch(t *testing.T, sb *wasm.Sandbox, origins []manifest.Origin, rawURL string, l isolation.Limits) (hostReply, isolation.Result) {
	t.Helper()
	in := fmt.Sprintf(`{"method":"GET","url":%q,"headers":{"X-Test":["1"]}}`, rawURL)
	res, err := sb.Run(context.Background(), isolation.Call{ID: "net", Skill: goSkill(t, "net"), Input: []byte(in), Limits: l,
		Grant: isolation.Grant{Network: origins}})
	if err != nil {
		t.Fatalf("net guest: %v (logs %q)", err, res.Logs)
	}
	var r hostReply
	if err := json.Unmarshal(res.Output, &r); err != nil {
		t.Fatalf("reply %q: %v", res.Output, err)
	}
	return r, res
}

func TestNetwork(t *testing.T) {
	ok := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test") != "1" {
			http.Error(w, "header lost", http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, "pong")
	})
	other := newServer(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "should not be reached") })
	redirector := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/stolen", http.StatusFound)
	})
	sb := newSandbox(t, wasm.WithResolver(resolver{"api.skillbox.test": "127.0.0.1"}))

	t.Run("granted loopback origin", func(t *testing.T) {
		r, res := fetch(t, sb, []manifest.Origin{ok.origin(t, "")}, ok.URL+"/ping", limits())
		body, _ := base64.StdEncoding.DecodeString(r.Body)
		if r.Error != nil || r.Status != 200 || string(body) != "pong" {
			t.Fatalf("reply %+v body %q", r, body)
		}
		if res.Usage.Requests != 1 || res.Usage.DeniedRequests != 0 || len(res.Egress) != 1 || !res.Egress[0].Allowed {
			t.Fatalf("usage %+v egress %+v", res.Usage, res.Egress)
		}
	})
	deniedCases := []struct {
		name    string
		origins []manifest.Origin
		url     string
		reason  string
	}{
		{"origin not granted", []manifest.Origin{ok.origin(t, "")}, other.URL + "/x", "EGRESS_DENIED"},
		{"redirect to an ungranted origin", []manifest.Origin{redirector.origin(t, "")}, redirector.URL + "/go", "EGRESS_DENIED"},
		// A granted name that resolves to loopback is refused (DNS rebinding): only an
		// origin naming the address itself reaches it. Exact and wildcard alike.
		{"granted name resolving to loopback", []manifest.Origin{other.origin(t, "api.skillbox.test")},
			"http://api.skillbox.test:" + strconv.Itoa(other.port(t)) + "/x", "EGRESS_DENIED"},
		{"granted wildcard name resolving to loopback", []manifest.Origin{wildcard(other.origin(t, "skillbox.test"))},
			"http://api.skillbox.test:" + strconv.Itoa(other.port(t)) + "/x", "EGRESS_DENIED"},
	}
	for _, tc := range deniedCases {
		t.Run(tc.name, func(t *testing.T) {
			before := other.hits.Load()
			r, res := fetch(t, sb, tc.origins, tc.url, limits())
			if r.Error == nil || r.Error.Reason != tc.reason {
				t.Fatalf("reply %+v, want error %s", r, tc.reason)
			}
			if other.hits.Load() != before {
				t.Fatal("the ungranted server was reached")
			}
			if tc.name == "redirect to an ungranted origin" && (len(res.Egress) != 2 || !res.Egress[0].Allowed || redirector.hits.Load() == 0) {
				t.Fatalf("the granted first hop should go out: %+v", res.Egress)
			}
			if res.Usage.DeniedRequests < 1 || len(res.Egress) == 0 || res.Egress[len(res.Egress)-1].Allowed {
				t.Fatalf("denial not recorded: usage %+v egress %+v", res.Usage, res.Egress)
			}
		})
	}
	t.Run("request budget of zero", func(t *testing.T) {
		l := limits()
		l.Requests = 0
		before := ok.hits.Load()
		r, res := fetch(t, sb, []manifest.Origin{ok.origin(t, "")}, ok.URL+"/ping", l)
		if r.Error == nil || r.Error.Reason != "REQUEST_LIMIT" || ok.hits.Load() != before {
			t.Fatalf("reply %+v", r)
		}
		if res.Usage.Requests != 0 || res.Usage.DeniedRequests != 1 {
			t.Fatalf("usage %+v", res.Usage)
		}
	})
	t.Run("malformed request", func(t *testing.T) {
		res, err := sb.Run(context.Background(), isolation.Call{ID: "bad", Skill: goSkill(t, "net"), Input: []byte(`{"url":`), Limits: limits(),
			Grant: isolation.Grant{Network: []manifest.Origin{ok.origin(t, "")}}})
		if err != nil {
			t.Fatal(err)
		}
		var r hostReply
		must(t, json.Unmarshal(res.Output, &r))
		if r.Error == nil || r.Error.Reason != "INVALID_REQUEST" {
			t.Fatalf("reply %s", res.Output)
		}
	})
	requireEcho(t, sb)
}

func wildcard(o manifest.Origin) manifest.Origin {
	o.Wildcard = true
	return o
}
