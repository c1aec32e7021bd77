package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/local"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
)

// ServerConfig says where and how the server listens. Paths are files on disk (PEM for
// certificates and keys).
type ServerConfig struct {
	// Addr is gRPC's form: "unix:///abs/path.sock" or "host:port". Empty means
	// DefaultSocket(Home).
	Addr string
	// Home is $SKILLBOX_HOME, used only when Addr is empty.
	Home string
	// TLSCert and TLSKey serve TLS (1.3) on a TCP address. Not allowed on a unix socket.
	TLSCert, TLSKey string
	// ClientCA, with TLS, makes the server verify client certificates against these CAs.
	// Without a TokenFile a certificate is required; with one, a caller brings either.
	ClientCA string
	// TokenFile holds "NAME TOKEN" lines (mode 0600 or stricter). When set, every call
	// must carry "authorization: Bearer TOKEN" (or a verified client certificate).
	TokenFile string
	// Refused, if set, is told of every call refused as unauthenticated, after the
	// refusal is decided: peer is what is known of the caller ("unix:uid=N" or
	// "tcp:IP", never a token), method the RPC. It runs on the call's goroutine, so it
	// must be quick and bound its own work (the server's coalesces per peer).
	Refused func(ctx context.Context, peer, method string, err error)
}

// ErrAddrInUse: another server already answers on the socket.
var ErrAddrInUse = errors.New("address in use")

// Caller is the identity Listen's interceptors established for this call:
// "unix:uid=N", "cert:NAME", "token:NAME" or "tls:anonymous"; "" outside such a call.
func Caller(ctx context.Context) string {
	id, _ := ctx.Value(callerKey{}).(string)
	return id
}

// WithCaller labels ctx with a caller identity, for in-process paths that do not come
// through a listener (the CLI's own calls, tests).
func WithCaller(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, callerKey{}, id)
}

// LocalCaller is the identity this process would have on the unix socket, so that a
// local call ("skillbox run NAME") is checked against approvals like a socket call.
func LocalCaller() string {
	return "unix:uid=" + strconv.Itoa(os.Getuid())
}

type callerKey struct{}

// Listen opens the listener and returns the server options that secure it: transport
// credentials and the interceptors that establish Caller(ctx) and refuse unauthenticated
// calls with UNAUTHENTICATED. Pass the options to grpc.NewServer (add your own
// interceptors with grpc.ChainUnaryInterceptor; they run after these). Closing the
// listener removes a unix socket.
func Listen(ctx context.Context, cfg ServerConfig) (net.Listener, []grpc.ServerOption, error) {
	return listen(ctx, cfg, MaxGRPCConns, nil)
}

// MaxGRPCConns bounds the connections a gRPC TCP listener has open at once, as
// MaxHTTPConns does an HTTP door's, for the same reason: anyone who can reach the
// address may connect before authenticating. A gRPC client multiplexes its calls on one
// connection, so 512 is hundreds of agents. The unix socket has no bound: its file mode
// admits only its owner (and the bound's wrapper would hide the *net.UnixConn the peer
// credentials are read from).
const MaxGRPCConns = 512

