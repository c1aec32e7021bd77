package transport

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The cost of peer credentials + interceptors + Caller, side by side with a bare
// insecure unix socket server (the baseline).
func BenchmarkUnaryUnix(b *testing.B) {
	run := func(b *testing.B, lis net.Listener, opts []grpc.ServerOption, cc *grpc.ClientConn) {
		s := grpc.NewServer(opts...)
		healthpb.RegisterHealthServer(s, health.NewServer())
		go s.Serve(lis)
		defer s.Stop()
		defer cc.Close()
		hc := healthpb.NewHealthClient(cc)
		b.SetParallelism(16) // 32 callers on 2 cores
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("baseline-insecure", func(b *testing.B) {
		sock := filepath.Join(b.TempDir(), "b.sock")
		lis, err := net.Listen("unix", sock)
		if err != nil {
			b.Fatal(err)
		}
		cc, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		run(b, lis, nil, cc)
	})
	b.Run("transport", func(b *testing.B) {
		addr := "unix://" + filepath.Join(b.TempDir(), "t.sock")
		lis, opts, err := Listen(context.Background(), ServerConfig{Addr: addr})
		if err != nil {
			b.Fatal(err)
		}
		cc, err := Dial(context.Background(), ClientConfig{Addr: addr})
		if err != nil {
			b.Fatal(err)
		}
		run(b, lis, opts, cc)
	})
}
