package host

import (
	"net/http"
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
