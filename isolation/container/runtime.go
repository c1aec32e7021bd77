package container

import (
	"context"
	"errors"
	"fmt"
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

// Runtime is the OCI runtime the sandbox's containers run under (resolved by New: the
// engine's default when WithRuntime named none).
func (s *Sandbox) Runtime() string { return s.runtime }

// resolveRuntime checks that the engine knows the wanted runtime, or takes its default.
func (s *Sandbox) resolveRuntime(ctx context.Context) error {
	if strings.ContainsAny(s.runtime, " \t\n\x00/") {
		return fmt.Errorf("container runtime %q: want a name the docker engine lists (docker info: Runtimes), not a path", s.runtime)
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
		return nil
	}
	var known []string
	for name := range info.Runtimes {
		known = append(known, name)
	}
	slices.Sort(known)
	if !slices.Contains(known, s.runtime) {
		return fmt.Errorf("%w: container runtime %q is not one the docker engine lists (it has: %s); "+
			"register it in the engine's daemon.json \"runtimes\" and reload dockerd (SIGHUP), see docs/gvisor.md",
			ErrUnknownRuntime, s.runtime, strings.Join(known, ", "))
	}
	return nil
}
