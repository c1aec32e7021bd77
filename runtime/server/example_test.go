package server_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/server"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

// The gRPC door over an engine: a unix socket in a fresh skill home, the caller named
// by the kernel, and a refusal as a gRPC code with a machine-readable reason.
func Example() {
	ctx := context.Background()
	home, _ := os.MkdirTemp("", "sb") // short: a socket path must fit in 107 bytes
	defer os.RemoveAll(home)

	eng, err := engine.Open(ctx, engine.Config{Home: home}) // no sandboxes: nothing is installed
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	lis, opts, err := transport.Listen(ctx, transport.ServerConfig{Home: home})
	if err != nil {
		log.Fatal(err)
	}
	g := grpc.NewServer(append(opts, server.GRPCOptions()...)...)
	server.New(eng, transport.Caller).Register(g)
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()

	cc, err := transport.Dial(ctx, transport.ClientConfig{Home: home})
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	skills := pb.NewSkillsClient(cc)
	list, err := skills.List(ctx, &pb.ListSkillsRequest{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("skills:", len(list.GetSkills()))

	_, err = skills.Invoke(ctx, &pb.InvokeRequest{Name: "fetch", InputJson: `{}`})
	st := status.Convert(err)
	for _, d := range st.Details() {
		if detail, ok := d.(*pb.ErrorDetail); ok {
			fmt.Println(st.Code(), detail.GetReason())
		}
	}
	// Output:
	// skills: 0
	// NotFound NOT_FOUND
}
