package container

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
)

// TestReap: New removes what a dead skillbox process left behind and leaves alone
// what a live one (here: this test process) owns.
func TestReap(t *testing.T) {
	needEngine(t)
	ctx := context.Background()
	host, _ := os.Hostname()
	owner := func(pid string) map[string]string {
		return map[string]string{LabelManaged: "true", LabelSkill: "hostile", LabelInstance: "reap-" + randomID(), LabelPID: pid, LabelHost: host}
	}
	const deadPID = "2147483647" // above any pid_max: never a live process
	mk := func(labels map[string]string) (string, string) {
		c, err := env.cli.ContainerCreate(ctx, &container.Config{Image: env.hostileID, Labels: labels}, &container.HostConfig{NetworkMode: "none"}, nil, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		n, err := env.cli.NetworkCreate(ctx, "skillbox-reap-"+randomID(), network.CreateOptions{Internal: true, Labels: labels})
		if err != nil {
			t.Fatal(err)
		}
		return c.ID, n.ID
	}
	deadC, deadN := mk(owner(deadPID))
	liveC, liveN := mk(owner(fmt.Sprint(os.Getpid())))
	t.Cleanup(func() {
		_ = env.cli.ContainerRemove(context.Background(), liveC, container.RemoveOptions{Force: true})
		_ = env.cli.NetworkRemove(context.Background(), liveN)
	})
	newSandbox(t) // reaps in New
	if _, err := env.cli.ContainerInspect(ctx, deadC); err == nil {
		t.Error("container of a dead process survived Reap")
	}
	if _, err := env.cli.NetworkInspect(ctx, deadN, network.InspectOptions{}); err == nil {
		t.Error("network of a dead process survived Reap")
	}
	if _, err := env.cli.ContainerInspect(ctx, liveC); err != nil {
		t.Errorf("container of a live process was reaped: %v", err)
	}
	if _, err := env.cli.NetworkInspect(ctx, liveN, network.InspectOptions{}); err != nil {
		t.Errorf("network of a live process was reaped: %v", err)
	}
}

// TestReapFirewall: a host firewall rule left by a network that is gone is removed.
func TestReapFirewall(t *testing.T) {
	needEngine(t)
	ctx := context.Background()
	rule := []string{"INPUT", "-i", "sbx" + randomID(), "-m", "comment", "--comment", "skillbox:" + randomID(), "-j", "DROP"}
	needFirewall(t)
	if err := iptables(ctx, append([]string{"-I"}, rule...)...); err != nil {
		t.Fatal(err)
	}
	s := newSandbox(t)
	if err := s.Reap(ctx); err != nil {
		t.Fatal(err)
	}
	if err := iptables(ctx, append([]string{"-C"}, rule...)...); err == nil {
		_ = iptables(ctx, append([]string{"-D"}, rule...)...)
		t.Fatal("a rule for a bridge that is gone survived Reap")
	}
}
