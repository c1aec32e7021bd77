package egress

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/skillbox-dev/skillbox/isolation"
)

// ProxyUser is the user name container skills put in their proxy URL
// (HTTP_PROXY=http://skillbox:TOKEN@host:port); the password is the call's token.
const ProxyUser = "skillbox"

// Defaults for the proxy's connection bounds. Each proxied connection holds at most one
// upstream connection at a time, so the proxy holds at most 2*DefaultMaxConns file
// descriptors for its clients, however many calls or connections they attempt.
// DefaultMaxConnsPerCall also bounds one source address's connections that have not
// yet sent a call token.
const (
	DefaultMaxConnsPerCall = 64
	DefaultMaxConns        = 1024
	DefaultPreAuthTimeout  = 5 * time.Second
)

// ProxyOption configures a Proxy.
type ProxyOption func(*proxyOptions)

type proxyOptions struct {
	idle    time.Duration
	perCall int
	total   int
	preAuth time.Duration
}

// WithMaxConns sets how many client connections one call may hold open (beyond it a
// request is answered 429 and its connection closed) and how many the proxy holds in
// all (beyond it a new connection is answered 503 and closed before anything is read).
// perCall also bounds the connections from one source address that have not yet sent
// a call token: each call's container has its own address, so one container cannot
// fill the total with connections no call owns. Values below 1 keep the defaults.
func WithMaxConns(perCall, total int) ProxyOption {
	return func(o *proxyOptions) {
		if perCall > 0 {
			o.perCall = perCall
		}
		if total > 0 {
			o.total = total
		}
	}
}

// WithPreAuthTimeout sets how long a new connection has to send a complete request
// header, which carries the call's token, before it is closed (default 5s). It is also
// the bound on every later request header.
func WithPreAuthTimeout(d time.Duration) ProxyOption {
	return func(o *proxyOptions) {
		if d > 0 {
			o.preAuth = d
		}
	}
}

// WithIdleTimeout sets how long an idle client connection or tunnel is kept
// (default 60s).
func WithIdleTimeout(d time.Duration) ProxyOption {
	return func(o *proxyOptions) { o.idle = d }
}

// Proxy is an HTTP forward proxy for container skills. Each request names its call
// by the token Register returned, and goes out only through that call's Guard:
// absolute-form requests are checked and sent by the Guard, CONNECT tunnels are
// checked against the https origins and the dialled address. Redirects are handed
// back to the client, whose next request is checked (and counted) like any other.
type Proxy struct {
	opts proxyOptions
	srv  *http.Server

	mu      sync.Mutex
	calls   map[string]*registration
	tunnels map[net.Conn]struct{}
	open    int // client connections accepted and not yet closed
	// unclaimed counts, per source address, accepted connections that have not yet
	// authenticated for a call: the per-call cap cannot see them.
	unclaimed map[string]int
	closed    bool
	wg        sync.WaitGroup
}

type registration struct {
	g      *Guard
	ca     *CallCA         // terminates TLS for origins that carry a secret; nil: none
	ctx    context.Context // ends when the call is released
	cancel context.CancelFunc
	conns  map[*proxyConn]struct{} // client connections that authenticated for this call; p.mu
}

