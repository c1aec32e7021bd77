package container

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// The OCI runtime that runs a sandbox's containers is one the Docker engine knows by
// name (`docker info`, Runtimes): runc by default, or e.g. runsc, gVisor's, which puts
// a user-space kernel between the skill and the host's (docs/gvisor.md). The engine
// registers runtimes in its daemon.json; skillbox only names one.

// ErrUnknownRuntime is returned by New when the engine does not know the runtime
// WithRuntime names.
var ErrUnknownRuntime = errors.New("the docker engine has no such runtime")

// WithRuntime runs every container of the sandbox under the engine's OCI runtime of
// this name (Docker's HostConfig.Runtime), e.g. "runsc" for gVisor. Empty (the
// default) is the engine's default runtime, runc unless its operator changed it. New
// fails with ErrUnknownRuntime, listing what the engine has, if it does not know the
// name.
func WithRuntime(name string) Option { return func(s *Sandbox) { s.runtime = name } }

// GVisorPidsAllowance is what a gVisor sandbox adds to a container's pids limit. The
// pids cgroup counts host tasks, and under gVisor those are its own kernel's (the
// sentry's threads, the gofer, the ptrace platform's stubs: about 40 in an idle
// sandbox here, more under load) besides one per running thread of the skill. Without
// it the default limit would leave the skill almost nothing, and a container of a
// small limit would not even start. Past the limit gVisor's kernel cannot make a host
// thread and the whole sandbox ends (the call fails, SKILL_FAILED): the skill never
// sees EAGAIN as under runc, but the host's tasks stay bounded.
const GVisorPidsAllowance = 64

// Runtime is the OCI runtime the sandbox's containers run under (resolved by New: the
// engine's default when WithRuntime named none).
func (s *Sandbox) Runtime() string { return s.runtime }

// GVisor says whether the sandbox's runtime is gVisor's runsc (by the path the engine
// runs for it, so a runtime registered under another name counts too).
func (s *Sandbox) GVisor() bool { return s.gvisor }

// pidsLimit is the pids limit given to Docker: the sandbox's, plus gVisor's own tasks.
func (s *Sandbox) pidsLimit() int64 {
	if s.gvisor {
		return s.pids + GVisorPidsAllowance
	}
	return s.pids
}

// resolveRuntime checks that the engine knows the wanted runtime, or takes its default.
func (s *Sandbox) resolveRuntime(ctx context.Context) error {
	if strings.ContainsAny(s.runtime, " \t\n\x00/") {
		return fmt.Errorf("runtime %q: want a name the docker engine lists (docker info: Runtimes), not a path", s.runtime)
	}
	info, err := s.cli.Info(ctx)
	if err != nil {
		return fmt.Errorf("docker info: %w", err)
	}
	if s.runtime == "" {
		s.runtime = info.DefaultRuntime
		if s.runtime == "" {
			s.runtime = "runc"
		}
	}
	if rt, ok := info.Runtimes[s.runtime]; ok {
		s.gvisor = path.Base(rt.Path) == "runsc"
	}
	var known []string
	for name := range info.Runtimes {
		known = append(known, name)
	}
	slices.Sort(known)
	if !slices.Contains(known, s.runtime) {
		return fmt.Errorf("runtime %q: %w (it has: %s); register it in the engine's daemon.json \"runtimes\" "+
			"and reload dockerd with SIGHUP (docs/gvisor.md)", s.runtime, ErrUnknownRuntime, strings.Join(known, ", "))
	}
	return nil
}
