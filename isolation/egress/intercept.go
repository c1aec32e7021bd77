package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// intercept serves a CONNECT to t, an https origin the call's Guard adds a secret to:
// the proxy answers the TLS handshake itself, with a certificate for t's host from the
// call's CA, and reads HTTP/1.1 requests off the connection. Each request goes through
// the Guard to https://t (verified TLS to the real origin, with the operator's roots;
// the secret added after the policy check), one hop at a time, and its response is
// streamed back redacted. The CONNECT itself is neither charged nor recorded: each
// request inside is, as a request of its own.
func (p *Proxy) intercept(ctx context.Context, w http.ResponseWriter, reg *registration, t Target) {
	if reg.ca == nil || !reg.ca.Covers(t) {
		refuse(w, http.StatusBadGateway, fmt.Sprintf("skillbox egress proxy: %s carries a brokered secret, but this call has no certificate authority for it", t.HostPort()))
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		refuse(w, http.StatusInternalServerError, "skillbox egress proxy: cannot intercept on this connection")
		return
	}
	client, rw, err := hj.Hijack()
	if err != nil {
		return
	}
	if !p.track(client) {
		client.Close()
		return
	}
	defer func() {
		client.Close() // before untrack, which holds the lock its first Close takes
		p.untrack(client)
	}()
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	tc := tls.Server(&bufferedConn{Conn: client, r: rw.Reader}, reg.ca.serverConfig(t))
	// The handshake is bounded like a request header: a client that never finishes it
	// does not hold the connection.
	client.SetDeadline(time.Now().Add(p.opts.preAuth))
	if err := tc.HandshakeContext(ctx); err != nil {
		return
	}
	client.SetDeadline(time.Time{})
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.serveIntercepted(r.Context(), w, r, reg, t)
		}),
		ReadHeaderTimeout: p.opts.preAuth,
		IdleTimeout:       p.opts.idle,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	_ = srv.Serve(newOneConnListener(tc))
}

// serveIntercepted sends one request read off an intercepted connection to t. The
// request must be for t (its Host, or its absolute-form target): the connection was
// let through for that origin, and no request on it is sent anywhere else.
func (p *Proxy) serveIntercepted(ctx context.Context, w http.ResponseWriter, r *http.Request, reg *registration, t Target) {
	if r.Method == http.MethodConnect {
		refuse(w, http.StatusMethodNotAllowed, "skillbox egress proxy: CONNECT inside an intercepted connection is not allowed")
		return
	}
	ht, err := ParseTarget(&url.URL{Scheme: "https", Host: r.Host})
	if err != nil || ht.Host != t.Host || ht.Port != t.Port ||
		(r.URL.Scheme != "" && r.URL.Scheme != "https") {
		refuse(w, http.StatusMisdirectedRequest, fmt.Sprintf("skillbox egress proxy: a request for %q on a connection to %s", boundURL(r.Host), t.HostPort()))
		return
	}
	target := &url.URL{Scheme: "https", Host: t.HostPort(), Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	p.forwardTo(ctx, w, r, reg, target.String())
}

// bufferedConn reads what the CONNECT's reader already holds (a client may send its
// TLS hello without waiting for the 200) before the connection itself.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// oneConnListener hands out one connection, then blocks until that connection is
// closed and reports itself closed, so http.Server.Serve returns only when the
// connection's last request is done.
type oneConnListener struct {
	mu     sync.Mutex
	conn   net.Conn // nil once handed out
	addr   net.Addr
	closed chan struct{}
}

func newOneConnListener(c net.Conn) *oneConnListener {
	l := &oneConnListener{addr: c.LocalAddr(), closed: make(chan struct{})}
	l.conn = &closeNotifyConn{Conn: c, closed: l.closed}
	return l
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	c := l.conn
	l.conn = nil
	l.mu.Unlock()
	if c != nil {
		return c, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return l.addr }

// closeNotifyConn closes its channel, once, when it is closed.
type closeNotifyConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *closeNotifyConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.closed) })
	return err
}

// flushWriter flushes every write, so a response is streamed to the skill as it
// arrives (a long poll or event stream is not held in a buffer).
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	if fl, ok := f.w.(http.Flusher); ok && err == nil {
		fl.Flush()
	}
	return n, err
}