// NewProxy returns a Proxy with no calls registered.
func NewProxy(opts ...ProxyOption) *Proxy {
	p := &Proxy{
		opts: proxyOptions{idle: 60 * time.Second, perCall: DefaultMaxConnsPerCall,
			total: DefaultMaxConns, preAuth: DefaultPreAuthTimeout},
		calls:     map[string]*registration{},
		tunnels:   map[net.Conn]struct{}{},
		unclaimed: map[string]int{},
	}
	for _, o := range opts {
		o(&p.opts)
	}
	p.srv = &http.Server{
		Handler: p,
		// A connection authenticates with its first request header: one that has not
		// sent it within the pre-auth timeout is closed, so connections that never
		// authenticate cannot pile up.
		ReadHeaderTimeout: p.opts.preAuth,
		IdleTimeout:       p.opts.idle,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          nil,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
	return p
}

// Serve accepts proxy connections on l until Close. It returns nil after Close.
func (p *Proxy) Serve(l net.Listener) error {
	err := p.srv.Serve(capListener{Listener: l, p: p})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Register makes g reachable through the proxy and returns the token that names it.
// release ends the registration and closes the call's open tunnels; it is safe to
// call more than once.
func (p *Proxy) Register(g *Guard) (token string, release func()) {
	token, bind, release := p.Reserve(nil)
	bind(g)
	return token, release
}

// Reserve hands out a token before its call exists: a warm container is created with
// it, but every request it makes is refused (407) until bind names the call's Guard,
// so nothing goes out, and nothing is charged to a caller, before the call starts.
//
// ca, when not nil, is the certificate authority of the container the token is for:
// a CONNECT to an https origin the Guard adds a secret to (Guard.Brokers) is then
// terminated with a certificate it issues, and each request inside is sent through the
// Guard. release drops it (CallCA.Drop). Without ca, such a CONNECT is refused: a
// tunnel would pass the request by the Guard without its secret.
func (p *Proxy) Reserve(ca *CallCA) (token string, bind func(*Guard), release func()) {
	ctx, cancel := context.WithCancel(context.Background())
	token = rand.Text()
	reg := &registration{ctx: ctx, cancel: cancel, ca: ca, conns: map[*proxyConn]struct{}{}}
	p.mu.Lock()
	p.calls[token] = reg
	p.mu.Unlock()
	var once sync.Once
	bind = func(g *Guard) {
		p.mu.Lock()
		reg.g = g
		p.mu.Unlock()
	}
	return token, bind, func() {
		once.Do(func() {
			p.mu.Lock()
			delete(p.calls, token)
			conns := make([]*proxyConn, 0, len(reg.conns))
			for c := range reg.conns {
				conns = append(conns, c)
			}
			p.mu.Unlock()
			cancel()
			if ca != nil {
				ca.Drop()
			}
			// The call's idle keep-alive connections go with it: their descriptors are
			// not held until the idle timeout.
			for _, c := range conns {
				c.Close()
			}
		})
	}
}

// Close stops accepting connections, closes open ones and tunnels, and waits for
// the tunnels to finish.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	tunnels := make([]net.Conn, 0, len(p.tunnels))
	for c := range p.tunnels {
		tunnels = append(tunnels, c)
	}
	for _, r := range p.calls {
		r.cancel()
	}
	p.mu.Unlock()
	// Closed without p.mu: a client connection's first Close takes it (proxyConn.forget).
	for _, c := range tunnels {
		c.Close()
	}
	err := p.srv.Close()
	p.wg.Wait()
	return err
}

// lookup returns the registration named by the request's Proxy-Authorization.
func (p *Proxy) lookup(r *http.Request) *registration {
	auth := r.Header.Get("Proxy-Authorization")
	const prefix = "Basic "
	if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(auth[len(prefix):]))
	if err != nil {
		return nil
	}
	user, token, ok := strings.Cut(string(raw), ":")
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(ProxyUser)) != 1 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if reg := p.calls[token]; reg != nil && reg.g != nil {
		return reg
	}
	return nil // unknown, or reserved for a call that has not started
}

// refuse answers with one line saying why and closes the connection.
func refuse(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Connection", "close")
	w.WriteHeader(code)
	io.WriteString(w, strings.ReplaceAll(msg, "\n", " ")+"\n")
}

// refuseErr maps a Guard error to a status: 403 for a policy denial, 429 for a spent
// request budget, 502 for an upstream failure.
func refuseErr(w http.ResponseWriter, err error) {
	var de *DeniedError
	switch {
	case errors.As(err, &de):
		refuse(w, http.StatusForbidden, de.Error())
	case IsBudget(err):
		refuse(w, http.StatusTooManyRequests, err.Error())
	default:
		refuse(w, http.StatusBadGateway, err.Error())
	}
}

