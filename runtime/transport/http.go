package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// HTTPListener is a TCP listener for an HTTP door (MCP over Streamable HTTP), admitted
// by the same rules as the gRPC TCP listener: TLS 1.3 (client certificates optional),
// or plaintext on a loopback address only and only with a token file.
type HTTPListener struct {
	net.Listener
	tokens *TokenSet // nil: no token required
	tls    bool
	host   string // the host of the address it was asked to listen on
}

// ListenHTTP listens for an HTTP door as cfg says (Addr is "host:port"; a unix socket
// is not an HTTP door's address). With TLS the listener hands out TLS connections. At
// most MaxHTTPConns connections are open at once; Accept waits for one to close.
func ListenHTTP(ctx context.Context, cfg ServerConfig) (*HTTPListener, error) {
	return listenHTTP(ctx, cfg, MaxHTTPConns, nil)
}

// listenHTTP is ListenHTTP with at most maxConns connections open at once; full, if
// set, is called whenever Accept finds them all taken (tests).
func listenHTTP(ctx context.Context, cfg ServerConfig, maxConns int, full func()) (*HTTPListener, error) {
	addr, err := parseAddr(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if addr.isUnix() {
		return nil, fmt.Errorf("listen %s: an HTTP door listens on host:port", cfg.Addr)
	}
	useTLS, tokens, err := admit(cfg, addr, cfg.Addr, "set a certificate and key, or (on a loopback address only) set a token file")
	if err != nil {
		return nil, err
	}
	l := &HTTPListener{tls: useTLS, tokens: tokens}
	l.host, _, _ = net.SplitHostPort(addr.hostPort)
	var tc *tls.Config
	if useTLS {
		if tc, err = serverTLS(cfg, l.tokens != nil); err != nil {
			return nil, fmt.Errorf("listen %s: %w", cfg.Addr, err)
		}
	}
	lis, err := listenTCP(ctx, addr.hostPort, !useTLS)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	// The bound is under TLS: a handshake holds a place, and net/http still sees the
	// *tls.Conn it needs for r.TLS (client certificates).
	lis = newLimitListener(lis, maxConns, full)
	if tc != nil {
		lis = tls.NewListener(lis, tc)
	}
	l.Listener = lis
	return l, nil
}

// TLS reports whether the listener serves TLS (https).
func (l *HTTPListener) TLS() bool { return l.tls }

// Identify is Identify for an HTTP request that came through l: its TLS state and
// its Authorization header.
func (l *HTTPListener) Identify(r *http.Request) (string, error) {
	return Identify(HTTPPeerInfo(r), l.tokens)
}

// TokenLogin is Identify for a bearer token typed into a login form (the console's)
// rather than sent in an Authorization header: the same rule, the same names. An
// empty token is refused as a missing one.
func (l *HTTPListener) TokenLogin(r *http.Request, token string) (string, error) {
	if l.tokens == nil {
		return "", &AuthError{"this listener has no token file"}
	}
	p := PeerInfo{TLS: r.TLS}
	if token != "" {
		p.Authorization = []string{"Bearer " + token}
	}
	return Identify(p, l.tokens)
}

// Tokens reports whether the listener has a token file.
func (l *HTTPListener) Tokens() bool { return l.tokens != nil }

// HTTPPeerInfo is the HTTP adapter of Identify: the request's TLS state and its
// Authorization header values.
func HTTPPeerInfo(r *http.Request) PeerInfo {
	return PeerInfo{TLS: r.TLS, Authorization: r.Header.Values("Authorization")}
}

// HTTPPeer is what is known of an unauthenticated HTTP peer: "tcp:IP".
func HTTPPeer(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return "tcp:" + host
	}
	return "unknown"
}

// CheckHost guards against DNS rebinding: a request's Host must name the address l
// listens on (on loopback also "localhost", 127.0.0.1 or [::1]), and an Origin, when
// the request has one, must name such a host too. A page on another site that makes
// a browser send requests here (after pointing its own name at this address) carries
// that site's name in Host or Origin and is refused.
func (l *HTTPListener) CheckHost(r *http.Request) error {
	if !l.allowedHost(hostOnly(r.Host)) {
		return fmt.Errorf("host %q is not this server's address", r.Host)
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || !l.allowedHost(u.Hostname()) {
			return fmt.Errorf("origin %q is not this server", o)
		}
	}
	return nil
}

func (l *HTTPListener) allowedHost(h string) bool {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if h == "" {
		return false
	}
	listen := strings.ToLower(l.host)
	if h == listen && listen != "" && !unspecified(listen) {
		return true
	}
	local := loopbackHost(listen)
	if tcp, ok := l.Addr().(*net.TCPAddr); ok && tcp.IP.IsLoopback() {
		local = true
	}
	if local {
		return loopbackHost(h)
	}
	if unspecified(listen) {
		// Listening on every address: any of this machine's names may be used, but a
		// name is not checked against them; a non-loopback listener has TLS, whose
		// certificate names the server.
		return true
	}
	return false
}

func unspecified(h string) bool {
	ip := net.ParseIP(h)
	return h == "" || (ip != nil && ip.IsUnspecified())
}

// hostOnly is the host of a Host header value, without port or IPv6 brackets.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}
