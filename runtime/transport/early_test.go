package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// A unary call's request message is read whole (up to gRPC's 4 MiB) before any
// interceptor runs, so an interceptor that authenticates sees a peer only after the
// server has taken its message: a peer with no token could hold 4 MiB in each of a
// connection's streams (1024) on each of the listener's connections (512). The
// listener refuses an unauthenticated stream at its headers instead, before it reads a
// byte of its message: the refusal (UNAUTHENTICATED) is on the wire before the answer
// to a PING sent after the headers, and the server opens no window for the message.
func TestUnauthenticatedStreamRefusedAtHeaders(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a test timeout only
	defer cancel()
	dir := shortDir(t)
	refused := make(chan string, 8)
	lis := serve(t, ServerConfig{Addr: "127.0.0.1:0", TokenFile: writeTokens(t, dir, "agent-1 "+goodToken+"\n"),
		Refused: func(_ context.Context, peer, method string, _ error) { refused <- peer + " " + method }})

	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/grpc.health.v1.Health/Check"},
		{":authority", "localhost"}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	// No authorization header. The stream stays open: its message is still to come.
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	// The first bytes of a 4 MiB message: the length prefix, and one frame of it.
	var prefix [5]byte
	binary.BigEndian.PutUint32(prefix[1:], 4<<20-16)
	if err := fr.WriteData(1, false, append(prefix[:], make([]byte, 16<<10-5)...)); err != nil {
		t.Fatal(err)
	}
	if err := fr.WritePing(false, [8]byte{'p'}); err != nil {
		t.Fatal(err)
	}

	status, window := "", uint32(0)
	for status == "" {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 1 {
				window += f.Increment
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 {
				for _, hf := range f.RegularFields() {
					if hf.Name == "grpc-status" {
						status = hf.Value
					}
				}
			}
		case *http2.PingFrame:
			if f.IsAck() && status == "" {
				t.Fatalf("VULNERABLE: the server answered a PING sent after an unauthenticated stream's headers, "+
					"and has not refused the stream: it waits to read the stream's 4 MiB message first (window opened for it: %d bytes)", window)
			}
		}
	}
	if status != "16" {
		t.Fatalf("the unauthenticated stream ended with grpc-status %s, want 16 (UNAUTHENTICATED)", status)
	}
	if window != 0 {
		t.Errorf("the server opened %d bytes of window for the refused stream's message, want none", window)
	}
	select {
	case r := <-refused:
		if r != "tcp:127.0.0.1 /grpc.health.v1.Health/Check" {
			t.Errorf("refusal reported as %q, want the peer and the method", r)
		}
	case <-ctx.Done():
		t.Error("the refusal was not reported")
	}
}