// ServeHTTP implements the proxy.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reg := p.lookup(r)
	if reg == nil {
		w.Header().Set("Proxy-Authenticate", `Basic realm="skillbox"`)
		refuse(w, http.StatusProxyAuthRequired, "skillbox egress proxy: unknown or missing call token")
		return
	}
	pc, _ := r.Context().Value(connKey{}).(*proxyConn)
	if code, msg := p.claim(pc, reg); code != 0 {
		refuse(w, code, msg)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(reg.ctx, cancel)
	defer stop()
	if r.Method == http.MethodConnect {
		p.connect(ctx, w, r, reg)
		return
	}
	if !r.URL.IsAbs() {
		refuse(w, http.StatusBadRequest, "skillbox egress proxy: absolute-form URL required")
		return
	}
	p.forward(ctx, w, r, reg)
}

func (p *Proxy) forward(ctx context.Context, w http.ResponseWriter, r *http.Request, reg *registration) {
	p.forwardTo(ctx, w, r, reg, r.URL.String())
}

// forwardTo sends r to target through the call's Guard, one hop (a redirect goes back
// to the client, whose next request is checked anew), and streams the response back.
func (p *Proxy) forwardTo(ctx context.Context, w http.ResponseWriter, r *http.Request, reg *registration, target string) {
	var body io.Reader
	if r.ContentLength != 0 {
		body = r.Body
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, target, body)
	if err != nil {
		refuse(w, http.StatusBadRequest, "skillbox egress proxy: "+err.Error())
		return
	}
	out.Header = r.Header.Clone()
	out.ContentLength = r.ContentLength
	resp, err := reg.g.do(ctx, out, false)
	if err != nil {
		refuseErr(w, err)
		return
	}
	defer resp.Body.Close()
	if limit := reg.g.limits.MaxResponseBytes; resp.ContentLength > limit {
		e := &ResponseTooLargeError{URL: boundURL(recordURL(out.URL)), Limit: limit}
		if cb, ok := resp.Body.(*cappedBody); ok {
			reg.g.update(cb.idx, func(rec *isolation.EgressRecord) { rec.Reason = e.Error() })
		}
		refuse(w, http.StatusBadGateway, e.Error())
		return
	}
	for k, v := range cleanHeaders(resp.Header) {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(flushWriter{w}, resp.Body); err != nil {
		// The status is out; cutting the connection is the only way left to say the
		// body is not whole.
		panic(http.ErrAbortHandler)
	}
}

func (p *Proxy) connect(ctx context.Context, w http.ResponseWriter, r *http.Request, reg *registration) {
	g := reg.g
	u := &url.URL{Scheme: "https", Host: r.Host}
	if t, _, err := Check(g.origins, u); err == nil && g.Brokers(t) {
		// The Guard adds a secret here: it must see each request, so the proxy
		// terminates TLS instead of tunnelling (intercept.go).
		p.intercept(ctx, w, reg, t)
		return
	}
	ru := boundURL(u.String())
	if err := g.charge(http.MethodConnect, ru); err != nil {
		refuseErr(w, err)
		return
	}
	t, origin, err := Check(g.origins, u)
	if err != nil {
		refuseErr(w, g.deny(http.MethodConnect, ru, err.Error()))
		return
	}
	idx := g.allow(http.MethodConnect, ru)
	upstream, err := g.dialChecked(ctx, "tcp", origin, t.HostPort())
	if err != nil {
		var ad *addrDeniedError
		if errors.As(err, &ad) {
			refuseErr(w, g.denyAdmitted(idx, ru, ad.reason))
			return
		}
		g.update(idx, func(rec *isolation.EgressRecord) { rec.Reason = "failed: " + err.Error() })
		refuse(w, http.StatusBadGateway, "skillbox egress proxy: "+err.Error())
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		upstream.Close()
		refuse(w, http.StatusInternalServerError, "skillbox egress proxy: cannot tunnel on this connection")
		return
	}
	client, rw, err := hj.Hijack()
	if err != nil {
		upstream.Close()
		return
	}
	if !p.track(client, upstream) {
		client.Close()
		upstream.Close()
		return
	}
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		p.untrack(client, upstream)
		return
	}
	// What the client sent after its CONNECT is already in rw's buffer; the rest is read
	// off the connection itself (reading on through rw would end ctx at a read error).
	pending, _ := rw.Reader.Peek(rw.Reader.Buffered())
	src := io.MultiReader(bytes.NewReader(pending), client)
	// Nothing goes upstream until the client's TLS hello names the host the policy
	// checked: on a shared front end (a CDN, a cloud load balancer) another name would
	// reach another site at the same address.
	hello, err := p.readHello(ctx, client, src, t)
	if err != nil {
		var de *DeniedError
		if errors.As(err, &de) {
			g.denyAdmitted(idx, ru, de.Reason)
		} else {
			g.update(idx, func(rec *isolation.EgressRecord) { rec.Reason = "failed: " + err.Error() })
		}
		p.untrack(client, upstream)
		return
	}
	g.update(idx, func(rec *isolation.EgressRecord) { rec.Status = http.StatusOK })
	p.tunnel(reg, idx, client, io.MultiReader(bytes.NewReader(hello), src), upstream)
}

