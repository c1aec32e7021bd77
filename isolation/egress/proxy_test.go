package egress

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/manifest"
)

// startProxy serves a Proxy on loopback and returns it with its address.
func startProxy(t *testing.T, opts ...ProxyOption) (*Proxy, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := NewProxy(append([]ProxyOption{WithIdleTimeout(5 * time.Second)}, opts...)...)
	errc := make(chan error, 1)
	go func() { errc <- p.Serve(l) }()
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := <-errc; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return p, l.Addr().String()
}

// proxyClient is a Go client that uses the proxy with token, as a container skill
// configured with HTTP_PROXY=http://skillbox:TOKEN@host:port does.
func proxyClient(addr, token string, tc *tls.Config) *http.Client {
	pu := &url.URL{Scheme: "http", Host: addr, User: url.UserPassword(ProxyUser, token)}
	return &http.Client{
		Transport: &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: tc, DisableKeepAlives: true},
		Timeout:   10 * time.Second,
	}
}

func fetch(c *http.Client, u string) (int, string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestProxyPlainHTTP(t *testing.T) {
	srv := newCountingServer(t, hello("through"), false)
	other := newCountingServer(t, hello("leak"), false)
	p, addr := startProxy(t)
	g := NewGuard([]manifest.Origin{origin("http", "127.0.0.1", srv.port)}, roomy)
	token, release := p.Register(g)
	defer release()
	c := proxyClient(addr, token, nil)

	if code, body, err := fetch(c, srv.URL+"/a"); err != nil || code != 200 || body != "through" {
		t.Fatalf("granted: %d %q %v", code, body, err)
	}
	code, body, err := fetch(c, other.URL+"/b")
	if err != nil || code != http.StatusForbidden || !strings.Contains(body, "not granted") {
		t.Fatalf("ungranted: %d %q %v", code, body, err)
	}
	if other.conns.Load() != 0 {
		t.Fatal("ungranted server was reached")
	}
	if made, denied := g.Counts(); made != 1 || denied != 1 {
		t.Fatalf("counts %d %d", made, denied)
	}
}

func TestProxyToken(t *testing.T) {
	srv := newCountingServer(t, hello("x"), false)
	p, addr := startProxy(t)
	g := NewGuard([]manifest.Origin{origin("http", "127.0.0.1", srv.port)}, roomy)
	token, release := p.Register(g)

	for name, c := range map[string]*http.Client{
		"wrong token": proxyClient(addr, token+"x", nil),
		"no token": {Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: addr}),
			DisableKeepAlives: true}},
	} {
		code, _, err := fetch(c, srv.URL)
		if err != nil || code != http.StatusProxyAuthRequired {
			t.Fatalf("%s: %d %v", name, code, err)
		}
	}
	release()
	if code, _, _ := fetch(proxyClient(addr, token, nil), srv.URL); code != http.StatusProxyAuthRequired {
		t.Fatalf("released token: %d", code)
	}
	if srv.conns.Load() != 0 || len(g.Records()) != 0 {
		t.Fatal("an unauthenticated request went out or was recorded")
	}
}

func TestProxyConnect(t *testing.T) {
	srv := newCountingServer(t, hello("secure"), true)
	tc := srv.Client().Transport.(*http.Transport).TLSClientConfig
	res := newResolver(map[string][][]string{
		"example.com":   {{"127.0.0.1"}},
		"a.example.com": {{"127.0.0.1"}},
	})
	p, addr := startProxy(t)
	g := NewGuard([]manifest.Origin{
		origin("https", "example.com", srv.port),
		{Scheme: "https", Host: "example.com", Port: srv.port, Wildcard: true},
	}, roomy, WithResolver(res), WithInternalNamesUnsafe())
	token, release := p.Register(g)
	defer release()
	c := proxyClient(addr, token, tc)

	code, body, err := fetch(c, fmt.Sprintf("https://example.com:%d/", srv.port))
	if err != nil || code != 200 || body != "secure" {
		t.Fatalf("granted CONNECT: %d %q %v", code, body, err)
	}
	conns := srv.conns.Load()
	for _, u := range []string{
		fmt.Sprintf("https://example.com:%d/", srv.port+1), // port not granted
		fmt.Sprintf("https://127.0.0.1:%d/", srv.port),     // host not granted
		fmt.Sprintf("https://a.example.com:%d/", srv.port), // wildcard to loopback
	} {
		_, _, err := fetch(c, u)
		if err == nil || !strings.Contains(err.Error(), "Forbidden") {
			t.Fatalf("%s: got %v, want a 403 from the proxy", u, err)
		}
	}
	if srv.conns.Load() != conns {
		t.Fatal("a denied CONNECT reached the server")
	}
	// A tunnel's byte count is written when the tunnel closes, which can come just
	// after the client has read its response: wait for it.
	recs := g.Records()
	for deadline := time.Now().Add(5 * time.Second); len(recs) > 0 && recs[0].Bytes == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		recs = g.Records()
	}
	if len(recs) != 4 || recs[0].Method != "CONNECT" || !recs[0].Allowed || recs[0].Bytes == 0 || recs[0].Status != 200 {
		t.Fatalf("records %+v", recs)
	}
	if !strings.Contains(recs[3].Reason, "wildcard") {
		t.Fatalf("wildcard record %+v", recs[3])
	}
}

