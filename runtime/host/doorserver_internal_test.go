package host

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
)

// The HTTP doors (console, MCP) bound what an unauthenticated peer can hold: a
// request read slowly and a connection left idle are both cut off.
func TestDoorServerBoundsPeers(t *testing.T) {
	hs := doorServer(http.NotFoundHandler())
	if hs.ReadHeaderTimeout <= 0 || hs.ReadTimeout <= 0 || hs.IdleTimeout <= 0 {
		t.Fatalf("door server: ReadHeaderTimeout %v, ReadTimeout %v, IdleTimeout %v: want all bounded", hs.ReadHeaderTimeout, hs.ReadTimeout, hs.IdleTimeout)
	}
	// A write timeout would cut an MCP event stream (and a console page's slow
	// client) short: none is set.
	if hs.WriteTimeout != 0 {
		t.Fatalf("door server: WriteTimeout %v would end MCP streams", hs.WriteTimeout)
	}
}

// A door reads at most maxHeaderBytes of a request's headers (net/http's default is
// 1 MiB): before authenticating, a peer's headers are all it can make a door hold, on
// each of the door's connections (transport.MaxHTTPConns) for up to ReadHeaderTimeout.
// Headers past the bound are refused 431, never handed on.
func TestDoorServerBoundsHeaders(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reached := make(chan struct{}, 1)
	hs := doorServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached <- struct{}{}
		http.Error(w, "unauthenticated", http.StatusUnauthorized)
	}))
	go hs.Serve(lis)
	t.Cleanup(func() { hs.Close() })

	req, err := http.NewRequest(http.MethodGet, "http://"+lis.Addr().String()+"/mcp", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		req.Header.Set(fmt.Sprintf("X-Pad-%d", i), strings.Repeat("a", 1000))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a request with 100 KiB of headers: %s, want 431 (the door read them all and handed them on)", resp.Status)
	}
	select {
	case <-reached:
		t.Fatal("a request with 100 KiB of headers reached the handler")
	default:
	}
	// Ordinary headers are served.
	resp, err = http.Get("http://" + lis.Addr().String() + "/mcp")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an ordinary request: %s, want the handler's 401", resp.Status)
	}
}