// maxHello bounds what the proxy reads of a tunnel looking for the client's TLS hello.
// A hello is a few KiB (with post-quantum key shares too); Go's TLS stack already
// refuses one over 64 KiB, so this is a belt.
const maxHello = 128 << 10

// errHelloRead stops the TLS handshake readHello starts once the hello is read.
var errHelloRead = errors.New("TLS hello read")

// readHello reads the client's TLS hello off a tunnel to t and returns the bytes read,
// which go upstream unchanged. Go's TLS server parses the hello and is stopped before
// it answers. The hello must name t's host (compared as the policy compares hosts): a
// tunnel to an IP-literal origin may name none, or that address. Anything else, bytes
// that are not a TLS hello, or no hello within the pre-auth timeout is a *DeniedError.
// Other errors (the call ended, the client closed the tunnel first) are not refusals.
func (p *Proxy) readHello(ctx context.Context, client net.Conn, buf io.Reader, t Target) ([]byte, error) {
	hc := &helloConn{Conn: client, r: buf}
	var hello *tls.ClientHelloInfo
	tc := tls.Server(hc, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		hello = h
		return nil, errHelloRead
	}})
	client.SetReadDeadline(time.Now().Add(p.opts.preAuth))
	defer client.SetReadDeadline(time.Time{})
	err := tc.HandshakeContext(ctx)
	var ne net.Error
	switch {
	case hello != nil:
		if slices.Contains(hello.Extensions, 0xfe0d) { // encrypted_client_hello: the inner name is not seen
			return nil, &DeniedError{Reason: "the TLS hello is an Encrypted Client Hello, whose inner server name the proxy cannot check"}
		}
		if reason := helloNameRefusal(t, hello.ServerName); reason != "" {
			return nil, &DeniedError{Reason: reason}
		}
		return hc.read.Bytes(), nil
	case ctx.Err() != nil:
		return nil, errors.New("the call ended before the client's TLS hello")
	case hc.read.Len() == 0 && errors.Is(err, io.EOF):
		return nil, errors.New("the client closed the tunnel before its TLS hello")
	case errors.As(err, &ne) && ne.Timeout():
		return nil, &DeniedError{Reason: fmt.Sprintf("no TLS hello within %s of the tunnel opening; the proxy reads the server name before anything goes out", p.opts.preAuth)}
	default:
		return nil, &DeniedError{Reason: fmt.Sprintf("the tunnel did not start with a TLS hello (%v); only TLS is let through to an https origin", err)}
	}
}

