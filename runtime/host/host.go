package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/container"
	"github.com/skillbox-dev/skillbox/isolation/egress"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/hostlite"
)

// Options say how Open assembles a skillbox.
type Options struct {
	// Home is the skill home (ResolveHome).
	Home Home

	// NoSandboxes opens the engine without any sandbox, for commands that only read or
	// write the operator's state (approve, review, disable, enable): nothing is
	// compiled and Docker is not asked. A call is refused UNAVAILABLE.
	NoSandboxes bool
	// NoContainer does not connect to Docker: container skills are refused
	// (UNAVAILABLE), and SandboxError says why.
	NoContainer bool
	// WarmContainers keeps up to this many started containers per skill and grant
	// shape, hiding creation time (0: every call creates its container).
	WarmContainers int
	// WatchdogArgs, if set, are the arguments with which this executable runs
	// RunContainerWatchdog (the CLI's hidden subcommand): a process of its own that
	// removes the container sandbox's containers if this one dies unclosed. Without
	// it, a crash leaves them until the next start.
	WatchdogArgs []string
	// NoHostFirewallUnsafe does not confine network-granted containers to the egress
	// proxy's port with iptables (for a server that is not root). Such a container
	// can then reach any service the host runs on the network's gateway address or on
	// 0.0.0.0.
	NoHostFirewallUnsafe bool
	// ContainerRuntime is the Docker engine's OCI runtime that runs container skills,
	// e.g. "runsc" (gVisor, docs/gvisor.md); empty is the engine's default (runc). A
	// name the engine does not list fails Open, naming those it does.
	ContainerRuntime string
	// Kubernetes, if set, runs container skills on a cluster instead of the local
	// Docker engine and shares the kill switch and approvals through its API server
	// (see KubeOptions).
	Kubernetes *KubeOptions
	// Logger receives the sandboxes' own trouble (a watchdog that exited), not the
	// skills' logs; nil discards it.
	Logger *slog.Logger

	// MaxConcurrent and QueueWait bound the calls in flight per skill (engine.Config);
	// zero takes the engine's defaults.
	MaxConcurrent int
	// NoApprovers: no door an approver could decide through reaches this host (a
	// one-call CLI); calls under oversight are refused at once (engine.Config).
	NoApprovers bool
	QueueWait   time.Duration
	// AuditCommitDelay bounds how long a batch of audit records waits for more
	// concurrent calls' records (engine.Config): zero takes the engine's default,
	// negative never waits.
	AuditCommitDelay time.Duration

	// Events is told what the host does and what goes wrong without stopping it (a
	// sandbox that could not be opened, a reload, a drain), one event at a time; nil
	// drops them. The words are the caller's.
	Events func(Event)
}

// EventKind says what an Event reports.
type EventKind int

// The events a Host reports.
const (
	// SandboxUnavailable: the sandbox of kind Sandbox could not be opened (Err); its
	// skills are refused with UNAVAILABLE.
	SandboxUnavailable EventKind = iota + 1
	// NoWatchdog: the container watchdog cannot be started (Err): a crash leaves
	// containers running until the next start.
	NoWatchdog
	// AnonymousTLS: a door serves TLS without client certificates or tokens, so every
	// caller is tls:anonymous and approvals without callers are open to anyone who
	// reaches the port. Told once, before Serving; Door names each such door and its
	// address ("grpc 10.0.0.5:7443, mcp https://10.0.0.5:7444/mcp").
	AnonymousTLS
	// Serving: a door (Door) accepts calls on Addr.
	Serving
	// ServingMetrics: Prometheus metrics are served on http://Addr/metrics.
	ServingMetrics
	// Reloaded: trust.yaml, the approvals and the kill-switch state were read again;
	// Packages are installed.
	Reloaded
	// ReloadFailed: a reload was refused (Err); the previous state is kept.
	ReloadFailed
	// Draining: the doors stopped accepting calls; the calls in flight may finish.
	Draining
	// DrainTimedOut: calls were still running when the drain time ended; they are
	// cancelled, each recorded as it ends.
	DrainTimedOut
	// ShutdownFailed: cancelling the calls still running did not finish (Err).
	ShutdownFailed
)

// Event is something a Host reports through Options.Events.
type Event struct {
	Kind     EventKind
	Sandbox  string // SandboxUnavailable: the kind
	Door     string // Serving: "grpc" or "mcp"; AnonymousTLS: the doors and addresses
	Addr     string // Serving, ServingMetrics: unix:///path.sock or host:port
	Packages int    // Reloaded
	Err      error
}

