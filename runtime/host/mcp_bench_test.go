package host_test

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"github.com/skillbox-dev/skillbox/runtime/mcp"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

// BenchmarkDoors calls the same tiny wasm skill through both doors of one served host,
// side by side in one run: gRPC Invoke on the unix socket and an MCP tools/call over
// Streamable HTTP on loopback, 32 callers each (every MCP caller with its own client
// and connection pool, as separate agents would have), in the session revision
// (today's clients) and the stateless one.
// calls/s is the figure to compare; cpu-µs/call (this process's CPU time, clients
// and server together, per call) is the one that does not depend on what else the
// machine runs: on a machine short of CPU, calls/s follows it.
func BenchmarkDoors(b *testing.B) {
	s := startMCP(b, func(s *mcpServer) { s.install(b, "echo", "../engine/testdata/echo.wasm", echoBody, nil) })
	ctx := context.Background()
	const callers = 32

	b.Run("grpc", func(b *testing.B) {
		cc, err := transport.Dial(ctx, transport.ClientConfig{Home: s.kit.Dir})
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Close()
		client := pb.NewSkillsClient(cc)
		run(b, callers, func(int) error {
			_, err := client.Invoke(ctx, &pb.InvokeRequest{Name: "echo", InputJson: `{"a":1}`})
			return err
		})
	})
	for _, rev := range []struct{ name, version string }{{"mcp", sessionRevision}, {"mcp-stateless", mcp.StatelessRevision}} {
		b.Run(rev.name, func(b *testing.B) { benchMCP(b, s.url, rev.version, callers) })
	}
}

// benchMCP makes tools/call requests over Streamable HTTP from callers sessions of the
// SDK's client, speaking protocol revision version.
func benchMCP(b *testing.B, url, version string, callers int) {
	ctx := context.Background()
	// The sessions end with this run: the benchmark function runs more than once
	// (b.N = 1 first), and sessions left open by an earlier run would keep their
	// connections and streams (goroutines the GC scans) through the measured one.
	sessions := make([]*sdk.ClientSession, callers)
	for i := range sessions {
		sessions[i] = connectAs(b, url, aliceToken, nil, &sdk.ClientSessionOptions{ProtocolVersion: version})
		defer sessions[i].Close()
	}
	run(b, callers, func(i int) error {
		res, err := sessions[i].CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"a": 1}})
		if err == nil && res.IsError {
			b.Errorf("tool error: %v", res.Content)
		}
		return err
	})
}

// cpuTime is the CPU time this process has used (user and system): on a machine
// shared with other work, CPU per call is the figure that does not depend on the load.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// run makes b.N calls from n callers and reports calls/s.
func run(b *testing.B, n int, call func(caller int) error) {
	var next sync.Mutex
	left := b.N
	start := time.Now()
	var wg sync.WaitGroup
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				if left == 0 {
					next.Unlock()
					return
				}
				left--
				next.Unlock()
				if err := call(i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/call")
}
