package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/skillbox-dev/skillbox/runtime/console"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/mcp"
	"github.com/skillbox-dev/skillbox/runtime/server"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

// DefaultDrain is how long `skillbox serve` lets calls in flight finish (--drain).
const DefaultDrain = 30 * time.Second

// ServeOptions say how Serve lets callers in.
type ServeOptions struct {
	// Listen is where and how the gRPC door listens. Home defaults to the host's;
	// Refused is set by Serve (refusals are audited).
	Listen transport.ServerConfig
	// Admins are the caller identities allowed to use the Admin service besides this
	// process's own user (server.LocalAdmin); none leaves the server's default.
	Admins []string
	// Metrics, if set, serves Prometheus metrics over HTTP on this host:port.
	Metrics string
	// Drain is how long, once ctx ends, the calls in flight may take before they are
	// cancelled; zero cancels them at once.
	Drain time.Duration
	// ReloadOnSIGHUP reloads (Reload) on every SIGHUP while serving.
	ReloadOnSIGHUP bool
	// MCP, if set, is the host:port of a second door: MCP over Streamable HTTP at
	// http(s)://MCP/mcp. It is admitted like Listen's TCP listener, with Listen's TLS,
	// client CA and token file: TLS, or plaintext on loopback with a token file. When
	// Listen is a unix socket those settings are the MCP door's alone (the socket is
	// guarded by its file mode).
	MCP string
	// Version is told to MCP clients; empty says "dev".
	Version string
	// Console, if set, is the host:port of the operator's web console at
	// http(s)://Console/, admitted like the MCP door (Listen's TLS, client CA and token
	// file: TLS, or plaintext on loopback with a token file). Only admins (Admins, the
	// same rule as the Admin service) may use it.
	Console string
}

// door is one way in to the engine. Serve runs every door the same way: serve until
// stopped, drain on ctx's end, stop when the drain time is over. A second door (MCP)
// is one more entry in Serve's list.
type door interface {
	name() string
	addr() string
	serve() error  // until stopped; returns after gracefulStop or stop
	gracefulStop() // refuse new calls, wait for those in flight
	stop()         // close everything now
	close()        // release the listener when serve never ran
}

// grpcDoor is skillbox.v1 over gRPC on a transport listener.
type grpcDoor struct {
	cfg   transport.ServerConfig // as listened
	lis   net.Listener
	gopts []grpc.ServerOption
	srv   *server.Server
	g     *grpc.Server
}

