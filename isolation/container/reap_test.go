package container

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
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
	// The dead process's call had a read-write grant, cut short before its sweep.
	grant := t.TempDir()
	if err := os.Symlink("/etc/shadow", filepath.Join(grant, "link-to-host-shadow")); err != nil {
		t.Fatal(err)
	}
	mk := func(labels map[string]string) (string, string) {
		hc := &container.HostConfig{NetworkMode: "none"}
		if labels[LabelPID] == deadPID {
			hc.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: grant, Target: "/out"}}
		}
		c, err := env.cli.ContainerCreate(ctx, &container.Config{Image: env.hostileID, Labels: labels}, hc, nil, nil, "")
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
	// Private directories: of a dead process (reaped), of a live one (pid 1, kept),
	// and one that only looks like it (kept).
	deadDir, err := os.MkdirTemp("", tempPrefix+deadPID+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(deadDir) })
	if err := os.WriteFile(filepath.Join(deadDir, "resolv.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, prefix := range []string{tempPrefix + "1-", tempPrefix + "x" + deadPID + "-"} {
		d, err := os.MkdirTemp("", prefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		kept = append(kept, d)
	}
	newSandbox(t) // reaps in New
	if _, err := os.Lstat(deadDir); err == nil {
		t.Errorf("private directory of a dead process survived Reap: %s", deadDir)
	}
	for _, d := range kept {
		if _, err := os.Lstat(d); err != nil {
			t.Errorf("Reap removed %s: %v", d, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(grant, "link-to-host-shadow")); err == nil {
		t.Error("a link in a read-write grant of a crashed call survived Reap")
	}
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
