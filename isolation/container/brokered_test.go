package container

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/testpki"
	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/egress"
	"github.com/skillbox-dev/skillbox/manifest"
)

// seenRequest is what a test origin kept of one request: everything it was sent.
type seenRequest struct {
	Path   string
	Header http.Header
	Body   string
}

// loopOrigin is a test origin on loopback, named through the Guard's resolver; the
// proxy (in this process) reaches it, the container only through the proxy.
type loopOrigin struct {
	srv    *httptest.Server
	name   string
	scheme string
	port   int
	mu     sync.Mutex
	seen   []seenRequest
}

func newLoopOrigin(t *testing.T, pki *testpki.CA, scheme, name string, h http.HandlerFunc) *loopOrigin {
	t.Helper()
	o := &loopOrigin{name: name, scheme: scheme}
	o.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		o.mu.Lock()
		o.seen = append(o.seen, seenRequest{Path: r.URL.Path, Header: r.Header.Clone(), Body: string(b)})
		o.mu.Unlock()
		h(w, r)
	}))
	o.port = o.srv.Listener.Addr().(*net.TCPAddr).Port
	if scheme == "https" {
		o.srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.TLS(t, testpki.ServerTemplate(name))}}
		o.srv.StartTLS()
	} else {
		o.srv.Start()
	}
	t.Cleanup(o.srv.Close)
	return o
}

func (o *loopOrigin) origin() manifest.Origin {
	return manifest.Origin{Scheme: o.scheme, Host: o.name, Port: o.port}
}

func (o *loopOrigin) url(path string) string {
	return fmt.Sprintf("%s://%s:%d%s", o.scheme, o.name, o.port, path)
}

func (o *loopOrigin) requests() []seenRequest {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]seenRequest(nil), o.seen...)
}

// loopResolver sends every name it knows to loopback and fails the rest: no outside
// name is ever looked up.
type loopResolver map[string]bool