func (d *grpcDoor) name() string { return "grpc" }
func (d *grpcDoor) addr() string {
	if d.lis.Addr().Network() == "unix" {
		return "unix://" + d.lis.Addr().String()
	}
	return d.lis.Addr().String()
}
func (d *grpcDoor) serve() error {
	if err := d.g.Serve(d.lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}
func (d *grpcDoor) gracefulStop() { d.srv.Shutdown(); d.g.GracefulStop() }
func (d *grpcDoor) stop()         { d.g.Stop() }

// close also stops the server if one was made: its stream workers run from
// grpc.NewServer on, served or not (a later door's attach can fail first).
func (d *grpcDoor) close() {
	if d.g != nil {
		d.g.Stop()
	}
	d.lis.Close()
}

// mcpDoor is MCP over Streamable HTTP on a transport listener.
type mcpDoor struct {
	lis    *transport.HTTPListener
	door   *mcp.Door
	hs     *http.Server
	follow context.CancelFunc // ends the door's watch of the engine
}

func (d *mcpDoor) name() string { return "mcp" }
func (d *mcpDoor) addr() string {
	scheme := "http"
	if d.lis.TLS() {
		scheme = "https"
	}
	return scheme + "://" + d.lis.Addr().String() + mcp.Path
}
func (d *mcpDoor) serve() error {
	if err := d.hs.Serve(d.lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// gracefulStop refuses new connections, lets the tool calls under way finish, then
// ends the sessions (their notification streams would hold the shutdown open).
func (d *mcpDoor) gracefulStop() {
	done := make(chan struct{})
	go func() { _ = d.hs.Shutdown(context.Background()); close(done) }()
	d.door.Drain()
	<-done
	d.follow()
}
func (d *mcpDoor) stop() { d.hs.Close(); d.follow() }
func (d *mcpDoor) close() {
	d.lis.Close()
	if d.follow != nil {
		d.follow()
	}
}

// consoleDoor is the operator's web console on a transport listener.
type consoleDoor struct {
	lis *transport.HTTPListener
	hs  *http.Server
}

func (d *consoleDoor) name() string { return "console" }
func (d *consoleDoor) addr() string {
	scheme := "http"
	if d.lis.TLS() {
		scheme = "https"
	}
	return scheme + "://" + d.lis.Addr().String() + "/"
}
func (d *consoleDoor) serve() error {
	if err := d.hs.Serve(d.lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// gracefulStop lets the requests under way finish; a kill switch pressed in the
// console is bounded by engine.DisableWait.
func (d *consoleDoor) gracefulStop() { _ = d.hs.Shutdown(context.Background()) }
func (d *consoleDoor) stop()         { d.hs.Close() }
func (d *consoleDoor) close()        { d.lis.Close() }

// listenConsole listens for the console if opts asks for one (nil if not).
func listenConsole(ctx context.Context, opts ServeOptions) (*consoleDoor, error) {
	if opts.Console == "" {
		return nil, nil
	}
	cfg := mcpConfig(opts)
	cfg.Addr = opts.Console
	lis, err := transport.ListenHTTP(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	return &consoleDoor{lis: lis}, nil
}

// attach serves h's engine through the console. Who is an admin is the gRPC door's
// rule (gd.srv.CheckAdmin); refusals go to the audit log the way the other doors' do.
func (d *consoleDoor) attach(h *Host, gd *grpcDoor) error {
	c, err := console.New(console.Config{
		Engine:     h.engine,
		Admission:  d.lis,
		CheckAdmin: gd.srv.CheckAdmin,
		Refused: func(r *http.Request, err error) {
			gd.srv.Unauthenticated(r.Context(), transport.HTTPPeer(r), "console "+r.Method+" "+r.URL.Path, err)
		},
	})
	if err != nil {
		return err
	}
	d.hs = doorServer(c.Handler())
	return nil
}

// maxMetricsConns bounds the connections open at once to the metrics endpoint.
const maxMetricsConns = 64

// doorServer is the HTTP server of a door (console, MCP) that anyone who can reach
// its address may talk to before authenticating: a peer that sends a request slowly,
// or holds a connection idle, is cut off rather than keep a descriptor for ever (a
// security review). ReadTimeout bounds reading a request's headers and body only:
// net/http lifts it once the body is read, so an MCP event stream stays open. How many
// connections a door has open at once is its listener's bound (transport.ListenHTTP,
// transport.MaxHTTPConns), and what each may make it hold before authenticating is
// its headers, at most maxHeaderBytes.
func doorServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: maxHeaderBytes}
}

// maxHeaderBytes bounds a request's headers at a door (net/http's default is 1 MiB,
// which let one unauthenticated peer make a door hold 512 MiB for ReadHeaderTimeout
// over its 512 connections): a bearer token, a session cookie and an MCP client's
// headers are a few hundred bytes. Past it a request gets 431.
const maxHeaderBytes = 64 << 10

// mcpConfig is the MCP door's listener settings: opts.Listen's TLS, client CA and
// token file at opts.MCP.
func mcpConfig(opts ServeOptions) transport.ServerConfig {
	l := opts.Listen
	return transport.ServerConfig{Addr: opts.MCP, TLSCert: l.TLSCert, TLSKey: l.TLSKey, ClientCA: l.ClientCA, TokenFile: l.TokenFile}
}

// grpcOnUnix reports whether the gRPC door listens on a unix socket, whose admission
// is its file mode: TLS and tokens are then the MCP door's.
func grpcOnUnix(l transport.ServerConfig) bool {
	return l.Addr == "" || strings.HasPrefix(l.Addr, "unix:")
}

// listenMCP listens for the MCP door if opts asks for one (nil if not).
func listenMCP(ctx context.Context, opts ServeOptions) (*mcpDoor, error) {
	if opts.MCP == "" {
		return nil, nil
	}
	lis, err := transport.ListenHTTP(ctx, mcpConfig(opts))
	if err != nil {
		return nil, fmt.Errorf("mcp: %w", err)
	}
	return &mcpDoor{lis: lis}, nil
}

// attach serves h's engine through the door; refusals of unauthenticated requests go
// to the audit log the way the gRPC door's do (coalesced per peer).
func (d *mcpDoor) attach(h *Host, opts ServeOptions, gd *grpcDoor) {
	version := opts.Version
	if version == "" {
		version = "dev"
	}
	d.door = mcp.New(mcp.EngineBackend{Engine: h.engine}, version)
	refused := func(r *http.Request, err error) {
		gd.srv.Unauthenticated(r.Context(), transport.HTTPPeer(r), "mcp "+mcp.Path, err)
	}
	d.hs = doorServer(d.door.Handler(d.lis, refused))
	// Approve, disable, enable and reload change the tools; clients are told.
	changed, unwatch := h.engine.Watch()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { defer unwatch(); d.door.Follow(ctx, changed) }()
	d.follow = cancel
}

// listenGRPC listens as opts.Listen says (Home defaulting to home); the door gets its
// services from attach. Listening comes first so that a listener that cannot be made
// fails before sandboxes are opened.
func listenGRPC(ctx context.Context, home Home, opts ServeOptions, emit func(Event)) (*grpcDoor, error) {
	cfg := opts.Listen
	if (opts.MCP != "" || opts.Console != "") && grpcOnUnix(cfg) {
		cfg.TLSCert, cfg.TLSKey, cfg.ClientCA, cfg.TokenFile = "", "", "", ""
	}
	if cfg.Home == "" {
		cfg.Home = home.root
	}
	d := &grpcDoor{}
	// d.srv is set by attach, before the first call can arrive (grpc serves after that).
	cfg.Refused = func(ctx context.Context, peer, method string, err error) {
		d.srv.Unauthenticated(ctx, peer, method, err)
	}
	lis, gopts, err := transport.Listen(ctx, cfg)
	if err != nil {
		return nil, err
	}
	d.lis, d.gopts, d.cfg = lis, gopts, cfg
	return d, nil
}

// attach puts the Skills and Admin services of h's engine on the door.
func (d *grpcDoor) attach(h *Host, opts ServeOptions) {
	var sopts []server.Option
	if len(opts.Admins) > 0 {
		sopts = append(sopts, server.WithAdmins(append(append([]string{}, opts.Admins...), server.LocalAdmin())...))
	}
	d.srv = server.New(h.engine, transport.Caller, sopts...)
	d.g = grpc.NewServer(append(d.gopts, server.GRPCOptions()...)...)
	d.srv.Register(d.g)
}

// Serve lets callers in until ctx ends: the gRPC door, metrics if asked, reload on
// SIGHUP if asked. When ctx ends the doors stop accepting calls and those in flight
// may finish for opts.Drain; then the engine cancels the calls still running (each
// ends CANCELED, recorded in the audit log) and the doors close. It returns nil after
// such a drain, or the error that stopped a door.
func (h *Host) Serve(ctx context.Context, opts ServeOptions) error {
	l, err := listenDoors(ctx, h.home, opts, h.emit)
	if err != nil {
		return err
	}
	return h.serve(ctx, l, opts)
}

// serve runs the doors, already listening.
func (h *Host) serve(ctx context.Context, l *listening, opts ServeOptions) error {
	defer l.close()
	gd := l.grpc
	gd.attach(h, opts)
	doors := []door{gd}
	if l.mcp != nil {
		l.mcp.attach(h, opts, gd)
		doors = append(doors, l.mcp)
	}
	if l.console != nil {
		if err := l.console.attach(h, gd); err != nil {
			return err
		}
		doors = append(doors, l.console)
	}

	// serving is true while the doors take calls: /healthz answers 200, and 503 from
	// the start of the drain on.
	var serving atomic.Bool
	if opts.Metrics != "" {
		ml, err := net.Listen("tcp", opts.Metrics)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		// Unauthenticated, like the HTTP doors before they authenticate: the same
		// bounds on slow and idle peers, and few connections (a scraper and a probe
		// each keep one).
		ml = transport.LimitListener(ml, maxMetricsConns)
		mux := http.NewServeMux()
		mux.Handle("/metrics", h.engine.Metrics().Handler())
		mux.Handle("/healthz", healthHandler(&serving))
		hs := doorServer(mux)
		go func() { _ = hs.Serve(ml) }()
		defer hs.Close()
		h.emit(Event{Kind: ServingMetrics, Addr: ml.Addr().String()})
	}

	if opts.ReloadOnSIGHUP {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		reloaded := make(chan struct{})
		go func() {
			defer close(reloaded)
			for range hup {
				_, _ = h.Reload(context.WithoutCancel(ctx), "signal:SIGHUP")
			}
		}()
		// No signal arrives after Stop returns; a reload under way ends before the
		// engine is closed.
		defer func() { signal.Stop(hup); close(hup); <-reloaded }()
	}

	served := make(chan error, len(doors))
	for _, d := range doors {
		go func() { served <- d.serve() }()
		h.emit(Event{Kind: Serving, Door: d.name(), Addr: d.addr()})
	}
	serving.Store(true)
	select {
	case err := <-served:
		// A door stopped by itself: stop the others too.
		for _, d := range doors {
			d.stop()
		}
		return err
	case <-ctx.Done():
	}
	serving.Store(false)
	h.drain(ctx, doors, opts.Drain)
	return nil
}

// healthHandler answers GET /healthz: 200 "ok" while the doors take calls, 503
// "draining" once they stop (or before they start). It tells a load balancer or an
// orchestrator's probe where calls can go; it says nothing about single skills.
func healthHandler(serving *atomic.Bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if !serving.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "draining")
			return
		}
		fmt.Fprintln(w, "ok")
	})
}

