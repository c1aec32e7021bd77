package host_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/host"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

// A skillbox on a fresh home, without Docker: open it, serve the gRPC door on the
// home's socket, ask it what is installed, and stop it (a drain, as on SIGTERM).
func Example() {
	dir, err := os.MkdirTemp("", "skillbox-home-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	home, err := host.ResolveHome(dir)
	if err != nil {
		fmt.Println(err)
		return
	}

	serving := make(chan string, 1)
	h, err := host.Open(context.Background(), host.Options{
		Home:        home,
		NoContainer: true,
		Events: func(ev host.Event) {
			if ev.Kind == host.Serving {
				serving <- ev.Door
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	fmt.Println("container sandbox left out:", errors.Is(h.SandboxError(manifest.KindContainer), host.ErrNotOpened))

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- h.Serve(ctx, host.ServeOptions{Drain: 5 * time.Second}) }()
	select {
	case door := <-serving:
		fmt.Println("serving:", door)
	case err := <-done:
		fmt.Println(err)
		return
	}

	conn, err := transport.Dial(context.Background(), transport.ClientConfig{Addr: home.Socket()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	list, err := pb.NewSkillsClient(conn).List(context.Background(), &pb.ListSkillsRequest{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("skills installed:", len(list.GetSkills()))

	stop()
	fmt.Println("stopped:", <-done)
	// Output:
	// container sandbox left out: true
	// serving: grpc
	// skills installed: 0
	// stopped: <nil>
}
