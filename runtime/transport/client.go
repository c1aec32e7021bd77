package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/local"
)

// ClientConfig says how to reach a server. Paths are PEM files.
type ClientConfig struct {
	// Addr is gRPC's form: "unix:///abs/path.sock" or "host:port". Empty means
	// DefaultSocket(Home).
	Addr string
	// Home is $SKILLBOX_HOME, used only when Addr is empty.
	Home string
	// TLS dials with TLS 1.3; implied by CACert or ClientCert. Without CACert the system
	// roots verify the server.
	TLS bool
	// CACert verifies the server's certificate.
	CACert string
	// ClientCert and ClientKey are presented to a server that asks for them.
	ClientCert, ClientKey string
	// ServerName overrides the name checked in the server's certificate (default: the
	// host of Addr).
	ServerName string
	// Token is sent as "authorization: Bearer TOKEN" on every call.
	Token string
}

// Dial makes a client connection (grpc.NewClient: it connects lazily, on the first call).
// Without TLS it dials only a unix socket or a loopback address, through grpc's local
// credentials, which also refuse a connection that turns out not to be local.
func Dial(ctx context.Context, cfg ClientConfig, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	addrStr := cfg.Addr
	if addrStr == "" {
		if cfg.Home == "" {
			return nil, errors.New("dial: no address and no home for the default socket")
		}
		addrStr = DefaultSocket(cfg.Home)
	}
	addr, err := parseAddr(addrStr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	useTLS := cfg.TLS || cfg.CACert != "" || cfg.ClientCert != "" || cfg.ClientKey != ""
	if cfg.Token != "" && (strings.ContainsAny(cfg.Token, " \t\r\n") || len(cfg.Token) < MinTokenLength) {
		return nil, fmt.Errorf("dial %s: token must be at least %d bytes without spaces", addrStr, MinTokenLength)
	}

	var creds credentials.TransportCredentials
	plainLoopback := false
	switch {
	case useTLS && addr.isUnix():
		return nil, fmt.Errorf("dial %s: TLS is for TCP; a unix socket is guarded by its file mode", addrStr)
	case useTLS:
		tc, err := clientTLS(cfg)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addrStr, err)
		}
		creds = credentials.NewTLS(tc)
	case addr.isUnix():
		creds = local.NewCredentials()
	default:
		host, _, _ := net.SplitHostPort(addr.hostPort)
		if !loopbackHost(host) {
			return nil, fmt.Errorf("dial %s: refusing plaintext TCP to a non-loopback address: set a CA certificate (TCP needs TLS)", addrStr)
		}
		creds, plainLoopback = local.NewCredentials(), true
	}

	all := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if cfg.Token != "" {
		// grpc sends per-RPC credentials only over a transport it deems private; a
		// loopback TCP connection is not encrypted but never leaves the host.
		all = append(all, grpc.WithPerRPCCredentials(bearerCreds{token: cfg.Token, requireSecurity: !plainLoopback}))
	}
	all = append(all, opts...)
	cc, err := grpc.NewClient(addr.target(), all...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addrStr, err)
	}
	return cc, nil
}

func clientTLS(cfg ClientConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: cfg.ServerName}
	if cfg.CACert != "" {
		pool, err := loadPool(cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("CA certificate: %w", err)
		}
		tc.RootCAs = pool
	}
	if (cfg.ClientCert == "") != (cfg.ClientKey == "") {
		return nil, errors.New("client certificate needs both a certificate and a key")
	}
	if cfg.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.ClientCert, cfg.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

type bearerCreds struct {
	token           string
	requireSecurity bool
}

func (b bearerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearerCreds) RequireTransportSecurity() bool { return b.requireSecurity }
