package host_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/skillbox-dev/skillbox/internal/testpki"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/host"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

// connectTLS is an MCP session over https, trusting roots, with a bearer token and a
// client certificate when given.
func connectTLS(t *testing.T, url string, roots *x509.CertPool, token string, cert *tls.Certificate) (*sdk.ClientSession, error) {
	t.Helper()
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}
	if cert != nil {
		base.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	var rt http.RoundTripper = base
	if token != "" {
		rt = bearer{token, base}
	}
	c := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &sdk.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: rt}, MaxRetries: -1}, nil)
	if err == nil {
		t.Cleanup(func() { cs.Close() })
	}
	return cs, err
}

// TestMCPHTTPS: the MCP door over TLS, client certificates optional: a token or a
// certificate names the caller, a client that does not trust the server's CA gets no
// session, and TLS with neither tokens nor client certificates is warned about.
func TestMCPHTTPS(t *testing.T) {
	ca, dir := testpki.New(t, "mcp test CA"), t.TempDir()
	caFile := ca.CertFile(t, dir, "ca.pem")
	srvCert, srvKey := ca.Files(t, dir, "server", testpki.ServerTemplate("127.0.0.1"))
	cliCertFile, cliKeyFile := ca.Files(t, dir, "client", testpki.ClientTemplate("agent-1"))
	cliCert, err := tls.LoadX509KeyPair(cliCertFile, cliKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	setup := func(s *mcpServer) {
		s.install(t, "echo", "../engine/testdata/echo.wasm", echoBody, nil)
		s.install(t, "secret", "../engine/testdata/echo.wasm", echoBody, &approval.Grant{Callers: []string{"token:alice", "cert:agent-1"}})
	}

	t.Run("token or client certificate", func(t *testing.T) {
		s := startMCPWith(t, setup, func(tokens string) transport.ServerConfig {
			return transport.ServerConfig{TLSCert: srvCert, TLSKey: srvKey, ClientCA: caFile, TokenFile: tokens}
		})
		if !strings.HasPrefix(s.url, "https://127.0.0.1:") {
			t.Fatalf("MCP door at %s, want https on loopback", s.url)
		}
		for _, ev := range s.ev.all() {
			if ev.Kind == host.AnonymousTLS {
				t.Errorf("anonymous-TLS warning with a client CA and a token file: %+v", ev)
			}
		}
		byToken, err := connectTLS(t, s.url, ca.Pool, aliceToken, nil)
		if err != nil {
			t.Fatal(err)
		}
		byCert, err := connectTLS(t, s.url, ca.Pool, "", &cliCert)
		if err != nil {
			t.Fatal(err)
		}
		bob, err := connectTLS(t, s.url, ca.Pool, bobToken, nil)
		if err != nil {
			t.Fatal(err)
		}
		for who, cs := range map[string]*sdk.ClientSession{"token:alice": byToken, "cert:agent-1": byCert} {
			if got := strings.Join(toolNames(t, cs), ","); got != "echo,secret" {
				t.Errorf("%s's tools %s, want echo,secret", who, got)
			}
			res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "secret", Arguments: map[string]any{"via": who}})
			if err != nil || res.IsError {
				t.Errorf("%s calls secret over https: %v %+v", who, err, res)
			}
		}
		if got := strings.Join(toolNames(t, bob), ","); got != "echo" {
			t.Errorf("bob's tools %s, want echo alone", got)
		}
		if _, err := connectTLS(t, s.url, x509.NewCertPool(), aliceToken, nil); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("a client that does not trust the server's CA: %v, want a certificate error", err)
		}
		if _, err := connectTLS(t, s.url, ca.Pool, "", nil); err == nil {
			t.Error("a client with neither token nor certificate got a session")
		}
	})

	t.Run("anonymous TLS is warned about", func(t *testing.T) {
		s := startMCPWith(t, setup, func(string) transport.ServerConfig {
			return transport.ServerConfig{TLSCert: srvCert, TLSKey: srvKey}
		})
		var warned []host.Event
		for _, ev := range s.ev.all() {
			if ev.Kind == host.AnonymousTLS {
				warned = append(warned, ev)
			}
		}
		// gRPC is on the unix socket: the MCP door alone is anonymous.
		if len(warned) != 1 || !strings.HasPrefix(warned[0].Door, "mcp https://127.0.0.1:") || strings.Contains(warned[0].Door, "grpc") {
			t.Fatalf("anonymous-TLS warnings %+v, want one naming the mcp door alone", warned)
		}
		anon, err := connectTLS(t, s.url, ca.Pool, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(toolNames(t, anon), ","); got != "echo" {
			t.Errorf("tls:anonymous's tools %s, want echo (secret names its callers)", got)
		}
	})
}