func (r loopResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	if !r[host] {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return []net.IPAddr{{IP: net.IPv4(127, 0, 0, 1)}}, nil
}

// TestBrokeredSecretNeverEntersContainer: a container skill uses a credential it never
// sees. The operator brokers API_TOKEN for api.test (https, TLS terminated by the
// proxy) and api-plain.test (plain http); sink.test is granted without it.
//   - A hostile skill that dumps its env, argv, every file it can read (the CA file
//     too), its /proc/self files and its memory, and sends it all to sink.test, never
//     shows the value: not in what it sends, its output, its logs or the records.
//   - The listed origins receive the header; sink.test never does, neither asked
//     directly nor as the target of a redirect from api.test.
//   - api.test echoes the header: the skill gets the placeholder.
//
// Every case runs in a fresh and in a warm container.
func TestBrokeredSecretNeverEntersContainer(t *testing.T) {
	needEngine(t)
	pki := testpki.New(t, "skillbox test origins")
	secret := "sbx-secret-" + randomID() + randomID()
	var sink *loopOrigin
	echo := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, sink.url("/landed"), http.StatusFound)
			return
		}
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		fmt.Fprintf(w, "you sent %q", r.Header.Get("Authorization"))
	}
	api := newLoopOrigin(t, pki, "https", "api.test", echo)
	apiPlain := newLoopOrigin(t, pki, "http", "api-plain.test", echo)
	sink = newLoopOrigin(t, pki, "https", "sink.test", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "thanks") })

	proxy := egress.NewProxy()
	t.Cleanup(func() { proxy.Close() })
	s := newSandbox(t, WithEgressProxy(proxy), WithWarmPool(1),
		WithGuardOptions(egress.WithResolver(loopResolver{"api.test": true, "api-plain.test": true, "sink.test": true}),
			egress.WithInternalNamesUnsafe(), egress.WithTLSConfig(&tls.Config{RootCAs: pki.Pool})),
		// The tunnelled origin (sink.test) is verified by the skill itself.
		WithContainerRoots(pki.PEM))
	grant := func(c *isolation.Call) {
		c.Grant.Network = []manifest.Origin{api.origin(), apiPlain.origin(), sink.origin()}
		c.Grant.Env = map[string]string{"PLAIN_SETTING": "visible-to-the-skill"}
		c.Grant.Brokered = []isolation.BrokeredSecret{{
			Name: "API_TOKEN", Origins: []manifest.Origin{api.origin(), apiPlain.origin()},
			Header: "Authorization", Value: "Bearer " + secret, Secret: secret,
		}}
		c.Limits.Requests, c.Limits.Response = 20, 1<<20
		c.Granted.Requests, c.Granted.Response = 20, 1<<20
		// The dump reads all of its readable memory through /proc/self/mem. Some kernels
		// answer untouched pages with the zero page; others (6.18 here) and gVisor's
		// commit them (the Go heap arena alone is 64 MiB), and those pages count against
		// the limit: give it room, the point here is where the secret goes.
		c.Limits.Memory, c.Granted.Memory = 256<<20, 256<<20
	}
	placeholder := isolation.Placeholder("API_TOKEN")
	tests := []struct {
		name  string
		input string
		check func(t *testing.T, out map[string]any, res isolation.Result)
	}{
		{name: "dump everything to an origin without the secret", input: `{"mode":"dump","url":"` + sink.url("/dump") + `","name":"sbx-secret-"}`,
			check: func(t *testing.T, out map[string]any, res isolation.Result) {
				if out["sent"] != "200 OK" {
					t.Fatalf("the dump did not reach the sink: %v", out["sent"])
				}
				var dumped *seenRequest
				for _, r := range sink.requests() {
					if r.Path == "/dump" {
						dumped = &r
					}
				}
				if dumped == nil {
					t.Fatal("the sink got no dump")
				}
				// The dump is real: the env, the granted setting and the CA file are in it.
				for _, want := range []string{"PLAIN_SETTING=visible-to-the-skill", "HTTPS_PROXY=", CAPath, "BEGIN CERTIFICATE", "/proc/self/environ"} {
					if !strings.Contains(dumped.Body, want) {
						t.Errorf("the dump lacks %q", want)
					}
				}
				t.Logf("read %v files, %v bytes of memory (%v); sent %v bytes; prefix found at %v", out["files"], out["memory"], out["memoryError"], out["bytes"], out["hits"])
				if mem, _ := out["memory"].(float64); mem < 1<<20 {
					t.Errorf("scanned %v bytes of memory (%v)", out["memory"], out["memoryError"])
				}
				ca, _ := out["ca"].(string)
				if !strings.Contains(ca, "BEGIN CERTIFICATE") || strings.Contains(ca, "PRIVATE") || strings.Count(ca, "BEGIN CERTIFICATE") != 2 {
					t.Errorf("the CA file holds %d certificates, private key: %v", strings.Count(ca, "BEGIN CERTIFICATE"), strings.Contains(ca, "PRIVATE"))
				}
				// Nothing the dump found is the token: prefix hits are the skill's own input.
				if n, _ := out["files"].(float64); n < 5 {
					t.Errorf("the skill read only %v files", out["files"])
				}
			}},
		{name: "listed https origin gets the header, the skill the placeholder", input: `{"mode":"get","url":"` + api.url("/echo") + `"}`,
			check: func(t *testing.T, out map[string]any, res isolation.Result) {
				last := api.requests()[len(api.requests())-1]
				if last.Path != "/echo" || last.Header.Get("Authorization") != "Bearer "+secret {
					t.Errorf("api.test got Authorization %q", last.Header.Get("Authorization"))
				}
				body, _ := out["body"].(string)
				if out["status"] != 200.0 || !strings.Contains(body, placeholder) {
					t.Errorf("the skill got %v", out)
				}
				if h := fmt.Sprint(out["header"]); !strings.Contains(h, placeholder) {
					t.Errorf("echoed header: %s", h)
				}
				if !hasSecretRecord(res, api.url("/echo")) {
					t.Errorf("no record names API_TOKEN on %s: %+v", api.url("/echo"), res.Egress)
				}
			}},
		{name: "listed plain-http origin gets the header", input: `{"mode":"get","url":"` + apiPlain.url("/echo") + `"}`,
			check: func(t *testing.T, out map[string]any, res isolation.Result) {
				last := apiPlain.requests()[len(apiPlain.requests())-1]
				if last.Header.Get("Authorization") != "Bearer "+secret {
					t.Errorf("api-plain.test got Authorization %q", last.Header.Get("Authorization"))
				}
				if body, _ := out["body"].(string); !strings.Contains(body, placeholder) {
					t.Errorf("the skill got %v", out)
				}
			}},
		{name: "granted origin without the secret gets none", input: `{"mode":"get","url":"` + sink.url("/hello") + `"}`,
			check: func(t *testing.T, out map[string]any, res isolation.Result) {
				last := sink.requests()[len(sink.requests())-1]
				if out["status"] != 200.0 || last.Path != "/hello" || last.Header.Get("Authorization") != "" {
					t.Errorf("sink.test: %v, Authorization %q", out, last.Header.Get("Authorization"))
				}
			}},
		{name: "redirect from the listed origin drops it", input: `{"mode":"get","url":"` + api.url("/redirect") + `"}`,
			check: func(t *testing.T, out map[string]any, res isolation.Result) {
				if out["final"] != sink.url("/landed") || out["status"] != 200.0 {
					t.Fatalf("the redirect ended at %v with %v", out["final"], out["status"])
				}
				last := sink.requests()[len(sink.requests())-1]
				if last.Path != "/landed" || last.Header.Get("Authorization") != "" {
					t.Errorf("the redirect target got Authorization %q", last.Header.Get("Authorization"))
				}
				if !hasSecretRecord(res, api.url("/redirect")) {
					t.Errorf("the listed hop carries no secret: %+v", res.Egress)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, warm := range []bool{false, true} {
				call := hostileCall(tc.input)
				grant(&call)
				if warm {
					if err := s.Prewarm(context.Background(), call); err != nil {
						t.Fatalf("Prewarm: %v", err)
					}
				}
				res, err := s.Run(context.Background(), call)
				t.Logf("warm=%v Run: err=%v output=%.300s", warm, err, res.Output)
				if err != nil {
					t.Fatalf("Run: %v; logs %q", err, tail(res.Logs, 300))
				}
				// Whatever the case, the value is nowhere the skill's words go.
				recs, _ := json.Marshal(res.Egress)
				for what, b := range map[string][]byte{"output": res.Output, "logs": res.Logs, "records": recs} {
					if strings.Contains(string(b), secret) {
						t.Errorf("the secret is in the call's %s", what)
					}
				}
				tc.check(t, decode(t, res.Output), res)
			}
		})
	}
	// The origin without the secret never saw it, in anything it was sent.
	for _, r := range sink.requests() {
		if strings.Contains(fmt.Sprint(r.Header, r.Body, r.Path), secret) {
			t.Errorf("sink.test saw the secret in a request to %s", r.Path)
		}
	}
}

