package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// testResolver answers from a table; each name may have a sequence of answers, the
// last one repeating. Names not in the table fail: no outside lookup ever happens.
type testResolver struct {
	mu      sync.Mutex
	answers map[string][][]string
	calls   map[string]int
}

func newResolver(m map[string][][]string) *testResolver {
	return &testResolver{answers: m, calls: map[string]int{}}
}

func (r *testResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seq, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	i := min(r.calls[host], len(seq)-1)
	r.calls[host]++
	var out []net.IPAddr
	for _, s := range seq[i] {
		out = append(out, net.IPAddr{IP: net.ParseIP(s)})
	}
	return out, nil
}

func (r *testResolver) count(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[host]
}

// countingServer is an httptest server that counts every connection it accepts, so
// a test can assert that a denied request never reached it.
type countingServer struct {
	*httptest.Server
	conns atomic.Int64
	port  int
}

func newCountingServer(t testing.TB, h http.Handler, tlsOn bool) *countingServer {
	t.Helper()
	cs := &countingServer{}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			cs.conns.Add(1)
		}
	}
	if tlsOn {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	cs.Server = srv
	cs.port = srv.Listener.Addr().(*net.TCPAddr).Port
	return cs
}

func hello(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	})
}

func get(t *testing.T, g *Guard, rawURL string) (string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := g.Do(context.Background(), req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func origin(scheme, host string, port int) manifest.Origin {
	return manifest.Origin{Scheme: scheme, Host: host, Port: port}
}

var roomy = Limits{MaxRequests: 10, MaxResponseBytes: 1 << 20}

func TestGuardGrantedAllowed(t *testing.T) {
	srv := newCountingServer(t, hello("hi"), false)
	g := NewGuard([]manifest.Origin{origin("http", "127.0.0.1", srv.port)}, roomy)
	body, err := get(t, g, srv.URL+"/x?q=1")
	if err != nil || body != "hi" {
		t.Fatalf("got %q, %v", body, err)
	}
	recs := g.Records()
	if len(recs) != 1 || !recs[0].Allowed || recs[0].Status != 200 || recs[0].Bytes != 2 || recs[0].Method != "GET" {
		t.Fatalf("records %+v", recs)
	}
	if made, denied := g.Counts(); made != 1 || denied != 0 {
		t.Fatalf("counts %d %d", made, denied)
	}
}

func TestGuardUngrantedNeverReachesServer(t *testing.T) {
	srv := newCountingServer(t, hello("secret"), false)
	other := newCountingServer(t, hello("other"), false)
	res := newResolver(map[string][][]string{"granted.test": {{"127.0.0.1"}}, "other.test": {{"127.0.0.1"}}})
	g := NewGuard([]manifest.Origin{
		origin("http", "granted.test", other.port), // granted name, other port
		origin("https", "127.0.0.1", srv.port),     // https only
	}, roomy, WithResolver(res))
	for _, u := range []string{
		fmt.Sprintf("http://127.0.0.1:%d/", srv.port),    // scheme not granted
		fmt.Sprintf("http://granted.test:%d/", srv.port), // port not granted
		fmt.Sprintf("http://other.test:%d/", other.port), // host not granted
		fmt.Sprintf("http://localhost:%d/", srv.port),
		fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/", srv.port),
		fmt.Sprintf("http://user:pw@granted.test:%d/", other.port),
	} {
		_, err := get(t, g, u)
		var de *DeniedError
		if !errors.As(err, &de) {
			t.Fatalf("%s: got %v, want *DeniedError", u, err)
		}
	}
	if n := srv.conns.Load() + other.conns.Load(); n != 0 {
		t.Fatalf("servers saw %d connections", n)
	}
	if res.count("other.test") != 0 {
		t.Fatal("an ungranted name was resolved")
	}
	made, denied := g.Counts()
	if made != 0 || denied != 6 {
		t.Fatalf("counts %d %d", made, denied)
	}
	for _, r := range g.Records() {
		if r.Allowed || r.Reason == "" || strings.Contains(r.URL, "pw") {
			t.Fatalf("bad record %+v", r)
		}
	}
}

func TestGuardNameToLoopback(t *testing.T) {
	srv := newCountingServer(t, hello("inside"), false)
	res := newResolver(map[string][][]string{
		"svc.internal.test": {{"127.0.0.1"}},
		"a.internal.test":   {{"127.0.0.1"}},
		"meta.test":         {{"169.254.169.254"}},
	})
	origins := []manifest.Origin{
		origin("http", "svc.internal.test", srv.port), // exact: the operator named it
		{Scheme: "http", Host: "internal.test", Port: srv.port, Wildcard: true},
		origin("http", "meta.test", srv.port),
	}
	// By default a granted name that resolves to loopback is refused (DNS rebinding):
	// nothing is dialled.
	strict := NewGuard(origins, roomy, WithResolver(res))
	_, err := get(t, strict, fmt.Sprintf("http://svc.internal.test:%d/", srv.port))
	var de *DeniedError
	if !errors.As(err, &de) || !strings.Contains(de.Reason, "resolves to 127.0.0.1") {
		t.Fatalf("granted name to loopback, default policy: %v", err)
	}
	if srv.conns.Load() != 0 {
		t.Fatal("a refused address was dialled")
	}

	// An operator who opts in to internal names reaches them, but not by wildcard
	// and never link-local.
	g := NewGuard(origins, roomy, WithResolver(res), WithInternalNamesUnsafe())
	if body, err := get(t, g, fmt.Sprintf("http://svc.internal.test:%d/", srv.port)); err != nil || body != "inside" {
		t.Fatalf("exact name to loopback: %q %v", body, err)
	}
	before := srv.conns.Load()
	_, err = get(t, g, fmt.Sprintf("http://a.internal.test:%d/", srv.port))
	if !errors.As(err, &de) || !strings.Contains(de.Reason, "wildcard") {
		t.Fatalf("wildcard name to loopback: %v", err)
	}
	_, err = get(t, g, fmt.Sprintf("http://meta.test:%d/", srv.port))
	if !errors.As(err, &de) || !strings.Contains(de.Reason, "link-local") {
		t.Fatalf("name to metadata address: %v", err)
	}
	if srv.conns.Load() != before {
		t.Fatal("a refused address was dialled")
	}
	if made, denied := g.Counts(); made != 1 || denied != 2 {
		t.Fatalf("counts %d %d", made, denied)
	}
}

// TestGuardRebinding: the name's answer changes between requests (and within one
// answer, a bad address comes first); the address dialled is the one checked.
func TestGuardRebinding(t *testing.T) {
	srv := newCountingServer(t, hello("ok"), false)
	res := newResolver(map[string][][]string{
		"rebind.test": {{"127.0.0.1"}, {"169.254.169.254"}},
		"mixed.test":  {{"169.254.169.254", "127.0.0.1"}},
	})
	g := NewGuard([]manifest.Origin{
		origin("http", "rebind.test", srv.port),
		origin("http", "mixed.test", srv.port),
	}, roomy, WithResolver(res), WithInternalNamesUnsafe())
	u := fmt.Sprintf("http://rebind.test:%d/", srv.port)
	if _, err := get(t, g, u); err != nil {
		t.Fatalf("first answer: %v", err)
	}
	_, err := get(t, g, u)
	var de *DeniedError
	if !errors.As(err, &de) || !strings.Contains(de.Reason, "169.254.169.254") {
		t.Fatalf("rebound answer: %v", err)
	}
	if res.count("rebind.test") != 2 {
		t.Fatalf("resolved %d times, want once per dial", res.count("rebind.test"))
	}
	if body, err := get(t, g, fmt.Sprintf("http://mixed.test:%d/", srv.port)); err != nil || body != "ok" {
		t.Fatalf("mixed answer: %q %v", body, err)
	}
	if srv.conns.Load() != 2 {
		t.Fatalf("server saw %d connections, want 2", srv.conns.Load())
	}
}

func TestGuardRedirects(t *testing.T) {
	ungranted := newCountingServer(t, hello("leak"), false)
	var final *countingServer
	final = newCountingServer(t, hello("done"), false)
	mux := http.NewServeMux()
	mux.HandleFunc("/out", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, ungranted.URL+"/steal", http.StatusFound)
	})
	mux.HandleFunc("/in", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, final.URL+"/end", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	start := newCountingServer(t, mux, false)
	origins := []manifest.Origin{origin("http", "127.0.0.1", start.port), origin("http", "127.0.0.1", final.port)}

	g := NewGuard(origins, roomy)
	_, err := get(t, g, start.URL+"/out")
	var de *DeniedError
	if !errors.As(err, &de) || !strings.Contains(de.URL, "/steal") {
		t.Fatalf("redirect to ungranted: %v", err)
	}
	if ungranted.conns.Load() != 0 {
		t.Fatal("the ungranted redirect target was reached")
	}
	recs := g.Records()
	if len(recs) != 2 || !recs[0].Allowed || recs[0].Status != 302 || recs[1].Allowed {
		t.Fatalf("records %+v", recs)
	}

	g = NewGuard(origins, roomy)
	if body, err := get(t, g, start.URL+"/in"); err != nil || body != "done" {
		t.Fatalf("granted redirect: %q %v", body, err)
	}
	if made, _ := g.Counts(); made != 2 {
		t.Fatalf("made %d, want 2 (each hop counts)", made)
	}

	g = NewGuard(origins, Limits{MaxRequests: 100, MaxResponseBytes: 100})
	_, err = get(t, g, start.URL+"/loop")
	if !errors.As(err, &de) || !strings.Contains(de.Reason, "redirects") {
		t.Fatalf("redirect loop: %v", err)
	}
	if made, _ := g.Counts(); made != MaxRedirects+1 {
		t.Fatalf("made %d, want %d", made, MaxRedirects+1)
	}
}

func TestGuardRequestBudget(t *testing.T) {
	srv := newCountingServer(t, hello("x"), false)
	g := NewGuard([]manifest.Origin{origin("http", "127.0.0.1", srv.port)}, Limits{MaxRequests: 2, MaxResponseBytes: 10})
	for i := 0; i < 2; i++ {
		if _, err := get(t, g, srv.URL); err != nil {
			t.Fatal(err)
		}
	}
	_, err := get(t, g, srv.URL)
	if !IsBudget(err) || isolation.ReasonOf(err) != isolation.ReasonRequests {
		t.Fatalf("third request: %v", err)
	}
	if srv.conns.Load() != 2 {
		t.Fatalf("server saw %d connections", srv.conns.Load())
	}
	if made, denied := g.Counts(); made != 2 || denied != 1 {
		t.Fatalf("counts %d %d", made, denied)
	}

	// A zero budget means no request at all.
	g = NewGuard([]manifest.Origin{origin("http", "127.0.0.1", srv.port)}, Limits{})
	if _, err := get(t, g, srv.URL); !IsBudget(err) {
		t.Fatalf("zero budget: %v", err)
	}
}

func TestGuardResponseCap(t *testing.T) {
	srv := newCountingServer(t, hello(strings.Repeat("a", 100)), false)
	o := []manifest.Origin{origin("http", "127.0.0.1", srv.port)}

	g := NewGuard(o, Limits{MaxRequests: 5, MaxResponseBytes: 100})
	if body, err := get(t, g, srv.URL); err != nil || len(body) != 100 {
		t.Fatalf("exact size: %d %v", len(body), err)
	}

	g = NewGuard(o, Limits{MaxRequests: 5, MaxResponseBytes: 10})
	body, err := get(t, g, srv.URL)
	var tl *ResponseTooLargeError
	if !errors.As(err, &tl) || tl.Limit != 10 || len(body) != 10 {
		t.Fatalf("over cap: %d bytes, %v", len(body), err)
	}
	if r := g.Records()[0]; r.Bytes != 10 || !strings.Contains(r.Reason, "limit") {
		t.Fatalf("record %+v", r)
	}
}

func TestGuardHeaders(t *testing.T) {
	var got http.Header
	var host string
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, host = r.Header.Clone(), r.Host
	}), false)
	g := NewGuard([]manifest.Origin{origin("http", "127.0.0.1", srv.port)}, roomy)
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Host = "admin.internal"
	req.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
	req.Header.Set("Connection", "X-Secret")
	req.Header.Set("X-Secret", "1")
	req.Header.Set("X-Keep", "1")
	resp, err := g.Do(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got.Get("Proxy-Authorization") != "" || got.Get("X-Secret") != "" || got.Get("X-Keep") != "1" {
		t.Fatalf("headers %v", got)
	}
	if host != "127.0.0.1:"+strconv.Itoa(srv.port) {
		t.Fatalf("Host %q", host)
	}
}

