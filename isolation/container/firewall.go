package container

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// The internal network's bridge gives its containers one host address, the gateway,
// where the egress proxy listens. Without more, a container could also reach every
// other service the host runs on that address or on 0.0.0.0. The host firewall closes
// that: packets arriving from the bridge are rejected unless they go to the proxy's
// port. Rules carry a comment naming this sandbox, so they can be found and removed.

// confine installs the rules for one network and returns how to remove them.
func (s *Sandbox) confine(ctx context.Context, bridge, gateway string, port int) (func(), error) {
	if s.noFirewall {
		return func() {}, nil
	}
	tag := "skillbox:" + s.instance
	accept := []string{"INPUT", "-i", bridge, "-p", "tcp", "-d", gateway, "--dport", strconv.Itoa(port),
		"-m", "comment", "--comment", tag, "-j", "ACCEPT"}
	// REJECT rather than DROP: a refused connection fails at once inside the skill
	// instead of hanging until its own timeout.
	reject := []string{"INPUT", "-i", bridge, "-m", "comment", "--comment", tag, "-j", "REJECT"}
	// Insert the REJECT first, then the ACCEPT above it: there is never a moment when
	// the bridge's traffic to the host is open.
	if err := iptables(ctx, append([]string{"-I"}, reject...)...); err != nil {
		return nil, err
	}
	if err := iptables(ctx, append([]string{"-I"}, accept...)...); err != nil {
		_ = iptables(context.WithoutCancel(ctx), append([]string{"-D"}, reject...)...)
		return nil, err
	}
	rules := [][]string{accept, reject}
	// Docker drops what an internal network sends elsewhere (FORWARD), silently, so a
	// connection around the proxy would hang; rejecting it in DOCKER-USER makes it fail
	// fast. Best effort: Docker's own rules still drop it if this one cannot be added.
	forward := []string{"DOCKER-USER", "-i", bridge, "-m", "comment", "--comment", tag, "-j", "REJECT"}
	if iptables(ctx, append([]string{"-I"}, forward...)...) == nil {
		rules = append(rules, forward)
	}
	return func() {
		bg := context.WithoutCancel(ctx)
		for _, r := range rules {
			_ = iptables(bg, append([]string{"-D"}, r...)...)
		}
	}, nil
}

// iptables runs one iptables command, waiting for the xtables lock.
func iptables(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "iptables", append([]string{"-w", "5"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("iptables %s: %v: %s (confining container networks needs root and iptables; "+
			"the operator may opt out with WithoutHostFirewallUnsafe)", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
