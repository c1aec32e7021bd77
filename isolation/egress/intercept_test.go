package egress

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

const (
	testSecret = "s3cr3t-value-6f1d"
	testHeader = "Bearer " + testSecret
)

// tlsOrigin is a loopback https server for one name, with a certificate from a CA of
// the test's own, that keeps the requests it saw.
type tlsOrigin struct {
	*httptest.Server
	name string
	port int
	mu   sync.Mutex
	seen []*http.Request
}

func (o *tlsOrigin) requests() []*http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*http.Request(nil), o.seen...)
}

func (o *tlsOrigin) origin() manifest.Origin { return origin("https", o.name, o.port) }

func (o *tlsOrigin) url(path string) string {
	return fmt.Sprintf("https://%s:%d%s", o.name, o.port, path)
}

// newTLSOrigin starts an https origin for name whose certificate root is in roots.
func newTLSOrigin(t *testing.T, name string, roots *x509.CertPool, h http.Handler) *tlsOrigin {
	t.Helper()
	o := &tlsOrigin{name: name}
	o.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.seen = append(o.seen, r)
		o.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	o.port = o.Listener.Addr().(*net.TCPAddr).Port
	ca, err := NewCallCA([]manifest.Origin{o.origin()}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.leaf(Target{Scheme: "https", Host: name, Port: o.port})
	if err != nil {
		t.Fatal(err)
	}
	roots.AddCert(ca.Certificate())
	o.TLS = &tls.Config{Certificates: []tls.Certificate{*leaf}}
	o.StartTLS()
	t.Cleanup(o.Close)
	return o
}

// echo answers with the Authorization header it got, in a header and in the body;
// /redirect sends the client to to.
func echo(to func() string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, to(), http.StatusFound)
			return
		}
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		fmt.Fprintf(w, "you sent %q", r.Header.Get("Authorization"))
	})
}

// interceptSetup is a proxy with one call whose Guard adds TOKEN to api.test only;
// other.test is granted too, without the secret.
type interceptSetup struct {
	api, other *tlsOrigin
	g          *Guard
	ca         *CallCA
	addr       string
	token      string
	release    func()
	clientTLS  *tls.Config // trusts the call's CA and the origins' own roots
}

