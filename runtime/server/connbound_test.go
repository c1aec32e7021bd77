package server_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/stats"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
	"github.com/skillbox-dev/skillbox/runtime/server"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

// connTracker is a stats.Handler that numbers the server's connections and tells which
// connection each RPC came on and when a connection ended.
type connTracker struct {
	next  atomic.Int64
	rpcs  chan rpcOn // method and connection of every RPC, in order
	ended chan int64 // connections closed
}

type rpcOn struct {
	method string
	conn   int64
}

type connKey struct{}

func (c *connTracker) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return context.WithValue(ctx, connKey{}, c.next.Add(1))
}

func (c *connTracker) HandleConn(ctx context.Context, s stats.ConnStats) {
	if _, ok := s.(*stats.ConnEnd); ok {
		c.ended <- ctx.Value(connKey{}).(int64)
	}
}

func (c *connTracker) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	c.rpcs <- rpcOn{info.FullMethodName, ctx.Value(connKey{}).(int64)}
	return ctx
}

func (c *connTracker) HandleRPC(context.Context, stats.RPCStats) {}

// A connection that carries no call for MaxConnectionIdle is closed, and its client
// sees it go; one with a Watch stream open is not, however long the stream stays open:
// grpc-go counts a connection idle only while no RPC is open on it.
func TestIdleConnectionClosedButNotAWatch(t *testing.T) {
	// Injected for the test; production uses server.MaxConnectionIdle.
	const idle = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a test timeout only
	defer cancel()

	eng := testkit.NewHome(t).Engine(t, engine.Config{})
	dir, err := os.MkdirTemp("", "sb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	addr := "unix://" + filepath.Join(dir, "s.sock")
	lis, gopts, err := transport.Listen(ctx, transport.ServerConfig{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	tr := &connTracker{rpcs: make(chan rpcOn, 16), ended: make(chan int64, 16)}
	gopts = append(gopts, server.GRPCOptionsWith(idle, server.MaxConcurrentStreams)...)
	g := grpc.NewServer(append(gopts, grpc.StatsHandler(tr))...)
	server.New(eng, transport.Caller).Register(g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	rpc := func(method string) int64 {
		t.Helper()
		select {
		case r := <-tr.rpcs:
			if !strings.HasSuffix(r.method, method) {
				t.Fatalf("RPC %s, want %s", r.method, method)
			}
			return r.conn
		case <-ctx.Done():
			t.Fatalf("no %s RPC reached the server", method)
			return 0
		}
	}
	dial := func() *grpc.ClientConn {
		cc, err := transport.Dial(ctx, transport.ClientConfig{Addr: addr})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}

	// watcher opens a Watch stream and keeps it open.
	watcher := dial()
	stream, err := pb.NewSkillsClient(watcher).Watch(ctx, &pb.WatchSkillsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	watchConn := rpc("/Watch")

	// An idler connects after the Watch is open, makes one call and then none; twice,
	// so that the watcher's connection has been open with the Watch for two idle times
	// when the second idler goes (a close of the watcher's connection would have been
	// decided an idle time before that).
	for range 2 {
		idler := dial()
		if _, err := healthpb.NewHealthClient(idler).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
		idleConn := rpc("/Check")
		if idleConn == watchConn {
			t.Fatal("the two clients share a connection")
		}
		for ended := int64(0); ended != idleConn; {
			select {
			case ended = <-tr.ended:
				if ended == watchConn {
					t.Fatal("the connection with a Watch stream open was closed")
				}
			case <-ctx.Done():
				t.Fatalf("a connection idle for %v was not closed", idle)
			}
		}
		// The idle client sees its connection go (GOAWAY), and would dial again on its next call.
		for s := idler.GetState(); s == connectivity.Ready; s = idler.GetState() {
			if !idler.WaitForStateChange(ctx, s) {
				t.Fatal("the idle client's connection stayed ready")
			}
		}
	}

	// The watcher's connection was not closed: a new call goes on the same connection
	// (after a GOAWAY it would go on a new one), and the stream still delivers.
	if _, err := healthpb.NewHealthClient(watcher).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if c := rpc("/Check"); c != watchConn {
		t.Fatalf("the watcher's call came on connection %d, want %d, the Watch's: its connection was closed", c, watchConn)
	}
	if s := watcher.GetState(); s != connectivity.Ready {
		t.Fatalf("the watcher's connection is %v, want READY", s)
	}
	if _, err := eng.Reload(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("the Watch stream after a reload: %v", err)
	}
}

// rawConn is an HTTP/2 client connection written frame by frame, to do what a grpc-go
// client never would: open streams past the server's bound, or flood it with pings.
type rawConn struct {
	t      *testing.T
	ctx    context.Context
	fr     *http2.Framer
	frames chan rawFrame
}

// rawFrame is what a test needs of a frame read (the framer reuses its frames).
type rawFrame struct {
	typ       http2.FrameType
	stream    uint32
	code      http2.ErrCode // RST_STREAM, GOAWAY
	endStream bool
	ack       bool
	settings  map[http2.SettingID]uint32
	fields    map[string]string // HEADERS
}

func dialRaw(t *testing.T, ctx context.Context, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	rc := &rawConn{t: t, ctx: ctx, fr: http2.NewFramer(c, c), frames: make(chan rawFrame, 64)}
	rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := rc.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(rc.frames)
		for {
			f, err := rc.fr.ReadFrame()
			if err != nil {
				return
			}
			rf := rawFrame{typ: f.Header().Type, stream: f.Header().StreamID}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				rf.ack = f.IsAck()
				rf.settings = map[http2.SettingID]uint32{}
				f.ForeachSetting(func(s http2.Setting) error { rf.settings[s.ID] = s.Val; return nil })
			case *http2.RSTStreamFrame:
				rf.code = f.ErrCode
			case *http2.GoAwayFrame:
				rf.code = f.ErrCode
			case *http2.MetaHeadersFrame:
				rf.endStream = f.StreamEnded()
				rf.fields = map[string]string{}
				for _, hf := range f.Fields {
					rf.fields[hf.Name] = hf.Value
				}
			case *http2.DataFrame:
				rf.endStream = f.StreamEnded()
			}
			select {
			case rc.frames <- rf:
			case <-ctx.Done():
				return
			}
		}
	}()
	return rc
}

// next is the next frame for which match is true; the others are skipped.
func (rc *rawConn) next(what string, match func(rawFrame) bool) rawFrame {
	rc.t.Helper()
	for {
		select {
		case f, ok := <-rc.frames:
			if !ok {
				rc.t.Fatalf("connection closed waiting for %s", what)
			}
			if match(f) {
				return f
			}
		case <-rc.ctx.Done():
			rc.t.Fatalf("no %s", what)
		}
	}
}

// call opens stream id as a health Check; with send it also sends the (empty) request
// and ends the stream, else the server's handler waits for the request.
func (rc *rawConn) call(id uint32, send bool) {
	rc.t.Helper()
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/grpc.health.v1.Health/Check"},
		{":authority", "localhost"}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: b.Bytes(), EndHeaders: true}); err != nil {
		rc.t.Fatal(err)
	}
	if send {
		rc.send(id)
	}
}

// send sends stream id's request, an empty message, and ends the stream.
func (rc *rawConn) send(id uint32) {
	rc.t.Helper()
	if err := rc.fr.WriteData(id, true, []byte{0, 0, 0, 0, 0}); err != nil {
		rc.t.Fatal(err)
	}
}

// One connection has at most its bound of streams open: the server says so in its
// SETTINGS and refuses a stream past it (REFUSED_STREAM, which a client may retry), and
// once a stream ends a new one is served. grpc-go's server has no bound by default.
func TestConcurrentStreamsBound(t *testing.T) {
	// Injected for the test; production uses server.MaxConcurrentStreams.
	const bound = 2
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a test timeout only
	defer cancel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(server.GRPCOptionsWith(server.MaxConnectionIdle, bound)...)
	healthpb.RegisterHealthServer(g, health.NewServer())
	go g.Serve(lis)
	t.Cleanup(g.Stop)

	rc := dialRaw(t, ctx, lis.Addr().String())
	s := rc.next("SETTINGS", func(f rawFrame) bool { return f.typ == http2.FrameSettings && !f.ack })
	if got, ok := s.settings[http2.SettingMaxConcurrentStreams]; !ok || got != bound {
		t.Fatalf("server SETTINGS_MAX_CONCURRENT_STREAMS %d (sent %v), want %d", got, ok, bound)
	}
	if err := rc.fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	// Streams 1 and 3 stay open (their handlers wait for the request); 5 is one too many.
	rc.call(1, false)
	rc.call(3, false)
	rc.call(5, true)
	f := rc.next("answer on stream 5", func(f rawFrame) bool { return f.stream == 5 })
	if f.typ != http2.FrameRSTStream || f.code != http2.ErrCodeRefusedStream {
		t.Fatalf("stream 5 past the bound of %d: %v %v, want RST_STREAM REFUSED_STREAM", bound, f.typ, f.code)
	}
	// Stream 1 ends; the next stream is served. (Should the server not yet have counted
	// stream 1 gone, it refuses the next as above; a client retries, and so does this.)
	rc.send(1)
	ok := func(id uint32) func(rawFrame) bool {
		return func(f rawFrame) bool { return f.stream == id && f.typ == http2.FrameHeaders && f.endStream }
	}
	if f := rc.next("trailers of stream 1", ok(1)); f.fields["grpc-status"] != "0" {
		t.Fatalf("stream 1 ended with %v", f.fields)
	}
	for id := uint32(7); ; id += 2 {
		rc.call(id, true)
		f := rc.next("answer on the next stream", func(f rawFrame) bool {
			return f.stream == id && (f.typ == http2.FrameRSTStream || ok(id)(f))
		})
		if f.typ == http2.FrameHeaders {
			if f.fields["grpc-status"] != "0" {
				t.Fatalf("stream %d ended with %v", id, f.fields)
			}
			break
		}
		if f.code != http2.ErrCodeRefusedStream {
			t.Fatalf("stream %d: RST_STREAM %v", id, f.code)
		}
	}
}

// grpc-go's default ping enforcement, which GRPCOptions keeps, ends a ping flood: a
// client that pings again and again with nothing between is sent GOAWAY
// ENHANCE_YOUR_CALM. (Not a change of this package: a guard against losing it.)
func TestPingFloodCutOff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a test timeout only
	defer cancel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(server.GRPCOptions()...)
	healthpb.RegisterHealthServer(g, health.NewServer())
	go g.Serve(lis)
	t.Cleanup(g.Stop)

	rc := dialRaw(t, ctx, lis.Addr().String())
	rc.next("SETTINGS", func(f rawFrame) bool { return f.typ == http2.FrameSettings && !f.ack })
	if err := rc.fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := rc.fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			break // the server has closed the connection
		}
	}
	if f := rc.next("GOAWAY", func(f rawFrame) bool { return f.typ == http2.FrameGoAway }); f.code != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("GOAWAY %v, want ENHANCE_YOUR_CALM", f.code)
	}
}