func TestGuardHTTPSByName(t *testing.T) {
	srv := newCountingServer(t, hello("tls"), true)
	res := newResolver(map[string][][]string{"example.com": {{"127.0.0.1"}}})
	tc := srv.Client().Transport.(*http.Transport).TLSClientConfig
	g := NewGuard([]manifest.Origin{origin("https", "example.com", srv.port)}, roomy, WithResolver(res), WithTLSConfig(tc), WithInternalNamesUnsafe())
	if body, err := get(t, g, fmt.Sprintf("https://example.com:%d/", srv.port)); err != nil || body != "tls" {
		t.Fatalf("%q %v", body, err)
	}
}

func TestGuardCanceled(t *testing.T) {
	srv := newCountingServer(t, hello("x"), false)
	g := NewGuard([]manifest.Origin{origin("http", "127.0.0.1", srv.port)}, roomy)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	if _, err := g.Do(ctx, req); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if srv.conns.Load() != 0 {
		t.Fatal("canceled request reached the server")
	}
}

func ExampleGuard() {
	srv := httptest.NewServer(hello("hello"))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	port, _ := strconv.Atoi(u.Port())
	g := NewGuard([]manifest.Origin{{Scheme: "http", Host: "127.0.0.1", Port: port}},
		Limits{MaxRequests: 5, MaxResponseBytes: 1 << 20})

	req, _ := http.NewRequest("GET", srv.URL, nil)
	resp, err := g.Do(context.Background(), req)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(string(b))
	}
	req, _ = http.NewRequest("GET", "http://127.0.0.1:1/", nil)
	_, err = g.Do(context.Background(), req)
	fmt.Println(err)
	// Output:
	// hello
	// egress denied: http://127.0.0.1:1/: origin http://127.0.0.1:1 is not granted
}

