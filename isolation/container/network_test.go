package container

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/egress"
	"github.com/skillbox-dev/skillbox/manifest"
)

// startOrigin runs the test image's HTTP server in a container on a network of its
// own (a plain bridge the test creates) and returns its IP.
func startOrigin(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	label := map[string]string{"dev.skillbox.test": fmt.Sprint(os.Getpid())}
	name := "skillbox-test-origin-" + randomID()
	nw, err := env.cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Labels: label})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.cli.NetworkRemove(context.Background(), nw.ID) })
	c, err := env.cli.ContainerCreate(ctx, &container.Config{Image: env.hostileID, Cmd: []string{"serve"}, User: nobody, Labels: label},
		&container.HostConfig{NetworkMode: container.NetworkMode(name), CapDrop: []string{"ALL"}, ReadonlyRootfs: true}, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.cli.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
	})
	if err := env.cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	ins, err := env.cli.ContainerInspect(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	ip := ins.NetworkSettings.Networks[name].IPAddress
	waitFor(t, "origin server", func() bool {
		conn, err := net.DialTimeout("tcp", ip+":8080", time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	return ip
}

func TestNetwork(t *testing.T) {
	needEngine(t)
	proxy := egress.NewProxy()
	t.Cleanup(func() { proxy.Close() })
	s := newSandbox(t, WithEgressProxy(proxy), WithWarmPool(1))
	ip := startOrigin(t)
	// A service of the host's own, on every address: a network-granted container must
	// not reach it, only the proxy.
	hostLn, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hostLn.Close() })
	var hostConns atomic.Int32
	go func() {
		for {
			c, err := hostLn.Accept()
			if err != nil {
				return
			}
			hostConns.Add(1)
			c.Close()
		}
	}()
	hostPort := fmt.Sprint(hostLn.Addr().(*net.TCPAddr).Port)
	granted := func(c *isolation.Call) {
		c.Grant.Network = []manifest.Origin{{Scheme: "http", Host: ip, Port: 8080}}
		c.Limits.Requests = 5
		c.Limits.Response = 1 << 20
	}
	tests := []struct {
		name  string
		input string
		grant bool
		check func(t *testing.T, out map[string]any, res isolation.Result)
	}{
		{name: "no grant: direct connection fails", input: `{"mode":"dial","addr":"` + ip + `:8080"}`,
			check: func(t *testing.T, out map[string]any, _ isolation.Result) {
				if out["error"] == "" {
					t.Error("connected to the origin without a network grant")
				}
			}},
		{name: "no grant: proxy env absent", input: `{"mode":"env"}`,
			check: func(t *testing.T, out map[string]any, _ isolation.Result) {
				if strings.Contains(fmt.Sprint(out["env"]), "PROXY") {
					t.Errorf("proxy env without a grant: %v", out["env"])
				}
			}},
		{name: "granted: direct connection bypassing the proxy fails, at once", grant: true, input: `{"mode":"dial","addr":"` + ip + `:8080"}`,
			check: func(t *testing.T, out map[string]any, _ isolation.Result) {
				e, _ := out["error"].(string)
				if e == "" {
					t.Error("connected to the origin directly, bypassing the proxy")
				}
				// Refused (not a timeout): the skill learns at once that the way is shut.
				if env.noFirewall == nil && !strings.Contains(e, "connection refused") {
					t.Errorf("direct connection around the proxy: %q, want connection refused", e)
				}
			}},
		{name: "granted: origin reached through the proxy", grant: true, input: `{"mode":"get","url":"http://` + ip + `:8080/hi"}`,
			check: func(t *testing.T, out map[string]any, res isolation.Result) {
				if out["status"] != 200.0 || out["body"] != "hello from origin /hi" {
					t.Errorf("get = %v", out)
				}
				if len(res.Egress) != 1 || !res.Egress[0].Allowed || res.Usage.Requests != 1 {
					t.Errorf("egress = %+v usage = %+v", res.Egress, res.Usage)
				}
			}},
		{name: "granted: another origin is denied by the proxy", grant: true, input: `{"mode":"get","url":"http://` + ip + `:8081/"}`,
			check: func(t *testing.T, out map[string]any, res isolation.Result) {
				if out["status"] == 200.0 {
					t.Errorf("ungranted origin answered: %v", out)
				}
				if len(res.Egress) != 1 || res.Egress[0].Allowed || res.Usage.DeniedRequests != 1 {
					t.Errorf("egress = %+v usage = %+v", res.Egress, res.Usage)
				}
			}},
		{name: "granted: the proxy's port on the host is reachable", grant: true, input: `{"mode":"dialhost"}`,
			check: func(t *testing.T, out map[string]any, _ isolation.Result) {
				if out["error"] != "" {
					t.Errorf("cannot reach the egress proxy: %v", out["error"])
				}
			}},
		{name: "granted: other services of the host are not", grant: true, input: `{"mode":"dialhost","port":"` + hostPort + `"}`,
			check: func(t *testing.T, out map[string]any, _ isolation.Result) {
				needFirewall(t)
				// Refused at once, and the host service never saw a connection.
				if e, _ := out["error"].(string); !strings.Contains(e, "connection refused") {
					t.Errorf("host service other than the proxy: %q, want connection refused", e)
				}
				if hostConns.Load() != 0 {
					t.Errorf("the host service saw %d connections", hostConns.Load())
				}
			}},
		{name: "granted: dns lookup of an outside name fails locally", grant: true, input: `{"mode":"lookup","name":"example.invalid"}`,
			check: func(t *testing.T, out map[string]any, _ isolation.Result) {
				if e, _ := out["error"].(string); !strings.Contains(e, "127.0.0.1:53") {
					t.Errorf("lookup error = %q, want a refusal by the container's own loopback", e)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, warm := range []bool{false, true} {
				call := hostileCall(tc.input)
				if tc.grant {
					granted(&call)
				}
				if warm {
					if err := s.Prewarm(context.Background(), call); err != nil {
						t.Fatalf("Prewarm: %v", err)
					}
				}
				res, err := s.Run(context.Background(), call)
				t.Logf("warm=%v Run: err=%v output=%.300s", warm, err, res.Output)
				if err != nil {
					t.Fatalf("Run: %v; logs %q", err, tail(res.Logs, 300))
				}
				tc.check(t, decode(t, res.Output), res)
			}
		})
	}
}

// TestNetworkNeedsProxy: a network grant without a proxy is refused, not run open.
func TestNetworkNeedsProxy(t *testing.T) {
	s := newSandbox(t)
	call := hostileCall(`{"mode":"echo"}`)
	call.Grant.Network = []manifest.Origin{{Scheme: "http", Host: "127.0.0.1", Port: 8080}}
	if _, err := s.Run(context.Background(), call); isolation.ReasonOf(err) != isolation.ReasonNotGranted {
		t.Fatalf("Run = %v, want NOT_GRANTED", err)
	}
}

// TestWarmContainerHasNoNetworkBeforeItsCall: a warm container runs before its call
// exists, but its proxy token only works once the call starts, and nothing it tried
// earlier is charged to the call.
func TestWarmContainerHasNoNetworkBeforeItsCall(t *testing.T) {
	needEngine(t)
	proxy := egress.NewProxy()
	t.Cleanup(func() { proxy.Close() })
	s := newSandbox(t, WithEgressProxy(proxy), WithWarmPool(1))
	ip := startOrigin(t)
	call := hostileCall(`{"mode":"precall"}`)
	call.Grant.Network = []manifest.Origin{{Scheme: "http", Host: ip, Port: 8080}}
	call.Grant.Env = map[string]string{"PRECALL_URL": "http://" + ip + ":8080/early"}
	call.Limits.Requests, call.Limits.Response = 5, 1<<20
	if err := s.Prewarm(context.Background(), call); err != nil {
		t.Fatal(err)
	}
	// Give the warm container's program time to make its early request (a wait here
	// only makes the test meaningful; it asserts nothing about speed).
	time.Sleep(2 * time.Second)
	res, err := s.Run(context.Background(), call)
	if err != nil {
		t.Fatalf("Run: %v; logs %q", err, tail(res.Logs, 300))
	}
	out := decode(t, res.Output)
	if early, _ := out["early"].(string); !strings.Contains(early, "407") {
		t.Errorf("a request before the call got %q, want 407 from the proxy", early)
	}
	if len(res.Egress) != 0 || res.Usage.Requests != 0 {
		t.Errorf("pre-call traffic charged to the call: %+v", res.Egress)
	}
}

// TestReadWriteGrantsAreNeverWarm: a container that could change the operator's files
// is never started before its call.
func TestReadWriteGrantsAreNeverWarm(t *testing.T) {
	s := newSandbox(t, WithWarmPool(1))
	call := hostileCall(`{"mode":"echo"}`)
	call.Grant.Files = []isolation.Mount{{Guest: "/data", Host: t.TempDir(), Access: manifest.AccessReadWrite}}
	if err := s.Prewarm(context.Background(), call); err == nil || !strings.Contains(err.Error(), "never served warm") {
		t.Fatalf("Prewarm with a read-write grant: %v", err)
	}
	if n := pooled(t, s); n != 0 {
		t.Fatalf("%d warm containers for a read-write grant", n)
	}
}
