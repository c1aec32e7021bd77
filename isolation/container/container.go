// Package container is the Docker sandbox: every call runs in a fresh, hardened,
// single-use container (non-root, no capabilities, read-only root, no network unless
// granted and then only through skillbox's egress proxy), optionally taken from a small
// warm pool of containers that are already started and blocked on their stdin.
package container

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/egress"
)

// Labels every object skillbox creates carries; Reap and the tests find them by these.
const (
	LabelManaged  = "dev.skillbox.managed"
	LabelSkill    = "dev.skillbox.skill"
	LabelCall     = "dev.skillbox.call"
	LabelInstance = "dev.skillbox.instance"
	LabelPID      = "dev.skillbox.pid"
	LabelHost     = "dev.skillbox.host"
)

// Limits of every container that no call sets. A call's zero limits are isolation's
// defaults (isolation.Limits.WithDefaults).
const (
	DefaultPids = 64
	// DefaultNofile caps the open files (and so sockets to the egress proxy) of each
	// process in a container; the engine's default is about a million.
	DefaultNofile = 1024
	nobody        = "65534:65534"
)

// ErrNoEngine is returned by New when no Docker engine answers.
var ErrNoEngine = errors.New("no docker engine answers")

// EgressProxy is the part of skillbox's egress proxy (*egress.Proxy) the sandbox needs:
// it serves one listener per internal network and maps a per-call token to a Guard.
type EgressProxy interface {
	Serve(l net.Listener) error
	// Reserve gives a token at container creation; bind attaches the call's Guard when
	// the call starts (a warm container's requests are refused until then). ca, when
	// not nil, is the container's CA: the proxy terminates TLS with it for the https
	// origins the Guard adds a secret to; release drops it.
	Reserve(ca *egress.CallCA) (token string, bind func(*egress.Guard), release func())
}

// Option configures a Sandbox.
type Option func(*Sandbox)

// WithClient uses an existing Docker client instead of one built from the environment.
func WithClient(c *client.Client) Option { return func(s *Sandbox) { s.cli = c } }

// WithEgressProxy sets the proxy that network-granted containers must go through.
// Without it a call with a network grant is refused (ReasonNotGranted).
func WithEgressProxy(p EgressProxy) Option { return func(s *Sandbox) { s.proxy = p } }

// WithGuardOptions passes options (e.g. a resolver) to every call's egress.Guard.
func WithGuardOptions(opts ...egress.Option) Option {
	return func(s *Sandbox) { s.guardOpts = append(s.guardOpts, opts...) }
}

// WithWarmPool keeps up to n started containers per skill and grant shape (0 disables).
func WithWarmPool(n int) Option { return func(s *Sandbox) { s.poolSize = n } }

// WithMaxWarmAge sets how long a warm container may wait for its call before it is
// replaced (default MaxWarmAge).
func WithMaxWarmAge(d time.Duration) Option { return func(s *Sandbox) { s.maxWarmAge = d } }

// WithPoolIdle sets how long a pool no call takes from is kept (default PoolIdle).
func WithPoolIdle(d time.Duration) Option { return func(s *Sandbox) { s.poolIdle = d } }

// WithMaxPools bounds how many distinct pools (skill × grant shape) are kept.
func WithMaxPools(n int) Option { return func(s *Sandbox) { s.maxPools = n } }

// WithPidsLimit sets the process/thread cap of every container.
func WithPidsLimit(n int64) Option { return func(s *Sandbox) { s.pids = n } }

// WithNofileLimit sets the open-file cap (soft and hard) of every container process.
func WithNofileLimit(n int64) Option { return func(s *Sandbox) { s.nofile = n } }

// WithoutReap skips removing leftovers of dead skillbox processes in New.
func WithoutReap() Option { return func(s *Sandbox) { s.noReap = true } }

// WithoutHostFirewallUnsafe skips the iptables rules that confine a network-granted
// container to the egress proxy's port on the host. Without them such a container can
// reach any service the host runs on the network's gateway address or on 0.0.0.0: use
// it only where skillbox cannot run iptables (not root) and the host runs nothing
// reachable there.
func WithoutHostFirewallUnsafe() Option { return func(s *Sandbox) { s.noFirewall = true } }