// drain stops the doors gracefully, and past the drain time has the engine cancel the
// calls still running.
func (h *Host) drain(ctx context.Context, doors []door, drain time.Duration) {
	h.emit(Event{Kind: Draining})
	// Calls waiting for a person end now (UNAVAILABLE, nothing run) rather than hold
	// the drain: nobody can decide them once the doors close. WatchPending streams end.
	h.engine.StopApprovals()
	stopped := make(chan struct{})
	go func() {
		done := make(chan struct{}, len(doors))
		for _, d := range doors {
			go func() { d.gracefulStop(); done <- struct{}{} }()
		}
		for range doors {
			<-done
		}
		close(stopped)
	}()
	timer := time.NewTimer(drain)
	defer timer.Stop()
	select {
	case <-stopped:
		return
	case <-timer.C:
	}
	// The engine cancels the calls still running and waits until each has its
	// invoke.end on disk (the engine is closed after Serve returns); their replies then
	// go out with the graceful stop, and stop ends what is left.
	h.emit(Event{Kind: DrainTimedOut})
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), engine.ShutdownWait)
	if _, err := h.engine.Shutdown(sctx); err != nil {
		h.emit(Event{Kind: ShutdownFailed, Err: err})
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(time.Second):
	}
	for _, d := range doors {
		d.stop()
	}
}

