package container_test

import (
	"context"
	"fmt"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/container"
	"github.com/skillbox-dev/skillbox/isolation/egress"
	"github.com/skillbox-dev/skillbox/manifest"
)

// A sandbox with the egress proxy for network grants and a warm pool of two
// containers per skill and grant shape. (Compiled, not run: it needs an engine and
// an image.)
func Example() {
	ctx := context.Background()
	proxy := egress.NewProxy()
	defer proxy.Close()
	sb, err := container.New(ctx, container.WithEgressProxy(proxy), container.WithWarmPool(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sb.Close(ctx)

	m := &manifest.Manifest{Name: "textstat", Sandbox: manifest.Sandbox{Container: &manifest.ContainerSandbox{
		Image: "image.tar", ID: "sha256:…", Command: []string{"/textstat"}}}}
	res, err := sb.Run(ctx, isolation.Call{
		ID:     "call-1",
		Skill:  isolation.Skill{Manifest: m, Dir: "/path/to/package", Digest: m.Sandbox.Container.ID},
		Input:  []byte(`{"text":"Hello, world."}`),
		Grant:  isolation.Grant{Network: []manifest.Origin{{Scheme: "https", Host: "api.example.com", Port: 443}}},
		Limits: isolation.Limits{Timeout: 5 * time.Second, Memory: 64 << 20, Output: 1 << 20, CPU: 0.5, Requests: 3},
	})
	fmt.Println(string(res.Output), isolation.ReasonOf(err), len(res.Egress))
}