// helloNameRefusal says why a TLS hello naming sni may not open a tunnel to t, or
// returns "". An IP-literal origin names no server: clients send no name for an
// address (RFC 6066), and a name would pick a virtual host the grant never named.
func helloNameRefusal(t Target, sni string) string {
	if t.IP.IsValid() {
		if a, err := netip.ParseAddr(sni); sni == "" || err == nil && a.Unmap() == t.IP {
			return ""
		}
		return fmt.Sprintf("the TLS hello names the server %q, but the granted host is the address %s", sni, t.Host)
	}
	if sni == "" {
		return fmt.Sprintf("the TLS hello names no server; it must name the granted host %s", t.Host)
	}
	// The name goes upstream as written: a Unicode spelling that IDNA maps to the
	// granted host (full-width letters, an ideographic full stop) names no site there.
	for i := 0; i < len(sni); i++ {
		if sni[i] >= utf8.RuneSelf {
			return fmt.Sprintf("the TLS hello names the server %q, not in ASCII as the granted host %s is", sni, t.Host)
		}
	}
	if name, err := normaliseName(strings.TrimSuffix(sni, ".")); err != nil || name != t.Host {
		return fmt.Sprintf("the TLS hello names the server %q, not the granted host %s", sni, t.Host)
	}
	return ""
}

// helloConn is what readHello's TLS server reads the client through: it keeps every
// byte read, at most maxHello, and drops what the server writes (the alert it sends
// when stopped), so the client sees none of it.
type helloConn struct {
	net.Conn
	r    io.Reader
	read bytes.Buffer
}

func (c *helloConn) Read(b []byte) (int, error) {
	left := maxHello - c.read.Len()
	if left <= 0 {
		return 0, fmt.Errorf("no TLS hello in the first %d bytes", maxHello)
	}
	n, err := c.r.Read(b[:min(len(b), left)])
	c.read.Write(b[:n])
	return n, err
}

func (c *helloConn) Write(b []byte) (int, error) { return len(b), nil }

// track registers a tunnel's two connections so Close can end them; it refuses once
// the proxy is closed.
func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range conns {
		p.tunnels[c] = struct{}{}
	}
	p.wg.Add(1)
	return true
}

// untrack closes a tunnel's connections and forgets them. It closes them before it
// takes p.mu: a client connection's first Close takes p.mu too (proxyConn.forget).
func (p *Proxy) untrack(conns ...net.Conn) {
	for _, c := range conns {
		c.Close()
	}
	p.mu.Lock()
	for _, c := range conns {
		delete(p.tunnels, c)
	}
	p.mu.Unlock()
	p.wg.Done()
}

// tunnel copies bytes both ways until either side ends, the call is released, a side
// stays idle too long, or the upstream has sent MaxResponseBytes.
func (p *Proxy) tunnel(reg *registration, idx int, client net.Conn, clientBuf io.Reader, upstream net.Conn) {
	g := reg.g
	limit := g.limits.MaxResponseBytes
	stop := context.AfterFunc(reg.ctx, func() {
		client.Close()
		upstream.Close()
	})
	defer stop()
	var last atomic.Int64 // unix nanoseconds of the last byte either way
	last.Store(time.Now().UnixNano())
	done := make(chan struct{})
	go func() {
		defer close(done)
		copyIdle(upstream, clientBuf, client, p.opts.idle, &last, -1)
		upstream.Close()
		client.Close()
	}()
	n, over := copyIdle(client, upstream, upstream, p.opts.idle, &last, limit)
	client.Close()
	upstream.Close()
	<-done
	g.update(idx, func(rec *isolation.EgressRecord) {
		rec.Bytes = n
		if over {
			rec.Reason = fmt.Sprintf("tunnel cut at the %d-byte limit", limit)
		}
	})
	p.untrack(client, upstream)
}

// copyIdle copies src to dst and stops after limit bytes (limit < 0: no limit); over
// reports the cut. A read deadline on deadlineOf ends the copy once neither direction
// has moved a byte for idle (last is shared by both directions).
func copyIdle(dst io.Writer, src io.Reader, deadlineOf net.Conn, idle time.Duration, last *atomic.Int64, limit int64) (n int64, over bool) {
	buf := make([]byte, 32<<10)
	for {
		if idle > 0 {
			deadlineOf.SetReadDeadline(time.Now().Add(idle))
		}
		p := buf
		if limit >= 0 && int64(len(p)) > limit-n+1 {
			p = p[:limit-n+1]
		}
		m, err := src.Read(p)
		if limit >= 0 && n+int64(m) > limit {
			m = int(limit - n)
			over = true
		}
		if m > 0 {
			last.Store(time.Now().UnixNano())
			if _, werr := dst.Write(p[:m]); werr != nil {
				return n, over
			}
			n += int64(m)
		}
		var ne net.Error
		if !over && errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, last.Load())) < idle {
			continue // this side is quiet but the other is not
		}
		if over || err != nil {
			return n, over
		}
	}
}

