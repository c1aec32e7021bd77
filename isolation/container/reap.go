package container

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"syscall"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
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
	f := filters.NewArgs(filters.Arg("label", LabelManaged+"=true"))
	cs, err := s.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("reap: list containers: %w", err)
	}
	var errs []error
	for _, c := range cs {
		if s.orphan(c.Labels) {
			if err := s.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !isGone(err) {
				errs = append(errs, fmt.Errorf("reap container %.12s: %w", c.ID, err))
			}
		}
	}
	ns, err := s.cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("reap: list networks: %w", err))...)
	}
	for _, n := range ns {
		if s.orphan(n.Labels) {
			if err := s.cli.NetworkRemove(ctx, n.ID); err != nil && !isGone(err) {
				errs = append(errs, fmt.Errorf("reap network %s: %w", n.Name, err))
			}
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
