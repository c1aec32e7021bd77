package transport

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/internal/testpki"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// shortDir is a temp dir with a short path: unix socket paths are limited to 107 bytes.
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "sb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// serve starts a health server on Listen's listener. An interceptor placed after
// transport's echoes Caller(ctx) back as the "x-caller" header, so tests see exactly what
// the engine would see.
func serve(t *testing.T, cfg ServerConfig) net.Listener {
	t.Helper()
	lis, opts, err := Listen(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	echo := func(ctx context.Context) {
		grpc.SetHeader(ctx, metadata.Pairs("x-caller", Caller(ctx)))
	}
	opts = append(opts,
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			echo(ctx)
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			echo(ss.Context())
			return h(srv, ss)
		}))
	s := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s, health.NewServer())
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(lis) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return lis
}

// check makes one unary health call and returns the caller the server saw.
func check(t *testing.T, cfg ClientConfig) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer cc.Close()
	var md metadata.MD
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md))
	if err != nil {
		return "", err
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health status %v", resp.Status)
	}
	if v := md.Get("x-caller"); len(v) == 1 {
		return v[0], nil
	}
	return "", errors.New("no x-caller header")
}

func wantCaller(t *testing.T, cfg ClientConfig, want string) {
	t.Helper()
	got, err := check(t, cfg)
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	if got != want {
		t.Fatalf("caller %q, want %q", got, want)
	}
}

func wantCode(t *testing.T, cfg ClientConfig, want codes.Code, msg string) {
	t.Helper()
	got, err := check(t, cfg)
	if err == nil {
		t.Fatalf("call succeeded as %q, want %v", got, want)
	}
	if status.Code(err) != want || !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %v, want code %v containing %q", err, want, msg)
	}
}

func TestUnixSocket(t *testing.T) {
	home := filepath.Join(shortDir(t), "home")
	serve(t, ServerConfig{Home: home})
	sock := filepath.Join(home, SocketName)

	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want socket 0600", fi.Mode())
	}
	if di, err := os.Stat(home); err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("home dir mode %v (%v), want 0700", di.Mode(), err)
	}
	want := "unix:uid=" + strconv.Itoa(os.Getuid())
	if LocalCaller() != want {
		t.Fatalf("LocalCaller %q, want %q", LocalCaller(), want)
	}
	wantCaller(t, ClientConfig{Home: home}, want)
	wantCaller(t, ClientConfig{Addr: "unix://" + sock}, want)

	// Streams get the caller too.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, err := Dial(ctx, ClientConfig{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	w, err := healthpb.NewHealthClient(cc).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatal(err)
	}
	md, err := w.Header()
	if err != nil || len(md.Get("x-caller")) != 1 || md.Get("x-caller")[0] != want {
		t.Fatalf("stream caller %v (%v), want %q", md.Get("x-caller"), err, want)
	}
}

func TestUnixSocketInUse(t *testing.T) {
	addr := "unix://" + filepath.Join(shortDir(t), "s.sock")
	serve(t, ServerConfig{Addr: addr})
	_, _, err := Listen(context.Background(), ServerConfig{Addr: addr})
	if !errors.Is(err, ErrAddrInUse) || !strings.Contains(err.Error(), "another server is listening on") {
		t.Fatalf("second Listen: %v, want ErrAddrInUse", err)
	}
	// The live server is unharmed.
	wantCaller(t, ClientConfig{Addr: addr}, LocalCaller())
}

func TestUnixStaleSocketReplaced(t *testing.T) {
	sock := filepath.Join(shortDir(t), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	lis := serve(t, ServerConfig{Addr: "unix://" + sock})
	wantCaller(t, ClientConfig{Addr: "unix://" + sock}, LocalCaller())

	// Closing the listener removes the socket.
	lis.Close()
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("socket still there after Close: %v", err)
	}
}

