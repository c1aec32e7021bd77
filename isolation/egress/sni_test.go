package egress

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// frontEnd is a loopback https server that answers for any name, as a CDN or shared
// load balancer does, and counts the connections it accepted, those that ended, and
// the bytes it read from them.
type frontEnd struct {
	*httptest.Server
	port                  int
	accepted, ended, read atomic.Int64
}

func newFrontEnd(t *testing.T) *frontEnd {
	t.Helper()
	f := &frontEnd{}
	f.Server = httptest.NewUnstartedServer(hello("front"))
	f.Listener = &frontListener{Listener: f.Listener, f: f}
	f.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	f.StartTLS()                                   // TLS over the counting listener: it sees the raw bytes
	t.Cleanup(f.Close)
	f.port = f.Listener.Addr().(*net.TCPAddr).Port
	return f
}

// quiet waits until the front end has accepted conns connections and every one has
// ended, then reports how many bytes it read from them.
func (f *frontEnd) quiet(t *testing.T, conns int64) int64 {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); f.accepted.Load() < conns || f.ended.Load() < f.accepted.Load(); {
		if time.Now().After(deadline) {
			t.Fatalf("the front end accepted %d connections, %d not ended; want %d", f.accepted.Load(),
				f.accepted.Load()-f.ended.Load(), conns)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return f.read.Load()
}

type frontListener struct {
	net.Listener
	f *frontEnd
}

func (l *frontListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.f.accepted.Add(1)
		c = &frontConn{Conn: c, f: l.f}
	}
	return c, err
}

type frontConn struct {
	net.Conn
	f     *frontEnd
	ended atomic.Bool
}

// A connection has ended when a read fails (the proxy closed it) or the server
// closes it.
func (c *frontConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.f.read.Add(int64(n))
	if err != nil {
		c.end()
	}
	return n, err
}

func (c *frontConn) Close() error {
	err := c.Conn.Close()
	c.end()
	return err
}

func (c *frontConn) end() {
	if !c.ended.Swap(true) {
		c.f.ended.Add(1)
	}
}

// sniSetup is a call granted https://example.com:PORT and https://127.0.0.1:PORT, both
// the front end (example.com resolves to loopback), through a proxy.
type sniSetup struct {
	front *frontEnd
	g     *Guard
	addr  string
	token string
	tls   *tls.Config // trusts the front end's certificate
}

func newSNISetup(t *testing.T, opts ...ProxyOption) *sniSetup {
	t.Helper()
	f := newFrontEnd(t)
	res := newResolver(map[string][][]string{"example.com": {{"127.0.0.1"}}})
	g := NewGuard([]manifest.Origin{origin("https", "example.com", f.port), origin("https", "127.0.0.1", f.port)},
		roomy, WithResolver(res), WithInternalNamesUnsafe())
	p, addr := startProxy(t, opts...)
	token, release := p.Register(g)
	t.Cleanup(release)
	return &sniSetup{front: f, g: g, addr: addr, token: token, tls: f.Client().Transport.(*http.Transport).TLSClientConfig}
}

// handshake opens a CONNECT to target and tries a TLS handshake naming sni (none when
// empty) that accepts any certificate, as a skill trying to reach another site would.
func (s *sniSetup) handshake(t *testing.T, target, sni string) error {
	t.Helper()
	c := connectRaw(t, s.addr, s.token, target)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return tls.Client(c, &tls.Config{ServerName: sni, InsecureSkipVerify: true}).Handshake()
}

// wantDenied checks that the call's last record is a refused CONNECT whose reason
// holds each of words, and that the front end, once its conns connections have ended
// (the proxy dials before its 200), has read no more than before.
func (s *sniSetup) wantDenied(t *testing.T, conns, before int64, words ...string) {
	t.Helper()
	if n := s.front.quiet(t, conns) - before; n != 0 {
		t.Errorf("the front end read %d bytes of a refused tunnel", n)
	}
	recs := s.g.Records()
	last := recs[len(recs)-1]
	if last.Method != http.MethodConnect || last.Allowed || last.Denial != isolation.DenialNotGranted || last.Status != 0 {
		t.Errorf("record %+v, want a refused CONNECT", last)
	}
	for _, w := range words {
		if !strings.Contains(last.Reason, w) {
			t.Errorf("reason %q does not say %q", last.Reason, w)
		}
	}
}