// Host is a running skillbox: its sandboxes by kind and its engine on one home. It
// is safe for concurrent use; Close it when done.
type Host struct {
	home        Home
	opts        Options
	engine      *engine.Engine
	sandboxes   map[string]isolation.Sandbox
	unavailable map[string]error // kind → why it has no sandbox
	closers     []func(context.Context) error
	stopFirst   []func() // before the engine closes (the replica mirror)

	eventMu sync.Mutex // one event at a time
}

// ErrNotOpened is the SandboxError of a sandbox the options left out (NoSandboxes,
// NoContainer).
var ErrNotOpened = errors.New("not opened")

// Open opens the sandboxes and the engine on opts.Home. A sandbox that cannot be
// opened is reported (SandboxUnavailable) and its kind refused; only the wasm sandbox
// and the engine must open, and a ContainerRuntime the Docker engine does not know is
// an error.
func Open(ctx context.Context, opts Options) (*Host, error) {
	if opts.Home.root == "" {
		return nil, errNoHome
	}
	h := &Host{home: opts.Home, opts: opts, sandboxes: map[string]isolation.Sandbox{}, unavailable: map[string]error{}}
	var kinds []string
	switch {
	case opts.NoSandboxes:
		h.unavailable[manifest.KindWasm] = fmt.Errorf("wasm sandbox: %w", ErrNotOpened)
		h.unavailable[manifest.KindContainer] = fmt.Errorf("container sandbox: %w", ErrNotOpened)
	case opts.NoContainer:
		kinds = []string{manifest.KindWasm}
		h.unavailable[manifest.KindContainer] = fmt.Errorf("container sandbox: %w (Docker was not asked)", ErrNotOpened)
	default:
		kinds = []string{manifest.KindWasm, manifest.KindContainer}
	}
	for _, kind := range kinds {
		sb, closer, err := h.openSandbox(ctx, kind)
		// A runtime the engine does not know is the operator's mistake, not a sandbox
		// that is down: refusing to start says so at once.
		if err != nil && (kind == manifest.KindWasm || errors.Is(err, container.ErrUnknownRuntime)) {
			_ = h.Close()
			return nil, err
		}
		if err != nil {
			h.unavailable[kind] = err
			h.emit(Event{Kind: SandboxUnavailable, Sandbox: kind, Err: err})
			continue
		}
		h.sandboxes[kind] = sb
		h.closers = append(h.closers, closer)
	}
	guardWasmPaths(h.sandboxes)
	eng, err := engine.Open(ctx, engine.Config{Home: opts.Home.root, Sandboxes: h.sandboxes,
		MaxConcurrent: opts.MaxConcurrent, QueueWait: opts.QueueWait, NoApprovers: opts.NoApprovers,
		AuditCommitDelay: opts.AuditCommitDelay})
	if err != nil {
		_ = h.Close()
		return nil, err
	}
	h.engine = eng
	if err := h.startReplica(ctx); err != nil {
		_ = h.Close()
		return nil, err
	}
	return h, nil
}

// guardWasmPaths makes the wasm sandbox open a call's granted directories under the
// container sandbox's guard, if both are open: a container call can make links in its
// read-write directories, and a wasm grant inside one must not be opened through them.
func guardWasmPaths(sandboxes map[string]isolation.Sandbox) {
	ws, ok := sandboxes[manifest.KindWasm].(interface{ GuardPaths(isolation.PathGuard) })
	if g, gok := sandboxes[manifest.KindContainer].(isolation.PathGuard); ok && gok {
		ws.GuardPaths(g)
	}
}

// openSandbox opens the sandbox of kind with its options and what closes it.
func (h *Host) openSandbox(ctx context.Context, kind string) (isolation.Sandbox, func(context.Context) error, error) {
	switch kind {
	case manifest.KindWasm:
		ws, err := hostlite.OpenWasm(ctx, h.home.root)
		if err != nil {
			return nil, nil, err
		}
		return ws, ws.Close, nil
	case manifest.KindContainer:
		if h.opts.Kubernetes != nil {
			return h.openKube(ctx)
		}
		return h.openContainer(ctx)
	}
	return nil, nil, fmt.Errorf("no %s sandbox in this build", kind)
}