func TestUnixNotASocketKept(t *testing.T) {
	p := filepath.Join(shortDir(t), "s.sock")
	if err := os.WriteFile(p, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := Listen(context.Background(), ServerConfig{Addr: "unix://" + p})
	if err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Fatalf("Listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "keep me" {
		t.Fatal("regular file was touched")
	}
}

func TestListenRefuses(t *testing.T) {
	dir := shortDir(t)
	tokens := writeTokens(t, dir, "agent-1 "+goodToken+"\n")
	for _, tc := range []struct {
		name string
		cfg  ServerConfig
		want string
	}{
		{"tcp without TLS or token", ServerConfig{Addr: "127.0.0.1:0"}, "refusing a TCP listener without TLS"},
		{"token over non-loopback plaintext", ServerConfig{Addr: "0.0.0.0:0", TokenFile: tokens}, "non-loopback"},
		{"token over all interfaces", ServerConfig{Addr: ":0", TokenFile: tokens}, "non-loopback"},
		{"TLS on unix", ServerConfig{Addr: "unix://" + dir + "/x.sock", TLSCert: "c", TLSKey: "k"}, "TLS is for TCP"},
		{"cert without key", ServerConfig{Addr: "127.0.0.1:0", TLSCert: "c"}, "both a certificate and a key"},
		{"client CA without TLS", ServerConfig{Addr: "127.0.0.1:0", ClientCA: "ca", TokenFile: tokens}, "need TLS"},
		{"abstract socket", ServerConfig{Addr: "unix-abstract:sb"}, "abstract unix sockets"},
		{"relative unix://", ServerConfig{Addr: "unix://rel.sock"}, "absolute path"},
		{"long socket path", ServerConfig{Addr: "unix:///" + strings.Repeat("a", 120)}, "limit is 107"},
		{"no address", ServerConfig{}, "no address"},
		{"missing port", ServerConfig{Addr: "127.0.0.1"}, "host:port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _, err := Listen(context.Background(), tc.cfg)
			if err == nil {
				l.Close()
				t.Fatal("Listen succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

const goodToken = "s3cret-token-0123456789"

func writeTokens(t *testing.T, dir, content string) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "tokens")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

func TestTokenLoopback(t *testing.T) {
	dir := shortDir(t)
	tokens := writeTokens(t, dir, "# agents\n\nagent-1 "+goodToken+"\nagent-2   other-token-abcdefghij\n")
	lis := serve(t, ServerConfig{Addr: "127.0.0.1:0", TokenFile: tokens})
	addr := lis.Addr().String()

	wantCaller(t, ClientConfig{Addr: addr, Token: goodToken}, "token:agent-1")
	wantCaller(t, ClientConfig{Addr: addr, Token: "other-token-abcdefghij"}, "token:agent-2")
	wantCode(t, ClientConfig{Addr: addr, Token: "wrong-token-0123456789"}, codes.Unauthenticated, "invalid bearer token")
	wantCode(t, ClientConfig{Addr: addr}, codes.Unauthenticated, "missing bearer token")

	// A token file on a unix socket: the token names the caller.
	sock := "unix://" + filepath.Join(dir, "t.sock")
	serve(t, ServerConfig{Addr: sock, TokenFile: tokens})
	wantCaller(t, ClientConfig{Addr: sock, Token: goodToken}, "token:agent-1")
	wantCode(t, ClientConfig{Addr: sock}, codes.Unauthenticated, "missing bearer token")
}

func TestTokenFile(t *testing.T) {
	dir := shortDir(t)
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want          string // "" = loads
	}{
		{"ok", "a " + goodToken + "\n# c\nb x" + goodToken, 0o600, ""},
		{"world readable", "a " + goodToken, 0o644, "chmod 600"},
		{"group readable", "a " + goodToken, 0o640, "chmod 600"},
		{"three fields", "a b " + goodToken, 0o600, ":1: want"},
		{"short token", "a short", 0o600, "shorter than 16"},
		{"duplicate name", "a " + goodToken + "\na x" + goodToken, 0o600, ":2: name \"a\" appears twice"},
		{"shared token", "a " + goodToken + "\nb " + goodToken, 0o600, "also another name's token"},
		{"bad name", "a/b " + goodToken, 0o600, "name \"a/b\""},
		{"empty", "# nothing\n", 0o600, "no tokens"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeTokens(t, dir, tc.content)
			if err := os.Chmod(p, tc.mode); err != nil {
				t.Fatal(err)
			}
			ts, err := LoadTokens(p)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if n, ok := ts.lookup(goodToken); !ok || n != "a" {
					t.Fatalf("lookup = %q, %v", n, ok)
				}
				if _, ok := ts.lookup(goodToken[:len(goodToken)-1]); ok {
					t.Fatal("a prefix of a token matched")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), goodToken) {
				t.Fatalf("error leaks the token: %v", err)
			}
		})
	}
}

func TestDialRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ClientConfig
		want string
	}{
		// Refused before any connection is attempted: nothing is sent anywhere.
		{"plaintext to non-loopback", ClientConfig{Addr: "192.0.2.1:443", Token: goodToken}, "non-loopback"},
		{"TLS on unix", ClientConfig{Addr: "unix:///tmp/x.sock", TLS: true}, "TLS is for TCP"},
		{"short token", ClientConfig{Addr: "127.0.0.1:1", Token: "abc"}, "at least 16 bytes"},
		{"no address", ClientConfig{}, "no address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc, err := Dial(context.Background(), tc.cfg)
			if err == nil {
				cc.Close()
				t.Fatal("Dial succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want %q", err, tc.want)
			}
		})
	}
}

