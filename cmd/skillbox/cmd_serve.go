package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"google.golang.org/grpc"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/container"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/server"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the gRPC API (skillbox.v1) to agent frameworks and operators",
		UsageText: "skillbox serve [--listen ADDR] [--metrics ADDR] [--tls-cert F --tls-key F [--client-ca F]] [--token-file F]\n\n" +
			"Examples:\n  skillbox serve                                   # unix socket $SKILLBOX_HOME/skillbox.sock, mode 0600\n" +
			"  skillbox serve --metrics 127.0.0.1:9464\n" +
			"  skillbox serve --listen 0.0.0.0:7443 --tls-cert srv.pem --tls-key srv.key --client-ca ca.pem",
		Description: "Calls run through the engine: verified, approved, budgeted, audited. SIGHUP re-reads\n" +
			"trust.yaml and the approvals; SIGTERM or SIGINT stops accepting calls and drains the calls\n" +
			"in flight (up to --drain), then cancels those still running (each ends CANCELED, recorded in\n" +
			"the audit log) before exiting. A TCP listener needs TLS, or a token file on a\n" +
			"loopback address.",
		Flags: []cli.Flag{
			homeFlag(),
			&cli.StringFlag{Name: "listen", Usage: "ADDR: unix:///abs/path.sock or host:port", DefaultText: "unix://$SKILLBOX_HOME/skillbox.sock"},
			&cli.StringFlag{Name: "metrics", Usage: "serve Prometheus metrics over HTTP on host:port (e.g. 127.0.0.1:9464)"},
			&cli.StringFlag{Name: "tls-cert", Usage: "server certificate (PEM) for a TCP listener"},
			&cli.StringFlag{Name: "tls-key", Usage: "server key (PEM) for --tls-cert"},
			&cli.StringFlag{Name: "client-ca", Usage: "require client certificates signed by this CA (PEM)"},
			&cli.StringFlag{Name: "token-file", Usage: "`FILE` of bearer tokens, one \"NAME TOKEN\" per line (mode 0600)"},
			&cli.StringSliceFlag{Name: "admin", Usage: "caller identity allowed to use the Admin service (repeatable)", DefaultText: "unix:uid=<this uid>"},
			&cli.BoolFlag{Name: "no-host-firewall", Usage: "do not confine network-granted containers to the egress proxy's port with iptables (for a non-root server; weaker: see SECURITY.md)"},
			&cli.BoolFlag{Name: "no-container", Usage: "do not connect to Docker: container skills are refused"},
			&cli.DurationFlag{Name: "drain", Value: 30 * time.Second, Usage: "how long shutdown waits for calls in flight"},
			&cli.IntFlag{Name: "max-concurrent", Value: engine.DefaultMaxConcurrent, Usage: "calls in flight per skill; more wait up to --queue-wait, then fail with BUSY"},
			&cli.DurationFlag{Name: "queue-wait", Value: engine.DefaultQueueWait, Usage: "how long a call waits for one of its skill's slots"},
		},
		Action: serve,
	}
}