// openContainer connects to Docker, with an egress proxy of its own through which
// network-granted containers go (the same origin policy as the wasm host function).
func (h *Host) openContainer(ctx context.Context) (isolation.Sandbox, func(context.Context) error, error) {
	copts := []container.Option{container.WithWarmPool(h.opts.WarmContainers)}
	if h.opts.Logger != nil {
		copts = append(copts, container.WithLogger(h.opts.Logger))
	}
	if h.opts.WatchdogArgs != nil {
		if exe, err := os.Executable(); err == nil {
			copts = append(copts, container.WithWatchdog(append([]string{exe}, h.opts.WatchdogArgs...)))
		} else {
			h.emit(Event{Kind: NoWatchdog, Err: err})
		}
	}
	if h.opts.NoHostFirewallUnsafe {
		copts = append(copts, container.WithoutHostFirewallUnsafe())
	}
	if h.opts.ContainerRuntime != "" {
		copts = append(copts, container.WithRuntime(h.opts.ContainerRuntime))
	}
	proxy := egress.NewProxy()
	cs, err := container.New(ctx, append([]container.Option{container.WithEgressProxy(proxy)}, copts...)...)
	if err != nil {
		proxy.Close()
		return nil, nil, fmt.Errorf("container sandbox: %w", err)
	}
	closer := func(ctx context.Context) error {
		err := cs.Close(ctx)
		proxy.Close()
		return err
	}
	return cs, closer, nil
}

// Home is the skill home the host was opened on.
func (h *Host) Home() Home { return h.home }

// Engine is the host's engine, for commands that act on it directly (install,
// approve, run NAME).
func (h *Host) Engine() *engine.Engine { return h.engine }

// SandboxError says why the host has no sandbox of kind (wrapping ErrNotOpened for one
// the options left out), or nil when it has one.
func (h *Host) SandboxError(kind string) error {
	if _, ok := h.sandboxes[kind]; ok {
		return nil
	}
	if err, ok := h.unavailable[kind]; ok {
		return err
	}
	return fmt.Errorf("no %s sandbox in this build", kind)
}

// Reload re-reads trust.yaml, the approvals and the kill-switch state, as SIGHUP does
// in Serve, and reports it (Reloaded, or ReloadFailed with the previous state kept).
func (h *Host) Reload(ctx context.Context, by string) (int, error) {
	n, err := h.engine.Reload(ctx, by)
	if err != nil {
		h.emit(Event{Kind: ReloadFailed, Err: err})
	} else {
		h.emit(Event{Kind: Reloaded, Packages: n})
	}
	return n, err
}

// Close closes the engine (its audit log), then the sandboxes. Calls should have
// ended (Serve drains them).
func (h *Host) Close() error {
	var errs []error
	for _, stop := range h.stopFirst {
		stop()
	}
	h.stopFirst = nil
	if h.engine != nil {
		errs = append(errs, h.engine.Close())
		h.engine = nil
	}
	// Not the caller's context: closing removes containers, which must happen even
	// after a cancelled one.
	ctx := context.Background()
	for i := len(h.closers) - 1; i >= 0; i-- {
		errs = append(errs, h.closers[i](ctx))
	}
	h.closers = nil
	return errors.Join(errs...)
}

func (h *Host) emit(ev Event) {
	if h.opts.Events == nil {
		return
	}
	h.eventMu.Lock()
	defer h.eventMu.Unlock()
	h.opts.Events(ev)
}

// Author runs `skillbox run DIR`'s unverified calls: the engine's author path over
// the one sandbox a package's kind needs.
type Author = hostlite.Author

// OpenAuthor opens only the sandbox of kind (a wasm skill never waits for Docker),
// with the home's compile cache, and the engine's author path over it. Of opts only
// Home and the container options are used.
func OpenAuthor(ctx context.Context, opts Options, kind string) (*Author, error) {
	if opts.Home.root == "" {
		return nil, errNoHome
	}
	h := &Host{home: opts.Home, opts: opts}
	sb, closer, err := h.openSandbox(ctx, kind)
	if err != nil {
		return nil, err
	}
	return hostlite.NewAuthor(engine.NewAuthor(map[string]isolation.Sandbox{kind: sb}, nil), closer), nil
}

// RunContainerWatchdog is the body of the process WatchdogArgs starts: it reads the
// server's end of the pipe on stdin and, when the server dies unclosed, removes the
// containers, networks and firewall rules of the sandbox instance, then returns. It
// sets the process's signal handling, so it is for a process of its own.
func RunContainerWatchdog(ctx context.Context, stdin io.Reader, instance string, log *slog.Logger) error {
	return container.RunWatchdog(ctx, stdin, instance, log)
}