func TestDefaultSocket(t *testing.T) {
	if got := DefaultSocket("/var/lib/skillbox"); got != "unix:///var/lib/skillbox/skillbox.sock" {
		t.Fatalf("DefaultSocket = %q", got)
	}
	a, err := parseAddr(DefaultSocket("/var/lib/skillbox"))
	if err != nil || a.unixPath != "/var/lib/skillbox/skillbox.sock" {
		t.Fatalf("parseAddr(DefaultSocket) = %+v, %v", a, err)
	}
}

// pki is a throwaway CA with a server and client certificates, written as PEM files.
type pki struct {
	caCert          string
	srvCert, srvKey string
	cliCert, cliKey string
}

func newPKI(t *testing.T, dir, prefix string) *pki {
	t.Helper()
	ca := testpki.New(t, prefix+" test CA")
	p := &pki{caCert: ca.CertFile(t, dir, prefix+"ca.pem")}
	srv := testpki.ServerTemplate("127.0.0.1")
	srv.DNSNames, srv.Subject.CommonName = []string{"localhost"}, "skillbox server"
	p.srvCert, p.srvKey = ca.Files(t, dir, prefix+"srv", srv)
	p.cliCert, p.cliKey = ca.Files(t, dir, prefix+"cli", testpki.ClientTemplate("agent-1"))
	return p
}

func TestTLS(t *testing.T) {
	dir := shortDir(t)
	p := newPKI(t, dir, "a")
	other := newPKI(t, dir, "b") // a CA the server does not trust
	tokens := writeTokens(t, dir, "agent-2 "+goodToken+"\n")

	t.Run("server only", func(t *testing.T) {
		addr := serve(t, ServerConfig{Addr: "127.0.0.1:0", TLSCert: p.srvCert, TLSKey: p.srvKey}).Addr().String()
		wantCaller(t, ClientConfig{Addr: addr, CACert: p.caCert}, "tls:anonymous")
		// The client verifies the server: a different CA fails the handshake.
		wantCode(t, ClientConfig{Addr: addr, CACert: other.caCert}, codes.Unavailable, "certificate")
	})
	t.Run("client certificates required", func(t *testing.T) {
		addr := serve(t, ServerConfig{Addr: "127.0.0.1:0", TLSCert: p.srvCert, TLSKey: p.srvKey, ClientCA: p.caCert}).Addr().String()
		wantCaller(t, ClientConfig{Addr: addr, CACert: p.caCert, ClientCert: p.cliCert, ClientKey: p.cliKey}, "cert:agent-1")
		wantCode(t, ClientConfig{Addr: addr, CACert: p.caCert}, codes.Unavailable, "") // TLS 1.3: the alert may arrive as a broken pipe
		wantCode(t, ClientConfig{Addr: addr, CACert: p.caCert, ClientCert: other.cliCert, ClientKey: other.cliKey}, codes.Unavailable, "")
	})
	t.Run("client certificate or token", func(t *testing.T) {
		addr := serve(t, ServerConfig{Addr: "127.0.0.1:0", TLSCert: p.srvCert, TLSKey: p.srvKey, ClientCA: p.caCert, TokenFile: tokens}).Addr().String()
		wantCaller(t, ClientConfig{Addr: addr, CACert: p.caCert, ClientCert: p.cliCert, ClientKey: p.cliKey}, "cert:agent-1")
		wantCaller(t, ClientConfig{Addr: addr, CACert: p.caCert, Token: goodToken}, "token:agent-2")
		wantCode(t, ClientConfig{Addr: addr, CACert: p.caCert}, codes.Unauthenticated, "missing bearer token")
		// A wrong token is refused even alongside a good certificate.
		wantCode(t, ClientConfig{Addr: addr, CACert: p.caCert, ClientCert: p.cliCert, ClientKey: p.cliKey, Token: "wrong-token-0123456789"},
			codes.Unauthenticated, "invalid bearer token")
	})
}

func TestCertIdentity(t *testing.T) {
	for _, tc := range []struct {
		cert *x509.Certificate
		want string
	}{
		{&x509.Certificate{Subject: pkix.Name{CommonName: "agent-1"}, DNSNames: []string{"x"}}, "cert:agent-1"},
		{&x509.Certificate{DNSNames: []string{"agent.example"}}, "cert:agent.example"},
		{&x509.Certificate{EmailAddresses: []string{"a@example.org"}}, "cert:a@example.org"},
		{&x509.Certificate{}, ""},
	} {
		if got := certIdentity(tc.cert); got != tc.want {
			t.Errorf("certIdentity = %q, want %q", got, tc.want)
		}
	}
}