// Serve listens as sopts say, opens a host with opts, serves until ctx ends
// (Host.Serve) and closes it: `skillbox serve` in one call. A listener that cannot be
// made fails before any sandbox is opened.
func Serve(ctx context.Context, opts Options, sopts ServeOptions) error {
	if opts.Home.root == "" {
		return errNoHome
	}
	// Events before Open are told the same way as after it.
	emit := func(ev Event) {
		if opts.Events != nil {
			opts.Events(ev)
		}
	}
	l, err := listenDoors(ctx, opts.Home, sopts, emit)
	if err != nil {
		return err
	}
	h, err := Open(ctx, opts)
	if err != nil {
		l.close()
		return err
	}
	defer h.Close()
	return h.serve(ctx, l, sopts)
}

// listening is the listeners of the doors opts asks for: gRPC always, MCP and the
// console when asked (else nil).
type listening struct {
	grpc    *grpcDoor
	mcp     *mcpDoor
	console *consoleDoor
}

// close releases every listener (a door that served is closed again harmlessly).
func (l *listening) close() {
	l.grpc.close()
	if l.mcp != nil {
		l.mcp.close()
	}
	if l.console != nil {
		l.console.close()
	}
}

// listenDoors makes the listeners of the doors opts asks for. On error nothing is left
// listening.
func listenDoors(ctx context.Context, home Home, opts ServeOptions, emit func(Event)) (*listening, error) {
	gd, err := listenGRPC(ctx, home, opts, emit)
	if err != nil {
		return nil, err
	}
	l := &listening{grpc: gd}
	if l.mcp, err = listenMCP(ctx, opts); err != nil {
		l.close()
		return nil, err
	}
	if l.console, err = listenConsole(ctx, opts); err != nil {
		l.close()
		return nil, err
	}
	// One warning for every door that lets anyone in as tls:anonymous.
	var anon []string
	if anonymousTLS(gd.cfg) {
		anon = append(anon, gd.name()+" "+gd.addr())
	}
	if anonymousTLS(mcpConfig(opts)) { // the HTTP doors share one configuration
		if l.mcp != nil {
			anon = append(anon, l.mcp.name()+" "+l.mcp.addr())
		}
		if l.console != nil {
			anon = append(anon, l.console.name()+" "+l.console.addr())
		}
	}
	if len(anon) > 0 {
		emit(Event{Kind: AnonymousTLS, Door: strings.Join(anon, ", ")})
	}
	return l, nil
}

// anonymousTLS reports whether a listener serves TLS with neither client certificates
// nor tokens: every caller is then tls:anonymous.
func anonymousTLS(cfg transport.ServerConfig) bool {
	return cfg.TLSCert != "" && cfg.ClientCA == "" && cfg.TokenFile == ""
}
