package container

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

func (s *Sandbox) labels(skill, call string) map[string]string {
	l := map[string]string{
		LabelManaged:  "true",
		LabelSkill:    skill,
		LabelInstance: s.instance,
		LabelPID:      s.pid,
		LabelHost:     s.host,
	}
	if call != "" {
		l[LabelCall] = call
	}
	return l
}

// Reap removes containers and networks labelled by skillbox on this host whose owning
// process is gone: the leftovers of a crash. Objects of live skillbox processes
// (another server, a concurrent test) are left alone.
func (s *Sandbox) Reap(ctx context.Context) error {
	_, err := reap(ctx, s.cli, reapScope{
		label: LabelManaged + "=true", mine: s.orphan, self: s.pid,
		firewall: !s.noFirewall, ruleTag: "skillbox:",
		quarantine: func(dir string, err error) {
			s.grants.setDirty(canonical(dir), &quarantine{left: sweepLeft(dir, err)})
		},
		stale: func(name string, err error) {
			s.log.Warn("an empty network of a dead skillbox process could not be removed; the Docker engine still counts an endpoint on it (a restart of the engine clears it)",
				"network", name, "err", err)
		},
	})
	return err
}

// reapScope says what one reap removes.
type reapScope struct {
	label string                              // the objects listed: key=value
	mine  func(labels map[string]string) bool // which of them to remove; nil: all
	self  string                              // the pid whose private directory is kept
	// firewall also removes host firewall rules whose comment holds ruleTag and
	// whose bridge is gone.
	firewall bool
	ruleTag  string
	// quarantine is told of a read-write grant the sweep could not clean; nil in the
	// watchdog, whose process ends (the next call's own sweep before it runs catches it).
	quarantine func(dir string, err error)
	// stale is told of an empty network the engine will not remove (it still counts
	// an endpoint of a container that is gone); nil: that is an error like any other.
	stale func(name string, err error)
}

// reap is the one removal of leftovers, shared by Reap at start (every dead
// process's objects) and the watchdog (one sandbox's objects, once its server is
// gone). It force-removes the containers (sweeping the read-write grants of each),
// then the networks, then the firewall rules of bridges that are gone and the private
// directories of dead processes. It returns how many containers and networks it
// removed or found already going.
func reap(ctx context.Context, cli *client.Client, sc reapScope) (int, error) {
	mine := func(l map[string]string) bool { return sc.mine == nil || sc.mine(l) }
	f := filters.NewArgs(filters.Arg("label", sc.label))
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return 0, fmt.Errorf("reap: list containers: %w", err)
	}
	var errs []error
	n := 0
	for _, c := range cs {
		if !mine(c.Labels) {
			continue
		}
		n++
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isGone(err) {
			errs = append(errs, fmt.Errorf("reap container %.12s: %w", c.ID, err))
			continue
		}
		// A call cut short by the crash never had its read-write grants swept: do it
		// now that its container is gone. Which hard links the call made is not known
		// any more, so hard links are left; links, special files and setuid bits go.
		// What cannot be cleaned quarantines the directory (see grants.go) rather than
		// stopping the server: only calls that grant it are refused.
		for _, m := range c.Mounts {
			if m.Type == mount.TypeBind && m.RW && m.Destination != "/etc/resolv.conf" {
				if err := sweepGrant(m.Source, func(string, uint64) bool { return true }); err != nil && sc.quarantine != nil {
					sc.quarantine(m.Source, err)
				}
			}
		}
	}
	errs = append(errs, reapTempDirs(sc.self))
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return n, errors.Join(append(errs, fmt.Errorf("reap: list networks: %w", err))...)
	}
	for _, nw := range ns {
		if !mine(nw.Labels) {
			continue
		}
		n++
		// Its containers are gone (removed above): no waiting for them.
		stale, err := removeNet(ctx, cli, nw.ID, 0)
		if stale && sc.stale != nil {
			// An empty network of a dead process confines nothing and holds nothing:
			// reported, not allowed to stop the sandbox from starting.
			sc.stale(nw.Name, err)
			continue
		}
		if err != nil && !isGone(err) {
			errs = append(errs, fmt.Errorf("reap network %s: %w", nw.Name, err))
		}
	}
	if sc.firewall {
		if err := reapFirewall(ctx, sc.ruleTag); err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// reapFirewall removes host firewall rules whose comment holds tag and whose bridge
// is gone (its network was reaped above, or its process died before removing them).
func reapFirewall(ctx context.Context, tag string) error {
	var lines []string
	for _, chain := range []string{"INPUT", "DOCKER-USER"} {
		out, err := exec.CommandContext(ctx, "iptables", "-w", "5", "-S", chain).Output()
		if err != nil {
			continue // no iptables or no such chain here: no rules of ours to reap
		}
		lines = append(lines, strings.Split(string(out), "\n")...)
	}
	var errs []error
	for _, line := range lines {
		// iptables -S quotes comments; ours hold no spaces, so unquoting each field
		// gives back the arguments that delete the rule.
		f := strings.Fields(strings.ReplaceAll(line, `"`, ""))
		if len(f) < 2 || f[0] != "-A" || !strings.Contains(line, tag) {
			continue
		}
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "-i" {
				if _, err := net.InterfaceByName(f[i+1]); err != nil {
					f[0] = "-D"
					errs = append(errs, iptables(ctx, f...))
				}
				break
			}
		}
	}
	return errors.Join(errs...)
}

// tempPrefix starts the name of each Sandbox's private host directory, followed by
// the owning process id and a dash.
const tempPrefix = "skillbox-container-"

// reapTempDirs removes the private directories of dead skillbox processes (this
// user's only) from the temporary directory.
func reapTempDirs(self string) error {
	matches, err := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	if err != nil {
		return fmt.Errorf("reap temporary directories: %w", err)
	}
	var errs []error
	for _, dir := range matches {
		pidStr, _, ok := strings.Cut(strings.TrimPrefix(filepath.Base(dir), tempPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid <= 0 || pidStr == self || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue
		}
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
			continue // not ours: another user's, in a shared directory
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("reap %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}

// orphan reports whether an object belongs to a skillbox process on this host that
// no longer runs.
func (s *Sandbox) orphan(labels map[string]string) bool {
	if labels[LabelHost] != s.host {
		return false
	}
	pid, err := strconv.Atoi(labels[LabelPID])
	if err != nil || pid <= 0 {
		return true
	}
	if strconv.Itoa(pid) == s.pid {
		return false
	}
	err = syscall.Kill(pid, 0)
	return errors.Is(err, syscall.ESRCH)
}