// Sandbox runs container skills. It is safe for concurrent use.
type Sandbox struct {
	cli        *client.Client
	ownClient  bool
	proxy      EgressProxy
	guardOpts  []egress.Option
	roots      []byte // PEM roots a container with a CA trusts besides it (WithContainerRoots)
	rootsSet   bool
	poolSize   int
	maxPools   int
	maxWarmAge time.Duration
	poolIdle   time.Duration
	pids       int64
	nofile     int64
	noReap     bool
	noFirewall bool
	runtime    string // OCI runtime (WithRuntime); New resolves "" to the engine's default
	gvisor     bool   // the runtime is gVisor's runsc
	log        *slog.Logger

	watchArgv    []string      // WithWatchdog; empty: none
	watchBackoff time.Duration // wait before the first restart of the watchdog
	watchStderr  *os.File      // the watchdog's standard error
	wd           *watchdog     // nil: no watchdog

	// rwUser is who calls with a read-write grant run as ("" = the image's user).
	rwUser   string
	grants   grantGuard
	instance string // random id of this Sandbox, on every label
	pid      string
	host     string
	dir      string // private host directory (the resolv.conf we mount)
	resolv   string

	bg       context.Context // background work: pool refills, removals
	bgCancel context.CancelFunc
	removals sync.WaitGroup
	// janitorDone is closed when the pools' janitor has stopped (nil: none runs).
	janitorDone chan struct{}

	mu       sync.Mutex
	closed   bool
	images   map[string]imageInfo
	networks map[string]*skillNet
	pools    map[string]*pool
}

var (
	_ isolation.Sandbox = (*Sandbox)(nil)
	_ EgressProxy       = (*egress.Proxy)(nil)
)

