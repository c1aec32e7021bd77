package server_test

import (
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/skillbox-dev/skillbox/runtime/server"
)

// A peer that connects to the gRPC door and never completes its handshake (TLS, or the
// HTTP/2 preface) holds one of the listener's bounded places for HandshakeTimeout, as
// on the HTTP doors (10 s), not grpc-go's default of 120 s: 512 silent connections
// renewed every 2 minutes would otherwise keep the door full.
func TestSilentConnectionClosedAfterHandshakeTimeout(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(server.GRPCOptions()...)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	c, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The bound only turns a hang into a failure: between the 10 s bound and grpc-go's 120 s.
	if err := c.SetReadDeadline(time.Now().Add(60 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, c) // the server's settings, then its close
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("a connection that sent nothing was still open after a minute")
	}
}