func TestProxyRequestBudget(t *testing.T) {
	plain := newCountingServer(t, hello("p"), false)
	secure := newCountingServer(t, hello("s"), true)
	tc := secure.Client().Transport.(*http.Transport).TLSClientConfig
	p, addr := startProxy(t)
	g := NewGuard([]manifest.Origin{
		origin("http", "127.0.0.1", plain.port),
		origin("https", "127.0.0.1", secure.port),
	}, Limits{MaxRequests: 2, MaxResponseBytes: 1 << 20})
	token, release := p.Register(g)
	defer release()
	c := proxyClient(addr, token, tc)
	if code, _, err := fetch(c, plain.URL); err != nil || code != 200 {
		t.Fatalf("first: %d %v", code, err)
	}
	if code, _, err := fetch(c, secure.URL); err != nil || code != 200 {
		t.Fatalf("second (CONNECT): %d %v", code, err)
	}
	code, body, err := fetch(c, plain.URL)
	if err != nil || code != http.StatusTooManyRequests || !strings.Contains(body, "request limit") {
		t.Fatalf("third: %d %q %v", code, body, err)
	}
	if _, _, err := fetch(c, secure.URL); err == nil {
		t.Fatal("fourth (CONNECT) went through")
	}
	if made, denied := g.Counts(); made != 2 || denied != 2 {
		t.Fatalf("counts %d %d", made, denied)
	}
}

func TestProxyByteCaps(t *testing.T) {
	big := strings.Repeat("z", 64<<10)
	plain := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sized" {
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
		}
		io.WriteString(w, big)
	}), false)
	secure := newCountingServer(t, hello(big), true)
	tc := secure.Client().Transport.(*http.Transport).TLSClientConfig
	p, addr := startProxy(t)
	g := NewGuard([]manifest.Origin{
		origin("http", "127.0.0.1", plain.port),
		origin("https", "127.0.0.1", secure.port),
	}, Limits{MaxRequests: 5, MaxResponseBytes: 8 << 10})
	token, release := p.Register(g)
	defer release()
	c := proxyClient(addr, token, tc)

	code, body, err := fetch(c, plain.URL+"/sized")
	if err != nil || code != http.StatusBadGateway || !strings.Contains(body, "limit") {
		t.Fatalf("plain over cap, sized: %d %.80q %v", code, body, err)
	}
	// Chunked: the status is already out when the cap is hit, so the body is cut.
	if code, body, err = fetch(c, plain.URL+"/chunked"); err == nil || len(body) > 8<<10 {
		t.Fatalf("plain over cap, chunked: %d, %d bytes, %v", code, len(body), err)
	}
	if _, body, err := fetch(c, secure.URL); err == nil {
		t.Fatalf("tunnel over cap read %d bytes without error", len(body))
	}
	last := g.Records()[len(g.Records())-1]
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(last.Reason, "cut") && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond) // the record is finished as the tunnel closes
		recs := g.Records()
		last = recs[len(recs)-1]
	}
	if last.Method != "CONNECT" || last.Bytes != 8<<10 || !strings.Contains(last.Reason, "cut") {
		t.Fatalf("tunnel record %+v", last)
	}
}