func TestGuardIgnoresProxyEnv(t *testing.T) {
	srv := newCountingServer(t, hello("direct"), false)
	trap := newCountingServer(t, hello("proxied"), false)
	t.Setenv("HTTP_PROXY", trap.URL)
	t.Setenv("http_proxy", trap.URL)
	t.Setenv("NO_PROXY", "")
	g := NewGuard([]manifest.Origin{origin("http", "127.0.0.1", srv.port)}, roomy)
	if body, err := get(t, g, srv.URL); err != nil || body != "direct" {
		t.Fatalf("%q %v", body, err)
	}
	if trap.conns.Load() != 0 {
		t.Fatal("the environment's proxy was used")
	}
}

func TestGuardRedirectMethodsAndCredentials(t *testing.T) {
	type seen struct{ method, body, auth string }
	var mu sync.Mutex
	var got []seen
	record := func(r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, string(b), r.Header.Get("Authorization")})
		mu.Unlock()
	}
	second := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { record(r) }), false)
	first := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(r)
		switch r.URL.Path {
		case "/307":
			http.Redirect(w, r, "/end", http.StatusTemporaryRedirect)
		case "/303":
			http.Redirect(w, r, "/end", http.StatusSeeOther)
		case "/away":
			http.Redirect(w, r, second.URL+"/end", http.StatusTemporaryRedirect)
		}
	}), false)
	g := NewGuard([]manifest.Origin{origin("http", "127.0.0.1", first.port), origin("http", "127.0.0.1", second.port)},
		Limits{MaxRequests: 20, MaxResponseBytes: 1 << 10})
	post := func(path string) {
		t.Helper()
		req, _ := http.NewRequest("POST", first.URL+path, strings.NewReader("payload"))
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := g.Do(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	post("/307")
	post("/303")
	post("/away")
	want := []seen{
		{"POST", "payload", "Bearer s3cret"}, {"POST", "payload", "Bearer s3cret"}, // 307 replays
		{"POST", "payload", "Bearer s3cret"}, {"GET", "", "Bearer s3cret"}, // 303 becomes GET
		{"POST", "payload", "Bearer s3cret"}, {"POST", "payload", ""}, // other origin: no credentials
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
}

func TestGuardConcurrent(t *testing.T) {
	srv := newCountingServer(t, hello("c"), false)
	g := NewGuard([]manifest.Origin{origin("http", "127.0.0.1", srv.port)}, Limits{MaxRequests: 5, MaxResponseBytes: 10})
	var wg sync.WaitGroup
	var ok, budget atomic.Int64
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := get(t, g, srv.URL)
			switch {
			case err == nil:
				ok.Add(1)
			case IsBudget(err):
				budget.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 5 || budget.Load() != 7 || srv.conns.Load() != 5 {
		t.Fatalf("ok %d budget %d conns %d", ok.Load(), budget.Load(), srv.conns.Load())
	}
	// Five allowed records and the first refusal over the budget; the other six
	// refusals are counted only.
	if made, denied := g.Counts(); made != 5 || denied != 7 || len(g.Records()) != 6 {
		t.Fatalf("counts %d %d records %d", made, denied, len(g.Records()))
	}
}