// TestProxyTunnelChecksServerName: a tunnel is let through only when the client's TLS
// hello names the host the CONNECT was granted for (case aside; none or the address
// itself for an IP-literal origin). Another name, which on a shared front end reaches
// another site, is refused: recorded as denied, the client's connection closed, and
// not one byte sent upstream. Real clients still work.
func TestProxyTunnelChecksServerName(t *testing.T) {
	s := newSNISetup(t)
	host := fmt.Sprintf("example.com:%d", s.front.port)
	ip := fmt.Sprintf("127.0.0.1:%d", s.front.port)

	c := proxyClient(s.addr, s.token, s.tls)
	if code, body, err := fetch(c, "https://"+host+"/"); err != nil || code != 200 || body != "front" {
		t.Fatalf("granted https request: %d %q %v", code, body, err)
	}
	if code, body, err := fetch(c, "https://"+ip+"/"); err != nil || code != 200 || body != "front" {
		t.Fatalf("granted https request to an address: %d %q %v", code, body, err)
	}
	for _, ok := range []struct{ target, sni string }{
		{host, "EXAMPLE.com"}, {ip, ""},
	} {
		if err := s.handshake(t, ok.target, ok.sni); err != nil {
			t.Errorf("CONNECT %s, hello naming %q: %v", ok.target, ok.sni, err)
		}
	}
	if s.front.quiet(t, 4) == 0 {
		t.Fatal("the front end read nothing of the tunnels let through")
	}
	if made, denied := s.g.Counts(); made != 4 || denied != 0 {
		t.Fatalf("counts %d %d before any refusal", made, denied)
	}

	read := s.front.read.Load()
	for i, bad := range []struct{ target, sni, reason string }{
		{host, "other.example", `names the server "other.example", not the granted host example.com`},
		{host, "example.com.other.example", "not the granted host example.com"},
		{host, "x.example.com", "not the granted host example.com"},
		{host, "", "names no server; it must name the granted host example.com"},
		{ip, "example.com", `names the server "example.com", but the granted host is the address 127.0.0.1`},
	} {
		if err := s.handshake(t, bad.target, bad.sni); err == nil {
			t.Errorf("CONNECT %s, hello naming %q: the handshake went through", bad.target, bad.sni)
			continue
		}
		s.wantDenied(t, int64(5+i), read, bad.reason)
	}
	if made, denied := s.g.Counts(); made != 4 || denied != 5 {
		t.Fatalf("counts %d %d, want 4 made and 5 denied", made, denied)
	}
}

// TestProxyTunnelRefusesPlainBytes: a tunnel to an https origin carries TLS only;
// plain HTTP sent on it (which could name any Host) is refused before it goes out.
func TestProxyTunnelRefusesPlainBytes(t *testing.T) {
	s := newSNISetup(t)
	c := connectRaw(t, s.addr, s.token, fmt.Sprintf("example.com:%d", s.front.port))
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: other.example\r\n\r\n")
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("plain bytes in a tunnel: got %q, %v; want the connection closed", b, err)
	}
	s.wantDenied(t, 1, 0, "did not start with a TLS hello")
}

// TestProxyTunnelSilentClient: a client that opens a tunnel and sends nothing does
// not hold it (nor its upstream connection) past the pre-auth timeout, even though the
// tunnel's idle timeout is far longer.
func TestProxyTunnelSilentClient(t *testing.T) {
	s := newSNISetup(t, WithIdleTimeout(time.Hour), WithPreAuthTimeout(100*time.Millisecond))
	c := connectRaw(t, s.addr, s.token, fmt.Sprintf("example.com:%d", s.front.port))
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("silent client: got %q, %v; want the connection closed", b, err)
	}
	s.wantDenied(t, 1, 0, "no TLS hello")
}

// TestHelloNameRefusal: the names a hello may carry for a tunnel, including those Go's
// own client never sends (an address, a trailing dot).
func TestHelloNameRefusal(t *testing.T) {
	name := Target{Scheme: "https", Host: "example.com", Port: 443}
	addr := Target{Scheme: "https", Host: "192.0.2.7", IP: netip.MustParseAddr("192.0.2.7"), Port: 443}
	for _, c := range []struct {
		t   Target
		sni string
		ok  bool
	}{
		{name, "example.com", true}, {name, "EXAMPLE.COM", true}, {name, "example.com.", true},
		{name, "", false}, {name, "other.example", false}, {name, "www.example.com", false},
		{name, "example.com.evil", false}, {name, "192.0.2.7", false}, {name, "example.com..", false},
		{addr, "", true}, {addr, "192.0.2.7", true}, {addr, "::ffff:192.0.2.7", true},
		{addr, "192.0.2.8", false}, {addr, "example.com", false}, {addr, "192.0.2.7.", false},
	} {
		if reason := helloNameRefusal(c.t, c.sni); (reason == "") != c.ok {
			t.Errorf("hello naming %q for %s: refusal %q, want allowed %v", c.sni, c.t.Host, reason, c.ok)
		}
	}
}