func newInterceptSetup(t *testing.T) *interceptSetup {
	t.Helper()
	s := &interceptSetup{}
	originRoots := x509.NewCertPool()
	s.other = newTLSOrigin(t, "other.test", originRoots, echo(nil))
	s.api = newTLSOrigin(t, "api.test", originRoots, echo(func() string { return s.other.url("/landed") }))
	res := newResolver(map[string][][]string{"api.test": {{"127.0.0.1"}}, "other.test": {{"127.0.0.1"}}})
	secrets := []isolation.BrokeredSecret{{Name: "TOKEN", Origins: []manifest.Origin{s.api.origin()},
		Header: "Authorization", Value: testHeader, Secret: testSecret}}
	s.g = NewGuard([]manifest.Origin{s.api.origin(), s.other.origin()}, roomy,
		WithResolver(res), WithInternalNamesUnsafe(), WithTLSConfig(&tls.Config{RootCAs: originRoots}), WithSecrets(secrets))
	var err error
	s.ca, err = NewCallCA([]manifest.Origin{s.api.origin()}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var p *Proxy
	p, s.addr = startProxy(t)
	var bind func(*Guard)
	s.token, bind, s.release = p.Reserve(s.ca)
	bind(s.g)
	t.Cleanup(s.release)
	clientRoots := originRoots.Clone()
	clientRoots.AddCert(s.ca.Certificate())
	// Offering h2 first, as browsers and most clients do: the proxy speaks HTTP/1.1.
	s.clientTLS = &tls.Config{RootCAs: clientRoots, NextProtos: []string{"h2", "http/1.1"}}
	return s
}

// sawSecret reports whether any request o saw carried the secret anywhere.
func sawSecret(o *tlsOrigin) bool {
	for _, r := range o.requests() {
		if strings.Contains(fmt.Sprint(r.Header, r.URL, r.Host), testSecret) {
			return true
		}
	}
	return false
}

func TestProxyInterceptAddsSecret(t *testing.T) {
	s := newInterceptSetup(t)
	c := proxyClient(s.addr, s.token, s.clientTLS)
	resp, err := c.Get(s.api.url("/echo"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The origin got the header; the skill sees only the placeholder, in the body and
	// in the echoing header.
	if reqs := s.api.requests(); len(reqs) != 1 || reqs[0].Header.Get("Authorization") != testHeader {
		t.Fatalf("origin saw %d requests, Authorization %q", len(reqs), reqs[0].Header.Get("Authorization"))
	}
	ph := isolation.Placeholder("TOKEN")
	if strings.Contains(string(body), testSecret) || !strings.Contains(string(body), ph) {
		t.Errorf("body = %q, want the placeholder", body)
	}
	if h := resp.Header.Get("X-Echo"); strings.Contains(h, testSecret) || !strings.Contains(h, ph) {
		t.Errorf("echo header = %q, want the placeholder", h)
	}
	// The proxy answered with the call CA's certificate, over HTTP/1.1.
	if resp.TLS == nil || resp.TLS.NegotiatedProtocol != "http/1.1" ||
		resp.TLS.PeerCertificates[0].CheckSignatureFrom(s.ca.Certificate()) != nil {
		t.Errorf("intercepted TLS: %+v", resp.TLS)
	}
	recs := s.g.Records()
	if len(recs) != 1 || !recs[0].Allowed || recs[0].Method != "GET" || fmt.Sprint(recs[0].Secrets) != "[TOKEN]" ||
		recs[0].URL != s.api.url("/echo") {
		t.Errorf("records = %+v, want one GET carrying TOKEN", recs)
	}
	if strings.Contains(fmt.Sprint(recs), testSecret) {
		t.Error("a record holds the secret")
	}
}

// TestProxyNonBrokeredConnectTunnels: an origin that carries no secret is tunnelled
// as before: the skill talks TLS with the origin itself, which gets no secret.
func TestProxyNonBrokeredConnectTunnels(t *testing.T) {
	s := newInterceptSetup(t)
	c := proxyClient(s.addr, s.token, s.clientTLS)
	resp, err := c.Get(s.other.url("/plain"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS == nil || resp.TLS.PeerCertificates[0].CheckSignatureFrom(s.ca.Certificate()) == nil {
		t.Fatal("the proxy terminated TLS for an origin without a secret")
	}
	if !s.other.Certificate().Equal(resp.TLS.PeerCertificates[0]) {
		t.Error("the skill did not see the origin's own certificate")
	}
	if reqs := s.other.requests(); len(reqs) != 1 || reqs[0].Header.Get("Authorization") != "" || sawSecret(s.other) {
		t.Errorf("the origin without a secret saw %d requests, Authorization %q", len(reqs), reqs[0].Header.Get("Authorization"))
	}
	if recs := s.g.Records(); len(recs) != 1 || recs[0].Method != http.MethodConnect || len(recs[0].Secrets) != 0 {
		t.Errorf("records = %+v, want one CONNECT without secrets", recs)
	}
}

// TestProxyInterceptRedirectDropsSecret: the proxy hands a redirect back; the
// client's next request, to another origin, is tunnelled and carries nothing.
func TestProxyInterceptRedirectDropsSecret(t *testing.T) {
	s := newInterceptSetup(t)
	c := proxyClient(s.addr, s.token, s.clientTLS)
	resp, err := c.Get(s.api.url("/redirect"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.String() != s.other.url("/landed") || resp.StatusCode != 200 {
		t.Fatalf("ended at %s with %d", resp.Request.URL, resp.StatusCode)
	}
	if got := s.api.requests(); len(got) != 1 || got[0].Header.Get("Authorization") != testHeader {
		t.Error("the listed origin did not get the secret")
	}
	if len(s.other.requests()) != 1 || sawSecret(s.other) {
		t.Error("the redirect target got the secret")
	}
}

// connectRaw opens a CONNECT to target through the proxy and returns the connection
// once the proxy has said 200.
func connectRaw(t *testing.T, addr, token, target string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	auth := base64.StdEncoding.EncodeToString([]byte(ProxyUser + ":" + token))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\n\r\n", target, target, auth)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("CONNECT %s: %d %s", target, resp.StatusCode, b)
	}
	if br.Buffered() > 0 {
		t.Fatal("bytes after the CONNECT reply")
	}
	return c
}

// TestProxyInterceptRefusesServerNameMismatch: the proxy issues a certificate only
// for the host the CONNECT named (which the policy checked), never for the name the
// client puts in its TLS hello, even to a client that verifies nothing.
func TestProxyInterceptRefusesServerNameMismatch(t *testing.T) {
	s := newInterceptSetup(t)
	target := fmt.Sprintf("api.test:%d", s.api.port)
	for _, sni := range []string{"other.test", "evil.example", "api.test.evil", "x.api.test", ""} {
		c := connectRaw(t, s.addr, s.token, target)
		tc := tls.Client(c, &tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		c.SetDeadline(time.Now().Add(10 * time.Second))
		err := tc.Handshake()
		if err == nil {
			t.Errorf("SNI %q on a CONNECT to %s: handshake succeeded with %q", sni, target, tc.ConnectionState().PeerCertificates[0].DNSNames)
		}
	}
	if len(s.api.requests()) != 0 {
		t.Error("the origin was reached")
	}
	// The right name works on the same kind of connection.
	c := connectRaw(t, s.addr, s.token, target)
	tc := tls.Client(c, &tls.Config{ServerName: "api.test", RootCAs: s.clientTLS.RootCAs})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("SNI api.test: %v", err)
	}
}

// TestProxyInterceptRefusesOtherHost: a request inside an intercepted connection is
// sent to the CONNECT's origin only; one naming another host is refused (421) and
// nothing, secret or not, goes to that host.
func TestProxyInterceptRefusesOtherHost(t *testing.T) {
	s := newInterceptSetup(t)
	for _, line := range []string{
		fmt.Sprintf("GET /x HTTP/1.1\r\nHost: other.test:%d\r\n", s.other.port),
		fmt.Sprintf("GET https://other.test:%d/x HTTP/1.1\r\nHost: api.test:%d\r\n", s.other.port, s.api.port),
		fmt.Sprintf("GET http://api.test:%d/x HTTP/1.1\r\nHost: api.test:%d\r\n", s.api.port, s.api.port),
	} {
		c := connectRaw(t, s.addr, s.token, fmt.Sprintf("api.test:%d", s.api.port))
		tc := tls.Client(c, &tls.Config{ServerName: "api.test", RootCAs: s.clientTLS.RootCAs})
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(tc, line+"\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("%q: %d, want 421", line, resp.StatusCode)
		}
	}
	if len(s.other.requests())+len(s.api.requests()) != 0 {
		t.Error("a misdirected request went out")
	}
}

// TestProxyBrokeredNeedsCA: a CONNECT to an origin with a secret is refused when the
// call has no CA: a tunnel would pass the request by the Guard.
func TestProxyBrokeredNeedsCA(t *testing.T) {
	s := newInterceptSetup(t)
	p, addr := startProxy(t)
	token, release := p.Register(s.g)
	defer release()
	_, err := proxyClient(addr, token, s.clientTLS).Get(s.api.url("/echo"))
	if err == nil || !strings.Contains(err.Error(), "Bad Gateway") {
		t.Fatalf("CONNECT without a CA: %v, want 502", err)
	}
	if len(s.api.requests()) != 0 {
		t.Error("the origin was reached")
	}
}

// TestProxyReleaseDropsCA: once the call's registration ends, its CA issues nothing.
func TestProxyReleaseDropsCA(t *testing.T) {
	s := newInterceptSetup(t)
	c := proxyClient(s.addr, s.token, s.clientTLS)
	if code, _, err := fetch(c, s.api.url("/echo")); err != nil || code != 200 {
		t.Fatalf("before release: %d %v", code, err)
	}
	s.release()
	if _, err := s.ca.leaf(Target{Scheme: "https", Host: "api.test", Port: s.api.port}); !errors.Is(err, ErrCADropped) {
		t.Fatalf("leaf after release: %v, want ErrCADropped", err)
	}
	if _, err := c.Get(s.api.url("/echo")); err == nil || !strings.Contains(err.Error(), "Proxy Authentication Required") {
		t.Fatalf("after release: %v, want 407", err)
	}
}

// TestCallCAConstraints: the CA's certificate vouches for the brokered hosts only.
// Leaves signed with its own key (as if the key had leaked) for any other name or
// address do not verify.
func TestCallCAConstraints(t *testing.T) {
	cases := []struct {
		origins []manifest.Origin
		ok, bad []string // names or addresses of leaves
	}{
		{
			origins: []manifest.Origin{
				origin("https", "api.test", 443),
				{Scheme: "https", Host: "wild.test", Port: 443, Wildcard: true},
				origin("https", "10.1.2.3", 443),
				origin("http", "plain.test", 80), // not https: not issued for
			},
			ok:  []string{"api.test", "a.wild.test", "a.b.wild.test", "10.1.2.3"},
			bad: []string{"other.test", "x.api.test", "wild.test", "test", "plain.test", "10.1.2.4", "127.0.0.1", "::1", "api.test.evil"},
		},
		{ // names only: every address is excluded
			origins: []manifest.Origin{origin("https", "api.test", 8443)},
			ok:      []string{"api.test"},
			bad:     []string{"127.0.0.1", "::1", "10.1.2.3", "www.api.test", "example.com"},
		},
		{ // an address only: every name is excluded
			origins: []manifest.Origin{origin("https", "10.1.2.3", 443)},
			ok:      []string{"10.1.2.3"},
			bad:     []string{"api.test", "localhost", "10.1.2.4", "::1"},
		},
		{ // an exact name under a wildcard keeps the wildcard's subdomains
			origins: []manifest.Origin{origin("https", "a.wild.test", 443), {Scheme: "https", Host: "wild.test", Port: 443, Wildcard: true}},
			ok:      []string{"a.wild.test", "b.a.wild.test"},
			bad:     []string{"wild.test", "evil.test"},
		},
	}
	for _, tc := range cases {
		ca, err := NewCallCA(tc.origins, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if !ca.cert.PermittedDNSDomainsCritical || !ca.cert.IsCA || ca.cert.MaxPathLen != 0 || !ca.cert.MaxPathLenZero {
			t.Errorf("CA certificate: critical %v, CA %v, path length %d", ca.cert.PermittedDNSDomainsCritical, ca.cert.IsCA, ca.cert.MaxPathLen)
		}
		roots := x509.NewCertPool()
		roots.AddCert(ca.Certificate())
		for _, name := range append(append([]string(nil), tc.ok...), tc.bad...) {
			leaf := signLeaf(t, ca, name)
			_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			want := contains(tc.ok, name)
			if (err == nil) != want {
				t.Errorf("CA for %v: leaf for %q verifies: %v, want %v", tc.origins, name, err, want)
			}
		}
		// And the CA's own issuing refuses what it does not cover.
		if _, err := ca.leaf(Target{Scheme: "https", Host: "other.test", Port: 443}); err == nil {
			t.Error("the CA issued a leaf for a host it does not cover")
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// signLeaf signs a server certificate for name with the CA's key directly, past
// every check of leaf.
func signLeaf(t *testing.T, ca *CallCA, name string) *x509.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Minute),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCallCAPEMHoldsNoKey: what goes into the container is a certificate only.
func TestCallCAPEMHoldsNoKey(t *testing.T) {
	ca, err := NewCallCA([]manifest.Origin{origin("https", "api.test", 443)}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	p := string(ca.CertPEM())
	if strings.Contains(p, "PRIVATE") || strings.Count(p, "-----BEGIN ") != 1 || !strings.HasPrefix(p, "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("CertPEM = %q", p)
	}
	if ca.cert.NotAfter.After(time.Now().Add(2 * time.Minute)) {
		t.Errorf("valid until %s, asked for a minute", ca.cert.NotAfter)
	}
}