// New connects to the Docker engine (API version negotiated), checks it answers and
// removes leftovers of earlier, dead skillbox processes.
func New(ctx context.Context, opts ...Option) (*Sandbox, error) {
	s := &Sandbox{
		maxPools:   16,
		maxWarmAge: MaxWarmAge,
		poolIdle:   PoolIdle,
		pids:       DefaultPids,
		nofile:     DefaultNofile,
		images:     map[string]imageInfo{},
		networks:   map[string]*skillNet{},
		pools:      map[string]*pool{},
		pid:        fmt.Sprint(os.Getpid()),
		instance:   randomID(),
		log:        slog.New(slog.DiscardHandler),
		rwUser:     rwUser(),

		watchBackoff: watchdogBackoff,
		watchStderr:  os.Stderr,
	}
	for _, o := range opts {
		o(s)
	}
	if err := s.checkOptions(); err != nil {
		return nil, err
	}
	if !s.rootsSet {
		s.roots = hostRoots()
	}
	if s.cli == nil {
		c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			return nil, fmt.Errorf("docker client: %w", err)
		}
		s.cli, s.ownClient = c, true
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := s.cli.Ping(pctx); err != nil {
		s.closeClient()
		return nil, fmt.Errorf("%w: %v", ErrNoEngine, err)
	}
	s.cli.NegotiateAPIVersion(pctx)
	if err := s.resolveRuntime(pctx); err != nil {
		s.closeClient()
		return nil, err
	}
	s.host, _ = os.Hostname()
	// The pid in the name lets a later start tell a dead process's directory.
	dir, err := os.MkdirTemp("", tempPrefix+s.pid+"-")
	if err != nil {
		s.closeClient()
		return nil, fmt.Errorf("sandbox dir: %w", err)
	}
	s.dir = dir
	if err := s.writeResolvConf(); err != nil {
		s.closeClient()
		os.RemoveAll(dir)
		return nil, err
	}
	s.bg, s.bgCancel = context.WithCancel(context.WithoutCancel(ctx))
	if !s.noReap {
		if err := s.Reap(ctx); err != nil {
			s.bgCancel()
			s.closeClient()
			os.RemoveAll(dir)
			return nil, err
		}
	}
	// Before anything of this sandbox exists, so nothing is ever unwatched.
	if len(s.watchArgv) > 0 {
		if err := s.startWatchdog(); err != nil {
			s.bgCancel()
			s.closeClient()
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if s.poolSize > 0 {
		s.janitorDone = make(chan struct{})
		go s.janitor(max(min(s.maxWarmAge, s.poolIdle)/4, 10*time.Millisecond))
	}
	return s, nil
}

// Client returns the Docker client the sandbox uses.
func (s *Sandbox) Client() *client.Client { return s.cli }

// Instance returns this Sandbox's id, the value of LabelInstance on what it creates.
func (s *Sandbox) Instance() string { return s.instance }

func (s *Sandbox) closeClient() {
	if s.ownClient {
		s.cli.Close()
	}
}

// Close drains the warm pools, waits for calls in flight to end and for pending
// removals, removes the networks it created and closes the client. It does not
// cancel calls: their callers (the engine's kill switch) do. Last it ends the
// watchdog: told that nothing is left when that is so, otherwise to remove what is.
func (s *Sandbox) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	pools := s.pools
	s.pools = map[string]*pool{}
	s.mu.Unlock()

	var errs []error
	for _, p := range pools {
		errs = append(errs, p.drain(ctx))
	}
	s.bgCancel()
	if s.janitorDone != nil {
		<-s.janitorDone // it may hold containers of pools it was expiring
	}
	s.removals.Wait()
	s.mu.Lock()
	nets := s.networks
	s.networks = map[string]*skillNet{}
	s.mu.Unlock()
	for _, n := range nets {
		errs = append(errs, s.removeNetwork(ctx, n))
	}
	// A removal that failed after its retries is not reported: look.
	clean := errors.Join(errs...) == nil && s.nothingLeft(ctx)
	s.closeClient()
	errs = append(errs, os.RemoveAll(s.dir))
	if s.wd != nil {
		s.wd.close(clean)
	}
	return errors.Join(errs...)
}

// nothingLeft says whether the engine holds no container or network of this sandbox.
func (s *Sandbox) nothingLeft(ctx context.Context) bool {
	f := filters.NewArgs(filters.Arg("label", LabelInstance+"="+s.instance))
	cs, err := s.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil || len(cs) > 0 {
		return false
	}
	ns, err := s.cli.NetworkList(ctx, network.ListOptions{Filters: f})
	return err == nil && len(ns) == 0
}

// Drain removes the warm containers of one skill and its network when idle; the kill
// switch calls it so no prepared container of a disabled skill survives.
func (s *Sandbox) Drain(ctx context.Context, skill string) error {
	s.mu.Lock()
	var drained []*pool
	for k, p := range s.pools {
		if p.skill == skill {
			drained = append(drained, p)
			delete(s.pools, k)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, p := range drained {
		errs = append(errs, p.drain(ctx))
	}
	s.mu.Lock()
	n := s.networks[skill]
	if n != nil && n.users == 0 {
		delete(s.networks, skill)
	} else {
		n = nil
	}
	s.mu.Unlock()
	if n != nil {
		errs = append(errs, s.removeNetwork(ctx, n))
	}
	return errors.Join(errs...)
}

// checkOptions refuses option values that would weaken a limit or make no sense: to
// Docker a pids limit of 0 means none, and a nofile limit of 0 breaks every skill.
func (s *Sandbox) checkOptions() error {
	switch {
	case s.pids <= 0:
		return fmt.Errorf("container sandbox: pids limit %d: want at least 1", s.pids)
	case s.nofile < 16:
		return fmt.Errorf("container sandbox: open-files limit %d: want at least 16", s.nofile)
	case s.poolSize < 0:
		return fmt.Errorf("container sandbox: warm pool size %d: want 0 (none) or more", s.poolSize)
	case s.maxPools < 1:
		return fmt.Errorf("container sandbox: at most %d pools: want at least 1", s.maxPools)
	case s.maxWarmAge <= 0 || s.poolIdle <= 0:
		return fmt.Errorf("container sandbox: warm age %s and pool idle time %s: want both above zero", s.maxWarmAge, s.poolIdle)
	}
	return nil
}