// hasSecretRecord reports whether a record of a request to u names API_TOKEN.
func hasSecretRecord(res isolation.Result, u string) bool {
	for _, r := range res.Egress {
		if r.URL == u && r.Allowed && fmt.Sprint(r.Secrets) == "[API_TOKEN]" {
			return true
		}
	}
	return false
}

// TestBrokeredValueNeverInEnv: a grant that would hand a brokered value to the
// container as env (an engine bug) is refused before any container exists.
func TestBrokeredValueNeverInEnv(t *testing.T) {
	proxy := egress.NewProxy()
	t.Cleanup(func() { proxy.Close() })
	s := newSandbox(t, WithEgressProxy(proxy))
	call := hostileCall(`{"mode":"env"}`)
	o := manifest.Origin{Scheme: "https", Host: "api.test", Port: 443}
	call.Grant.Network = []manifest.Origin{o}
	call.Grant.Brokered = []isolation.BrokeredSecret{{Name: "T", Origins: []manifest.Origin{o}, Header: "Authorization", Value: "Bearer v-123", Secret: "v-123"}}
	call.Grant.Env = map[string]string{"T": "v-123"}
	res, err := s.Run(context.Background(), call)
	if isolation.ReasonOf(err) != isolation.ReasonInternal || len(res.Output) != 0 || !strings.Contains(err.Error(), "brokered secret T") {
		t.Fatalf("Run = %v, output %q; want a refusal naming the secret", err, res.Output)
	}
	if strings.Contains(err.Error(), "v-123") {
		t.Errorf("the refusal holds the value: %v", err)
	}
}
