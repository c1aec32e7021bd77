package container

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/skillbox-dev/skillbox/isolation"
)

// skillNet is one skill's internal network and the proxy listener on its gateway.
type skillNet struct {
	id, name  string
	gateway   string
	ln        net.Listener
	unconfine func() // removes the host firewall rules
	users     int    // containers created on it and not yet removed
}

// proxyURL is what HTTP_PROXY holds for a container on this network.
func (n *skillNet) proxyURL(token string) string {
	return "http://skillbox:" + token + "@" + n.ln.Addr().String()
}

// writeResolvConf writes the resolv.conf every container gets: a name server on the
// container's own loopback, where nothing listens, so a lookup fails at once and no
// query leaves the container.
func (s *Sandbox) writeResolvConf() error {
	s.resolv = filepath.Join(s.dir, "resolv.conf")
	err := os.WriteFile(s.resolv, []byte("nameserver 127.0.0.1\noptions attempts:1 timeout:1\n"), 0o644)
	if err != nil {
		return fmt.Errorf("write resolv.conf: %w", err)
	}
	return nil
}

// acquireNetwork returns the skill's internal network, creating it (and starting the
// proxy on its gateway address) on first use, and counts one more user.
func (s *Sandbox) acquireNetwork(ctx context.Context, skill string) (*skillNet, error) {
	if s.proxy == nil {
		return nil, isolation.Errorf(isolation.ReasonNotGranted, "skill %s has a network grant but this sandbox has no egress proxy", skill)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, isolation.Errorf(isolation.ReasonInternal, "sandbox closed")
	}
	if n := s.networks[skill]; n != nil {
		n.users++
		return n, nil
	}
	name := "skillbox-" + skill + "-" + s.instance
	// Our own bridge name (at most 15 bytes), so the host firewall can name it.
	bridge := "sbx" + randomID()[:12]
	resp, err := s.cli.NetworkCreate(ctx, name, network.CreateOptions{
		Driver:   "bridge",
		Internal: true,
		Labels:   s.labels(skill, ""),
		Options: map[string]string{
			// Containers of one skill must not talk to each other either.
			"com.docker.network.bridge.enable_icc": "false",
			"com.docker.network.bridge.name":       bridge,
		},
	})
	if err != nil {
		return nil, &isolation.Error{Reason: isolation.ReasonInternal, Msg: "create network " + name, Err: err}
	}
	n := &skillNet{id: resp.ID, name: name}
	ins, err := s.cli.NetworkInspect(ctx, resp.ID, network.InspectOptions{})
	if err == nil {
		for _, c := range ins.IPAM.Config {
			if ip := net.ParseIP(c.Gateway); ip != nil && ip.To4() != nil {
				n.gateway = c.Gateway
			}
		}
		if n.gateway == "" {
			err = fmt.Errorf("network %s has no IPv4 gateway", name)
		}
	}
	if err == nil {
		// The proxy listens on the gateway only: the one host address the internal
		// network is meant to reach.
		n.ln, err = net.Listen("tcp", net.JoinHostPort(n.gateway, "0"))
	}
	if err == nil {
		n.unconfine, err = s.confine(ctx, bridge, n.gateway, n.ln.Addr().(*net.TCPAddr).Port)
		if err != nil {
			n.ln.Close()
		}
	}
	if err != nil {
		_ = s.cli.NetworkRemove(context.WithoutCancel(ctx), resp.ID)
		return nil, &isolation.Error{Reason: isolation.ReasonInternal, Msg: "set up network " + name, Err: err}
	}
	go func() { _ = s.proxy.Serve(n.ln) }()
	n.users = 1
	s.networks[skill] = n
	return n, nil
}

// releaseNetwork counts one user less.
func (s *Sandbox) releaseNetwork(n *skillNet) {
	s.mu.Lock()
	n.users--
	s.mu.Unlock()
}

func (s *Sandbox) removeNetwork(ctx context.Context, n *skillNet) error {
	if n.ln != nil {
		n.ln.Close()
	}
	stale, err := removeNet(context.WithoutCancel(ctx), s.cli, n.id, 8)
	if stale {
		// An empty network holds nothing and lets nothing out: reported, not an error.
		s.log.Warn("the Docker engine will not remove an empty network of this sandbox: it still counts an endpoint of a container that is gone (a restart of the engine clears it)",
			"network", n.name, "err", err)
		err = nil
	}
	// Gone already: a watchdog signalled twice removes the objects of a live server.
	if err != nil && !isGone(err) {
		// The host firewall rules that confine it stay while anything may still be
		// attached; Reap removes them once its bridge is gone.
		return fmt.Errorf("remove network %s: %w", n.name, err)
	}
	if n.unconfine != nil {
		n.unconfine()
	}
	return nil
}

// removeNet removes a network of skillbox's, every endpoint on which is skillbox's
// own. The engine refuses one that still counts an endpoint ("active endpoints"): a
// container of it can still be on its way out (a removal the engine reported "already
// in progress" counts as done for the container, not yet for its endpoint), so it
// waits and tries again up to waits times, cutting off what the network lists from the
// fourth try on, and last cuts off what is listed and tries once more. stale reports
// an empty network the engine still refuses (err is that refusal): Docker 20.10 can go
// on counting an endpoint of a container that is gone until the engine restarts
// (moby/moby#42119).
func removeNet(ctx context.Context, cli *client.Client, id string, waits int) (stale bool, err error) {
	err = cli.NetworkRemove(ctx, id)
	for attempt := 0; activeEndpoints(err) && attempt < waits; attempt++ {
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
		if attempt >= 3 {
			disconnectAll(ctx, cli, id)
		}
		err = cli.NetworkRemove(ctx, id)
	}
	if !activeEndpoints(err) {
		return false, err
	}
	attached := disconnectAll(ctx, cli, id)
	if err = cli.NetworkRemove(ctx, id); activeEndpoints(err) && attached == 0 {
		return true, err
	}
	return false, err
}

// activeEndpoints says whether err is the engine refusing to remove a network that
// still counts an endpoint.
func activeEndpoints(err error) bool {
	return err != nil && strings.Contains(err.Error(), "active endpoints")
}

// disconnectAll force-disconnects every container the network lists and returns how
// many it listed (-1 if it could not be inspected).
func disconnectAll(ctx context.Context, cli *client.Client, id string) int {
	in, err := cli.NetworkInspect(ctx, id, network.InspectOptions{})
	if err != nil {
		return -1
	}
	for c := range in.Containers {
		_ = cli.NetworkDisconnect(ctx, id, c, true)
	}
	return len(in.Containers)
}