// connKey carries a request's *proxyConn in its context.
type connKey struct{}

// proxyConn is an accepted client connection, counted until it is closed.
type proxyConn struct {
	net.Conn
	p    *Proxy
	src  string        // source address, the key of p.unclaimed
	reg  *registration // the call it authenticated for, nil until then; p.mu
	once sync.Once
}

// Close closes the connection and, once, takes it off the counts.
func (c *proxyConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.p.forget(c) })
	return err
}

// capListener refuses connections beyond the proxy's total cap, or beyond the
// per-call cap of unauthenticated connections from one source address, as soon as
// they are accepted, before reading anything from them.
type capListener struct {
	net.Listener
	p *Proxy
}

// tooManyConns is the whole reply to a connection over the total cap, and
// tooManyUnclaimed to one over its source address's cap.
const (
	tooManyConns = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Connection: close\r\nContent-Length: 49\r\n\r\nskillbox egress proxy: too many open connections\n"
	tooManyUnclaimed = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Connection: close\r\nContent-Length: 89\r\n\r\nskillbox egress proxy: too many connections from this address have not sent a call token\n"
)

func (l capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		pc, reply := l.p.admitConn(c)
		if pc != nil {
			return pc, nil
		}
		// A few bytes into a fresh socket's buffer: this never waits on the client.
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		io.WriteString(c, reply)
		c.Close()
	}
}

// admitConn counts c in, or returns nil and the reply that refuses it when the proxy
// is at its total cap or c's source address at its cap of unclaimed connections.
func (p *Proxy) admitConn(c net.Conn) (*proxyConn, string) {
	src := sourceOf(c)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open >= p.opts.total {
		return nil, tooManyConns
	}
	if p.unclaimed[src] >= p.opts.perCall {
		return nil, tooManyUnclaimed
	}
	p.open++
	p.unclaimed[src]++
	return &proxyConn{Conn: c, p: p, src: src}, ""
}

// sourceOf is the key a connection's unclaimed count is kept under: its remote IP.
func sourceOf(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return c.RemoteAddr().String()
}

// unclaim takes c off its source address's unclaimed count; p.mu is held.
func (p *Proxy) unclaim(c *proxyConn) {
	if n := p.unclaimed[c.src] - 1; n > 0 {
		p.unclaimed[c.src] = n
	} else {
		delete(p.unclaimed, c.src)
	}
}

// forget takes a closed connection off the counts.
func (p *Proxy) forget(c *proxyConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.open--
	if c.reg != nil {
		delete(c.reg.conns, c)
	} else {
		p.unclaim(c)
	}
}

// claim binds a connection to the call it authenticated for, within the call's
// connection cap. A refusal is an HTTP status and a line saying why (the connection
// is then closed); code 0 means go on. A connection that did not come through Serve
// (pc nil) is not counted.
func (p *Proxy) claim(pc *proxyConn, reg *registration) (code int, msg string) {
	if pc == nil {
		return 0, ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case reg.ctx.Err() != nil:
		return http.StatusProxyAuthRequired, "skillbox egress proxy: the call has ended"
	case pc.reg == reg:
		return 0, ""
	case pc.reg != nil:
		return http.StatusProxyAuthRequired, "skillbox egress proxy: this connection belongs to another call"
	case len(reg.conns) >= p.opts.perCall:
		return http.StatusTooManyRequests, fmt.Sprintf("skillbox egress proxy: this call already holds %d connections, the most it may", p.opts.perCall)
	}
	pc.reg = reg
	reg.conns[pc] = struct{}{}
	p.unclaim(pc)
	return 0, ""
}