// listen is Listen with at most maxConns TCP connections open at once; full, if set,
// is called whenever Accept finds them all taken (tests).
func listen(ctx context.Context, cfg ServerConfig, maxConns int, full func()) (net.Listener, []grpc.ServerOption, error) {
	addrStr := cfg.Addr
	if addrStr == "" {
		if cfg.Home == "" {
			return nil, nil, errors.New("listen: no address and no home for the default socket")
		}
		addrStr = DefaultSocket(cfg.Home)
	}
	addr, err := parseAddr(addrStr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	useTLS, tokens, err := admit(cfg, addr, addrStr, "set a certificate and key, listen on a unix socket, or (on a loopback address only) set a token file")
	if err != nil {
		return nil, nil, err
	}
	if useTLS && addr.isUnix() {
		return nil, nil, fmt.Errorf("listen %s: TLS is for TCP; a unix socket is guarded by its file mode", addrStr)
	}
	a := &authenticator{refused: cfg.Refused, tokens: tokens}

	var (
		creds credentials.TransportCredentials
		lis   net.Listener
	)
	switch {
	case addr.isUnix():
		creds = peerCreds{}
		lis, err = listenUnix(ctx, addr.unixPath)
	case useTLS:
		var tc *tls.Config
		if tc, err = serverTLS(cfg, a.tokens != nil); err != nil {
			return nil, nil, fmt.Errorf("listen %s: %w", addrStr, err)
		}
		creds = credentials.NewTLS(tc)
		lis, err = listenTCP(ctx, addr.hostPort, false)
	default:
		// Plaintext with tokens: loopback only, and local credentials refuse any peer
		// that is not on loopback, should one ever get through.
		creds = local.NewCredentials()
		lis, err = listenTCP(ctx, addr.hostPort, true)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s: %w", addrStr, err)
	}
	if !addr.isUnix() {
		// Below the TLS handshake, which gRPC runs on the accepted connection.
		lis = newLimitListener(lis, maxConns, full)
	}
	opts := []grpc.ServerOption{
		grpc.Creds(creds),
		grpc.InTapHandle(a.tap),
		grpc.ChainUnaryInterceptor(a.unary),
		grpc.ChainStreamInterceptor(a.stream),
	}
	return lis, opts, nil
}

// admit applies the admission rules every listener shares (gRPC and the HTTP doors):
// a certificate needs its key, client certificates need TLS, a TCP listener needs TLS
// or a token file (plaintext is then loopback only: listenTCP), and the token file is
// loaded here. It returns whether the listener serves TLS, and the tokens (nil: none).
// how says what an operator can do about a listener refused for want of TLS.
func admit(cfg ServerConfig, addr address, addrStr, how string) (useTLS bool, tokens *TokenSet, err error) {
	useTLS = cfg.TLSCert != "" || cfg.TLSKey != ""
	switch {
	case (cfg.TLSCert == "") != (cfg.TLSKey == ""):
		return false, nil, errors.New("listen: TLS needs both a certificate and a key")
	case cfg.ClientCA != "" && !useTLS:
		return false, nil, errors.New("listen: client certificates need TLS (a server certificate and key)")
	case !addr.isUnix() && !useTLS && cfg.TokenFile == "":
		return false, nil, &NoTLSError{Addr: addrStr, How: how}
	case !addr.isUnix() && !useTLS && !loopbackHost(hostOf(addr.hostPort)):
		// Before the token file is read; listenTCP checks what a name bound to.
		return false, nil, &NoTLSError{Addr: addrStr, How: "plaintext on a non-loopback address would send bearer tokens in clear; set a TLS certificate and key"}
	}
	if cfg.TokenFile != "" {
		if tokens, err = LoadTokens(cfg.TokenFile); err != nil {
			return false, nil, fmt.Errorf("listen: %w", err)
		}
	}
	return useTLS, tokens, nil
}

// NoTLSError is a TCP listener refused for want of TLS: with no token file either, or
// with one on an address that is not loopback (a token file allows plaintext there
// only). Addr is the address as configured, How what an operator can do about it, so
// that a command line can say it in its flags' words.
type NoTLSError struct {
	Addr, How string
}

func (e *NoTLSError) Error() string {
	return fmt.Sprintf("listen %s: refusing a TCP listener without TLS: %s", e.Addr, e.How)
}

func serverTLS(cfg ServerConfig, tokens bool) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	if cfg.ClientCA != "" {
		pool, err := loadPool(cfg.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
		if tokens {
			tc.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	return tc, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificates", path)
	}
	return pool, nil
}

// hostOf is hostPort's host ("" if it has none).
func hostOf(hostPort string) string {
	host, _, _ := net.SplitHostPort(hostPort)
	return host
}

// listenTCP listens on hostPort; loopbackOnly (plaintext) refuses a listener that is
// not bound to loopback. admit has already refused an address that does not name
// loopback; what a name such as "localhost" bound to is checked here.
func listenTCP(ctx context.Context, hostPort string, loopbackOnly bool) (net.Listener, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", hostPort)
	if err != nil {
		return nil, err
	}
	// "localhost" could resolve to anything; check what was actually bound.
	if tcp, ok := l.Addr().(*net.TCPAddr); loopbackOnly && (!ok || !tcp.IP.IsLoopback()) {
		l.Close()
		return nil, fmt.Errorf("refusing plaintext TCP: %s is not a loopback address", l.Addr())
	}
	return l, nil
}

// listenUnix creates the socket at path, reachable by this uid only from the moment it
// exists, whatever the process umask: it is bound inside a fresh 0700 directory next to
// path, set to 0600 there, and only then linked into place (link fails rather than
// replace a socket another server put there meanwhile). Binding at path and chmod'ing
// afterwards left a window in which, under umask 000, anyone could connect. The parent
// directory is created 0700 if missing. A socket file left by a dead server is replaced;
// one a live server answers on is not.
func listenUnix(ctx context.Context, path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := removeStale(ctx, path); err != nil {
		return nil, err
	}
	priv, err := os.MkdirTemp(dir, ".sb") // mode 0700: the umask can only take bits away
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(priv)
	tmp := filepath.Join(priv, "s")
	if len(tmp) > maxSocketPath {
		return nil, fmt.Errorf("the socket is bound in a private directory first, whose path %s is %d bytes, over the limit of %d: use a shorter socket path", tmp, len(tmp), maxSocketPath)
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "unix", tmp)
	if err != nil {
		return nil, err
	}
	ul, ok := l.(*net.UnixListener)
	if !ok {
		l.Close()
		return nil, fmt.Errorf("unexpected listener %T", l)
	}
	ul.SetUnlinkOnClose(false) // tmp goes with priv; Close removes path instead
	if err := os.Chmod(tmp, 0o600); err != nil {
		ul.Close()
		return nil, err
	}
	if err := os.Link(tmp, path); err != nil {
		ul.Close()
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%s appeared while this server was starting: %w", path, ErrAddrInUse)
		}
		return nil, fmt.Errorf("link the socket into place: %w", err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		ul.Close()
		return nil, err
	}
	return &unixListener{UnixListener: ul, path: path, fi: fi}, nil
}

// unixListener is a socket linked into place by listenUnix: its address is path, and
// Close removes path if it is still this socket.
type unixListener struct {
	*net.UnixListener
	path string
	fi   fs.FileInfo
}

func (l *unixListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *unixListener) Close() error {
	if fi, err := os.Lstat(l.path); err == nil && os.SameFile(fi, l.fi) {
		_ = os.Remove(l.path)
	}
	return l.UnixListener.Close()
}

func removeStale(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; not removing it", path)
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "unix", path)
	if err == nil {
		c.Close()
		return fmt.Errorf("another server is listening on %s: %w", path, ErrAddrInUse)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("probe existing socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}

// authenticator turns a call's peer and metadata into a caller identity.
type authenticator struct {
	tokens  *TokenSet // nil: no token required
	refused func(ctx context.Context, peer, method string, err error)
}

// tap refuses a stream whose caller cannot be named as soon as its headers arrive,
// before the server reads its request message: grpc-go reads a unary call's message
// whole (up to 4 MiB) before any interceptor runs, so a peer without a token could
// otherwise make the server hold 4 MiB in each stream of each connection it opens. It
// runs on the connection's reader, so the refusal costs the peer's connection alone
// any wait for its audit record. The context it returns is the stream's, so the
// interceptors find the caller named here.
func (a *authenticator) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	return a.named(ctx, info.FullMethodName)
}

// named returns ctx labelled with its caller: the one tap named for the stream, or,
// for a stream that did not pass tap, named now. A peer that cannot be named is
// reported and refused.
func (a *authenticator) named(ctx context.Context, method string) (context.Context, error) {
	if Caller(ctx) != "" {
		return ctx, nil
	}
	id, err := a.identify(ctx)
	if err != nil {
		a.report(ctx, method, err)
		return ctx, err
	}
	return WithCaller(ctx, id), nil
}

func (a *authenticator) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, err := a.named(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (a *authenticator) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, err := a.named(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return h(srv, callerStream{ss, ctx})
}

type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s callerStream) Context() context.Context { return s.ctx }

func (a *authenticator) report(ctx context.Context, method string, err error) {
	if a.refused != nil {
		a.refused(ctx, peerName(ctx), method, err)
	}
}

// peerName is what the transport knows of an unauthenticated peer: its uid on a unix
// socket, else its IP address (without the port, which changes with every connection).
func peerName(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "unknown"
	}
	if info, ok := p.AuthInfo.(PeerCredInfo); ok {
		return info.Identity()
	}
	if p.Addr == nil {
		return "unknown"
	}
	if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
		return "tcp:" + host
	}
	return p.Addr.Network() + ":" + p.Addr.String()
}

// PeerInfo is what a door knows of a caller, whatever its protocol: how the
// connection was authenticated (the kernel's credentials of a unix-socket peer, or the
// TLS state of a TCP one; neither on plaintext loopback) and the values of the
// authorization header (gRPC metadata or HTTP) it sent. Identify turns it into a caller
// identity; each door has an adapter that fills it in (grpcPeerInfo for gRPC).
type PeerInfo struct {
	Unix          *PeerCredInfo        // a unix-socket peer, as the kernel saw it at connect time
	TLS           *tls.ConnectionState // a TLS peer
	Authorization []string             // the authorization header values, as sent
}

// AuthError is a caller that could not be authenticated; the message is one line for
// the caller.
type AuthError struct{ Msg string }

func (e *AuthError) Error() string { return e.Msg }

// Identify is the one rule for who a caller is, the same for every door: a verified
// client certificate names the caller; else a token (required when tokens is not nil;
// a token that is present is always checked); else the unix peer's uid; else, on TLS
// without client auth, "tls:anonymous". A caller it cannot name is an *AuthError.
func Identify(p PeerInfo, tokens *TokenSet) (string, error) {
	var base, certID string
	switch {
	case p.Unix != nil:
		base = p.Unix.Identity()
	case p.TLS != nil:
		base = "tls:anonymous"
		if len(p.TLS.VerifiedChains) > 0 && len(p.TLS.PeerCertificates) > 0 {
			if certID = certIdentity(p.TLS.PeerCertificates[0]); certID == "" {
				return "", &AuthError{"client certificate has no subject CN or SAN to name the caller"}
			}
		}
	}
	if tokens == nil {
		switch {
		case certID != "":
			return certID, nil
		case base != "":
			return base, nil
		}
		return "", &AuthError{"unidentified caller"}
	}
	vals := p.Authorization
	switch {
	case len(vals) == 0 && certID != "":
		return certID, nil
	case len(vals) == 0:
		return "", &AuthError{"missing bearer token (authorization: Bearer TOKEN)"}
	case len(vals) > 1:
		return "", &AuthError{"more than one authorization header"}
	}
	tok, ok := bearer(vals[0])
	if !ok {
		return "", &AuthError{"authorization header: want \"Bearer TOKEN\""}
	}
	name, ok := tokens.lookup(tok)
	if !ok {
		return "", &AuthError{"invalid bearer token"}
	}
	if certID != "" {
		return certID, nil
	}
	return "token:" + name, nil
}

// identify is Identify for a gRPC call: its peer and metadata, and the refusal as an
// UNAUTHENTICATED status.
func (a *authenticator) identify(ctx context.Context) (string, error) {
	p, ok := grpcPeerInfo(ctx)
	if !ok {
		return "", status.Error(codes.Unauthenticated, "no transport credentials")
	}
	id, err := Identify(p, a.tokens)
	if err != nil {
		return "", status.Error(codes.Unauthenticated, err.Error())
	}
	return id, nil
}

// grpcPeerInfo is the gRPC adapter of Identify: the call's transport credentials and
// its authorization metadata. False when the call has no transport credentials.
func grpcPeerInfo(ctx context.Context) (PeerInfo, bool) {
	pr, ok := peer.FromContext(ctx)
	if !ok || pr.AuthInfo == nil {
		return PeerInfo{}, false
	}
	var p PeerInfo
	switch info := pr.AuthInfo.(type) {
	case PeerCredInfo:
		p.Unix = &info
	case credentials.TLSInfo:
		p.TLS = &info.State
	}
	p.Authorization = metadata.ValueFromIncomingContext(ctx, "authorization")
	return p, true
}

// certIdentity is "cert:" and the subject CN, or the first SAN (DNS, URI, e-mail) when
// there is no CN.
func certIdentity(c *x509.Certificate) string {
	switch {
	case c.Subject.CommonName != "":
		return "cert:" + c.Subject.CommonName
	case len(c.DNSNames) > 0:
		return "cert:" + c.DNSNames[0]
	case len(c.URIs) > 0:
		return "cert:" + c.URIs[0].String()
	case len(c.EmailAddresses) > 0:
		return "cert:" + c.EmailAddresses[0]
	}
	return ""
}