func serve(c *cli.Context) error {
	home, err := skillboxHome(c)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	ctx := c.Context
	// Set below, before the first call can arrive (grpc serves after that).
	var srv *server.Server
	lis, opts, err := transport.Listen(ctx, transport.ServerConfig{
		Addr: c.String("listen"), Home: home,
		TLSCert: c.String("tls-cert"), TLSKey: c.String("tls-key"),
		ClientCA: c.String("client-ca"), TokenFile: c.String("token-file"),
		Refused: func(ctx context.Context, peer, method string, err error) { srv.Unauthenticated(ctx, peer, method, err) },
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer lis.Close()
	if c.String("tls-cert") != "" && c.String("client-ca") == "" && c.String("token-file") == "" {
		fmt.Fprintln(c.App.ErrWriter, "skillbox: warning: TLS without --client-ca or --token-file: every caller is tls:anonymous, "+
			"so approvals without `callers` are open to anyone who can reach this port")
	}

	ws, err := wasm.New(ctx, wasm.WithCacheDir(filepath.Join(home, "cache")))
	if err != nil {
		return fmt.Errorf("serve: wasm sandbox: %w", err)
	}
	defer ws.Close(context.WithoutCancel(ctx))
	cfg := engine.Config{Home: home, Sandboxes: map[string]isolation.Sandbox{manifest.KindWasm: ws}, MaxConcurrent: c.Int("max-concurrent"), QueueWait: c.Duration("queue-wait")}
	if !c.Bool("no-container") {
		// Warm containers hide creation time; egress goes through the sandbox's proxy,
		// which enforces the same origin policy as the wasm host function.
		copts := []container.Option{container.WithWarmPool(2), container.WithLogger(slog.New(slog.NewTextHandler(c.App.ErrWriter, nil)))}
		// A process of its own removes this server's containers if it dies unclosed.
		if exe, err := os.Executable(); err == nil {
			copts = append(copts, container.WithWatchdog([]string{exe, "internal", "container-watchdog"}))
		} else {
			fmt.Fprintf(c.App.ErrWriter, "skillbox: warning: no container watchdog (%v): a crash leaves containers running until the next start\n", oneLine(err))
		}
		if c.Bool("no-host-firewall") {
			copts = append(copts, container.WithoutHostFirewall())
		}
		cs, err := newContainerSandbox(c, copts...)
		if err != nil {
			fmt.Fprintf(c.App.ErrWriter, "skillbox: container sandbox unavailable, container skills will be refused: %v\n", oneLine(err))
		} else {
			defer cs.Close(context.WithoutCancel(ctx))
			cfg.Sandboxes[manifest.KindContainer] = cs
		}
	}
	eng, err := engine.Open(ctx, cfg)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer eng.Close()

	var sopts []server.Option
	if admins := c.StringSlice("admin"); len(admins) > 0 {
		sopts = append(sopts, server.WithAdmins(append(admins, server.LocalAdmin())...))
	}
	srv = server.New(eng, transport.Caller, sopts...)
	g := grpc.NewServer(opts...)
	srv.Register(g)

	if addr := c.String("metrics"); addr != "" {
		ml, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("serve: metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", eng.Metrics().Handler())
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(ml) }()
		defer hs.Close()
		fmt.Fprintf(c.App.ErrWriter, "skillbox: metrics on http://%s/metrics\n", ml.Addr())
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			if n, err := eng.Reload(context.WithoutCancel(ctx), "signal:SIGHUP"); err != nil {
				fmt.Fprintf(c.App.ErrWriter, "skillbox: SIGHUP: %v\n", oneLine(err)) // the error says the previous state is kept
			} else {
				fmt.Fprintf(c.App.ErrWriter, "skillbox: reloaded (%s)\n", map[bool]string{true: "1 package", false: fmt.Sprint(n, " packages")}[n == 1])
			}
		}
	}()

	served := make(chan error, 1)
	go func() { served <- g.Serve(lis) }()
	fmt.Fprintf(c.App.ErrWriter, "skillbox: serving on %s\n", listenAddr(lis))

	select {
	case err := <-served:
		if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("serve: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	fmt.Fprintln(c.App.ErrWriter, "skillbox: shutting down, draining calls in flight")
	srv.Shutdown()
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(c.Duration("drain")):
		// The engine cancels the calls still running and waits until each has its
		// invoke.end on disk (the engine is closed right after this returns); their
		// replies then go out with the graceful stop, and Stop ends what is left.
		fmt.Fprintln(c.App.ErrWriter, "skillbox: drain timed out; cancelling the calls still running")
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), engine.ShutdownWait)
		if _, err := eng.Shutdown(sctx); err != nil {
			fmt.Fprintf(c.App.ErrWriter, "skillbox: %v\n", oneLine(err))
		}
		cancel()
		select {
		case <-stopped:
		case <-time.After(time.Second):
		}
		g.Stop()
	}
	return nil
}

func listenAddr(l net.Listener) string {
	if l.Addr().Network() == "unix" {
		return "unix://" + l.Addr().String()
	}
	return l.Addr().String()
}