func TestProxyRedirectIsRechecked(t *testing.T) {
	ungranted := newCountingServer(t, hello("leak"), false)
	start := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, ungranted.URL+"/x", http.StatusFound)
	}), false)
	p, addr := startProxy(t)
	g := NewGuard([]manifest.Origin{origin("http", "127.0.0.1", start.port)}, roomy)
	token, release := p.Register(g)
	defer release()
	code, _, err := fetch(proxyClient(addr, token, nil), start.URL)
	if err != nil || code != http.StatusForbidden {
		t.Fatalf("got %d %v", code, err)
	}
	if ungranted.conns.Load() != 0 {
		t.Fatal("redirect target reached")
	}
	recs := g.Records()
	if len(recs) != 2 || recs[0].Status != 302 || recs[1].Allowed {
		t.Fatalf("records %+v", recs)
	}
}

func TestProxyReleaseEndsTunnel(t *testing.T) {
	// The upstream accepts and then never answers: only release can end the tunnel.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	p, addr := startProxy(t)
	g := NewGuard([]manifest.Origin{origin("https", "127.0.0.1", port)}, roomy)
	token, release := p.Register(g)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nProxy-Authorization: Basic %s\r\n\r\n",
		port, port, basic(ProxyUser, token))
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
		t.Fatalf("CONNECT answer %q %v", buf[:n], err)
	}
	release()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(buf); err != io.EOF {
		t.Fatalf("tunnel still open after release: %v", err)
	}
}

// TestProxyCloseEndsOpenTunnel: Close ends a tunnel that is still open and returns
// (it used to close the client's connection under the lock that connection's Close
// takes, and hung).
func TestProxyCloseEndsOpenTunnel(t *testing.T) {
	srv := newCountingServer(t, hello("x"), true)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := NewProxy()
	errc := make(chan error, 1)
	go func() { errc <- p.Serve(l) }()
	g := NewGuard([]manifest.Origin{origin("https", "127.0.0.1", srv.port)}, roomy)
	token, release := p.Register(g)
	defer release()
	c := connectRaw(t, l.Addr().String(), token, fmt.Sprintf("127.0.0.1:%d", srv.port))
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tls.Client(c, &tls.Config{InsecureSkipVerify: true}).Handshake(); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	var ne net.Error
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("tunnel after Close: %v, want it closed", err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with a tunnel open")
	}
	if err := <-errc; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

func basic(user, pass string) string {
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

func TestProxyStripsHopByHop(t *testing.T) {
	var got http.Header
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("Proxy-Authenticate", "Basic")
		w.Header().Set("X-Up", "1")
	}), false)
	p, addr := startProxy(t)
	g := NewGuard([]manifest.Origin{origin("http", "127.0.0.1", srv.port)}, roomy)
	token, release := p.Register(g)
	defer release()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "1")
	resp, err := proxyClient(addr, token, nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got.Get("Proxy-Authorization") != "" || got.Get("X-Hop") != "" {
		t.Fatalf("forwarded %v", got)
	}
	if resp.Header.Get("Proxy-Authenticate") != "" || resp.Header.Get("X-Up") != "1" {
		t.Fatalf("returned %v", resp.Header)
	}
}

func TestProxyBoundsHeaders(t *testing.T) {
	p, addr := startProxy(t)
	_ = p
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 64<<10))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, _ := conn.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 431") {
		t.Fatalf("got %q", buf[:n])
	}
}

func ExampleProxy() {
	upstream := httptest.NewServer(hello("from upstream"))
	defer upstream.Close()
	port := upstream.Listener.Addr().(*net.TCPAddr).Port

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	p := NewProxy()
	go p.Serve(l)
	defer p.Close()

	// One Guard per call; the container gets HTTP_PROXY=http://skillbox:TOKEN@host:port.
	g := NewGuard([]manifest.Origin{{Scheme: "http", Host: "127.0.0.1", Port: port}},
		Limits{MaxRequests: 5, MaxResponseBytes: 1 << 20})
	token, release := p.Register(g)
	defer release()

	c := proxyClient(l.Addr().String(), token, nil)
	_, body, _ := fetch(c, upstream.URL)
	fmt.Println(body)
	code, body, _ := fetch(c, "http://127.0.0.1:1/")
	fmt.Print(code, " ", body)
	// Output:
	// from upstream
	// 403 egress denied: http://127.0.0.1:1/: origin http://127.0.0.1:1 is not granted
}
