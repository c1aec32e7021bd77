package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// An HTTP door holds at most its bound of connections: past it a connection is not
// served (Accept waits; the connection waits in the kernel's queue) until one closes,
// and then it is. Closing the listener ends an Accept that waits at the bound. Under
// TLS the bound sits below the handshake, so handlers still see r.TLS.
func TestHTTPConnectionBound(t *testing.T) {
	dir := shortDir(t)
	p := newPKI(t, dir, "a")
	tokens := writeTokens(t, dir, "agent "+goodToken+"\n")
	for _, tc := range []struct {
		name string
		cfg  ServerConfig
	}{
		{"plaintext", ServerConfig{Addr: "127.0.0.1:0", TokenFile: tokens}},
		{"tls", ServerConfig{Addr: "127.0.0.1:0", TLSCert: p.srvCert, TLSKey: p.srvKey}},
	} {
		t.Run(tc.name, func(t *testing.T) { testConnectionBound(t, tc.cfg, p.caCert) })
	}
}

func testConnectionBound(t *testing.T, cfg ServerConfig, caFile string) {
	const bound = 2
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a test timeout only
	defer cancel()

	// full receives when the server's Accept finds every place taken: from then on no
	// connection is accepted until one closes.
	full := make(chan struct{}, 1)
	lis, err := listenHTTP(context.Background(), cfg, bound, func() {
		select {
		case full <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		id  string
		tls bool
	}
	entered := make(chan entry, 8)
	release := map[string]chan struct{}{"1": make(chan struct{}), "2": make(chan struct{}), "3": make(chan struct{})}
	defer func() {
		for _, ch := range release {
			select {
			case <-ch:
			default:
				close(ch)
			}
		}
	}()
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Path[1:]
		entered <- entry{id, r.TLS != nil}
		<-release[id]
		io.WriteString(w, "ok")
	})}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(lis) }()
	defer hs.Close()

	scheme, tlsConf := "http", (*tls.Config)(nil)
	if lis.TLS() {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		scheme, tlsConf = "https", &tls.Config{RootCAs: pool}
	}
	// One transport per request: each request is a connection of its own.
	transports := map[string]*http.Transport{}
	type result struct {
		id  string
		err error
	}
	done := make(chan result, 3)
	get := func(id string) {
		tr := &http.Transport{TLSClientConfig: tlsConf}
		transports[id] = tr
		t.Cleanup(tr.CloseIdleConnections)
		req, _ := http.NewRequestWithContext(ctx, "GET", scheme+"://"+lis.Addr().String()+"/"+id, nil)
		go func() {
			res, err := tr.RoundTrip(req)
			if err == nil {
				_, err = io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
			done <- result{id, err}
		}()
	}
	waitEntered := func(want ...string) {
		t.Helper()
		got := map[string]bool{}
		for range want {
			select {
			case e := <-entered:
				if e.tls != lis.TLS() {
					t.Errorf("request %s: r.TLS set %v, want %v", e.id, e.tls, lis.TLS())
				}
				got[e.id] = true
			case <-ctx.Done():
				t.Fatalf("waiting for requests %v to be served: only %v were", want, got)
			}
		}
		for _, id := range want {
			if !got[id] {
				t.Fatalf("served %v, want %v", got, want)
			}
		}
	}

	get("1")
	get("2")
	waitEntered("1", "2")
	select {
	case <-full:
	case <-ctx.Done():
		t.Fatalf("Accept never waited with %d connections open: the door is not bounded", bound)
	}
	// A third connection is made (the kernel completes it) and sends its request, but
	// the server accepts nothing while two are open.
	get("3")
	select {
	case e := <-entered:
		t.Fatalf("request %s served past the bound of %d connections", e.id, bound)
	default:
	}

	// The first finishes and its client closes the connection: the third is served.
	close(release["1"])
	if r := <-done; r.id != "1" || r.err != nil {
		t.Fatalf("request %s finished first (%v), want 1", r.id, r.err)
	}
	transports["1"].CloseIdleConnections()
	waitEntered("3")

	// Two open again: Accept waits at the bound, and closing the server ends it.
	select {
	case <-full:
	case <-ctx.Done():
		t.Fatal("Accept did not wait at the bound again")
	}
	hs.Close()
	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve: %v, want ErrServerClosed", err)
		}
	case <-ctx.Done():
		t.Fatal("Serve did not return after Close with Accept waiting at the bound")
	}
}

// A gRPC TCP listener holds at most its bound of connections, below TLS: with the bound
// taken no further connection is accepted (a call on it waits) until one closes, and
// then its call is served.
func TestGRPCConnectionBound(t *testing.T) {
	dir := shortDir(t)
	p := newPKI(t, dir, "a")
	const bound = 2
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a test timeout only
	defer cancel()
	full := make(chan struct{}, 1)
	lis, opts, err := listen(ctx, ServerConfig{Addr: "127.0.0.1:0", TLSCert: p.srvCert, TLSKey: p.srvKey}, bound, func() {
		select {
		case full <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s, health.NewServer())
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(lis) }()
	defer func() { s.Stop(); <-done }()

	dial := func() *grpc.ClientConn {
		cc, err := Dial(ctx, ClientConfig{Addr: lis.Addr().String(), CACert: p.caCert})
		if err != nil {
			t.Fatal(err)
		}
		return cc
	}
	call := func(cc *grpc.ClientConn) error {
		_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	var ccs []*grpc.ClientConn
	for range bound {
		cc := dial()
		defer cc.Close()
		if err := call(cc); err != nil {
			t.Fatal(err)
		}
		ccs = append(ccs, cc)
	}
	select {
	case <-full:
	case <-ctx.Done():
		t.Fatalf("Accept never waited with %d connections open: the listener is not bounded", bound)
	}
	third := dial()
	defer third.Close()
	answered := make(chan error, 1)
	go func() { answered <- call(third) }()
	ccs[0].Close() // a place frees: the third connection is accepted and served
	if err := <-answered; err != nil {
		t.Fatalf("the call waiting for a place: %v", err)
	}
}
