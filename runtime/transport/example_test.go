package transport_test

import (
	"context"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/skillbox-dev/skillbox/runtime/transport"
)

// A server on the default socket of a skillbox home, and a client that finds it with no
// address given. Handlers read the caller with transport.Caller(ctx).
func Example() {
	home, _ := os.MkdirTemp("", "sb")
	defer os.RemoveAll(home)
	ctx := context.Background()

	lis, opts, err := transport.Listen(ctx, transport.ServerConfig{Home: home})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(lis)
	defer srv.Stop()

	cc, err := transport.Dial(ctx, transport.ClientConfig{Home: home})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cc.Close()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	fmt.Println(resp.GetStatus(), err)
	// Output: SERVING <nil>
}
