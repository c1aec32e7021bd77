package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/host"
	"github.com/skillbox-dev/skillbox/runtime/replica"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the gRPC API (skillbox.v1) to agent frameworks and operators",
		UsageText: "skillbox serve [--listen ADDR] [--metrics ADDR] [--tls-cert F --tls-key F [--client-ca F]] [--token-file F]\n\n" +
			"Examples:\n  skillbox serve                                   # unix socket $SKILLBOX_HOME/skillbox.sock, mode 0600\n" +
			"  skillbox serve --metrics 127.0.0.1:9464\n" +
			"  skillbox serve --mcp 127.0.0.1:7300 --token-file tokens   # MCP agents at http://127.0.0.1:7300/mcp\n" +
			"  skillbox serve --console 127.0.0.1:7400 --token-file tokens --admin token:ops   # the operator's console\n" +
			"  skillbox serve --listen 0.0.0.0:7443 --tls-cert srv.pem --tls-key srv.key --client-ca ca.pem",
		Description: "Calls run through the engine: verified, approved, budgeted, audited. SIGHUP re-reads\n" +
			"trust.yaml and the approvals; SIGTERM or SIGINT stops accepting calls and drains the calls\n" +
			"in flight (up to --drain), then cancels those still running (each ends CANCELED, recorded in\n" +
			"the audit log) before exiting. A TCP listener needs TLS, or a token file on a\n" +
			"loopback address.",
		Flags: append([]cli.Flag{
			homeFlag(),
			&cli.StringFlag{Name: "listen", Usage: "ADDR: unix:///abs/path.sock or host:port", DefaultText: "unix://$SKILLBOX_HOME/skillbox.sock"},
			&cli.StringFlag{Name: "mcp", Usage: "also serve MCP (Streamable HTTP) at http(s)://`ADDR`/mcp: host:port, TLS or a loopback address with --token-file"},
			&cli.StringFlag{Name: "console", Usage: "also serve the operator's web console at http(s)://`ADDR`/: host:port, TLS or a loopback address with --token-file; only --admin identities may use it"},
			&cli.StringFlag{Name: "metrics", Usage: "serve Prometheus metrics over HTTP on host:port (e.g. 127.0.0.1:9464)"},
			&cli.StringFlag{Name: "tls-cert", Usage: "server certificate (PEM) for a TCP listener"},
			&cli.StringFlag{Name: "tls-key", Usage: "server key (PEM) for --tls-cert"},
			&cli.StringFlag{Name: "client-ca", Usage: "require client certificates signed by this CA (PEM)"},
			&cli.StringFlag{Name: "token-file", Usage: "`FILE` of bearer tokens, one \"NAME TOKEN\" per line (mode 0600)"},
			&cli.StringSliceFlag{Name: "admin", Usage: "caller identity allowed to use the Admin service (repeatable)", DefaultText: "unix:uid=<this uid>"},
			&cli.BoolFlag{Name: "no-host-firewall", Usage: "do not confine network-granted containers to the egress proxy's port with iptables (for a non-root server; weaker: see SECURITY.md)"},
			&cli.BoolFlag{Name: "no-container", Usage: "do not connect to Docker: container skills are refused"},
			&cli.StringFlag{Name: "container-runtime", Usage: "run container skills under the Docker engine's OCI runtime `NAME`, e.g. runsc (gVisor: docs/gvisor.md)", DefaultText: "the engine's default, runc"},
			&cli.StringFlag{Name: "container-backend", Value: "docker", Usage: "where container skills run: docker (this host's engine) or kubernetes (a cluster; see docs/kubernetes.md)"},
			&cli.StringFlag{Name: "kubeconfig", Usage: "with --container-backend kubernetes: the kubeconfig `FILE` (default: the pod's service account, else $KUBECONFIG)"},
			&cli.StringFlag{Name: "kube-namespace", Value: "skillbox-skills", Usage: "namespace container skills run in"},
			&cli.StringFlag{Name: "kube-state-namespace", Usage: "namespace whose ConfigMaps hold the kill switch and approvals shared by every replica (empty: not shared)"},
			&cli.StringSliceFlag{Name: "kube-relayed-secret-sources", Usage: "secret sources an approval taken from --kube-state-namespace may name, comma-separated or repeated: `SOURCE` is env:NAME, env:PREFIX*, file:/abs/file or file:/abs/dir/ (any file under it); an approval naming another is not applied, unless this replica's own approval of the skill binds it the same way", DefaultText: "none"},
			&cli.StringSliceFlag{Name: "kube-relayed-host-dirs", Usage: "host directories the file grants of an approval taken from --kube-state-namespace may mount (`DIR` or under it), comma-separated or repeated; as for --kube-relayed-secret-sources, another is refused unless this replica's own approval binds it", DefaultText: "none"},
			&cli.StringFlag{Name: "kube-runtime-class", Usage: "runtimeClassName of skill pods (e.g. gvisor)"},
			&cli.StringFlag{Name: "kube-workload", Usage: "sandbox (agent-sandbox's Sandbox) or job; default: sandbox when its CRD is installed"},
			&cli.StringFlag{Name: "egress-listen", Usage: "where the egress proxy for skill pods listens (e.g. :3128); without it network-granted skills are refused"},
			&cli.StringFlag{Name: "egress-addr", Usage: "host:port at which skill pods reach the egress proxy (this pod's IP and port)"},
			&cli.StringFlag{Name: "egress-namespace", Usage: "namespace of this server's pods, for the NetworkPolicy"},
			&cli.StringSliceFlag{Name: "egress-pod-label", Usage: "KEY=VALUE label of this server's pods, for the NetworkPolicy (repeatable)"},
			&cli.DurationFlag{Name: "drain", Value: host.DefaultDrain, Usage: "how long shutdown waits for calls in flight"},
			&cli.IntFlag{Name: "max-concurrent", Value: engine.DefaultMaxConcurrent, Usage: "calls in flight per skill; more wait up to --queue-wait, then fail with BUSY"},
			&cli.DurationFlag{Name: "queue-wait", Value: engine.DefaultQueueWait, Usage: "how long a call waits for one of its skill's slots"},
			&cli.DurationFlag{Name: "audit-commit-delay", Value: engine.DefaultAuditCommitDelay, Usage: "how long a batch of audit records may wait for other calls' records to share one fsync (a lone call never waits; 0: never wait)"},
		}, registryFlags()...), // with --kube-state-namespace: pull the packages other replicas approved
		Action: serve,
	}
}

func serve(c *cli.Context) error {
	if c.NArg() != 0 {
		return usagef("serve: takes no arguments (see skillbox serve --help)")
	}
	// A metrics address that is no host:port is a command line that is wrong; it was
	// only found once the engine was up.
	if m := c.String("metrics"); m != "" {
		if _, _, err := net.SplitHostPort(m); err != nil {
			return usagef("serve: --metrics %q: want host:port (e.g. 127.0.0.1:9464)", m)
		}
	}
	// A token file that is not there is said in the flag's words, before the home is
	// opened (the listener reads and checks the file itself: its mode, its lines).
	if f := c.String("token-file"); f != "" {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("serve: --token-file %w", fileWords(f, err))
		}
	}
	home, err := skillboxHome(c)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	w := c.App.ErrWriter
	commitDelay := c.Duration("audit-commit-delay")
	switch {
	case commitDelay < 0 || commitDelay > engine.MaxAuditCommitDelay:
		return usagef("serve: --audit-commit-delay %v: want 0 (never wait) or a duration up to %v", commitDelay, engine.MaxAuditCommitDelay)
	case commitDelay == 0:
		commitDelay = -1 // the engine's "never wait"
	}
	opts := host.Options{
		Home:                 home,
		NoContainer:          c.Bool("no-container"),
		WarmContainers:       2,
		WatchdogArgs:         []string{"internal", "container-watchdog"},
		NoHostFirewallUnsafe: c.Bool("no-host-firewall"),
		ContainerRuntime:     c.String("container-runtime"),
		Logger:               slog.New(slog.NewTextHandler(w, nil)),
		MaxConcurrent:        c.Int("max-concurrent"),
		QueueWait:            c.Duration("queue-wait"),
		AuditCommitDelay:     commitDelay,
		Events:               func(ev host.Event) { printServeEvent(w, ev) },
	}
	switch b := c.String("container-backend"); b {
	case "docker":
	case "kubernetes":
		if c.String("container-runtime") != "" {
			return usagef("serve: --container-runtime is the Docker engine's; with --container-backend kubernetes use --kube-runtime-class")
		}
		labels := map[string]string{}
		for _, kv := range c.StringSlice("egress-pod-label") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usagef("serve: --egress-pod-label %q: want KEY=VALUE", kv)
			}
			labels[k] = v
		}
		relayed := replica.Relayed{SecretSources: c.StringSlice("kube-relayed-secret-sources"), HostDirs: c.StringSlice("kube-relayed-host-dirs")}
		if err := relayed.Check(); err != nil {
			return usagef("serve: %v", err)
		}
		opts.Kubernetes = &host.KubeOptions{
			Kubeconfig: c.String("kubeconfig"), Namespace: c.String("kube-namespace"),
			StateNamespace: c.String("kube-state-namespace"), RuntimeClass: c.String("kube-runtime-class"),
			Backend: c.String("kube-workload"), EgressListen: c.String("egress-listen"), EgressAddr: c.String("egress-addr"),
			EgressNamespace: c.String("egress-namespace"), EgressLabels: labels, Registry: registryOptions(c),
			Relayed: relayed,
		}
	default:
		return usagef("serve: --container-backend %q: want docker or kubernetes", b)
	}
	for _, f := range []string{"kube-relayed-secret-sources", "kube-relayed-host-dirs"} {
		if c.IsSet(f) && (opts.Kubernetes == nil || opts.Kubernetes.StateNamespace == "") {
			return usagef("serve: --%s is about approvals shared through --kube-state-namespace (with --container-backend kubernetes); without them it does nothing", f)
		}
	}
	sopts := host.ServeOptions{
		Listen: transport.ServerConfig{
			Addr:    c.String("listen"),
			TLSCert: c.String("tls-cert"), TLSKey: c.String("tls-key"),
			ClientCA: c.String("client-ca"), TokenFile: c.String("token-file"),
		},
		Admins:         c.StringSlice("admin"),
		Metrics:        c.String("metrics"),
		Drain:          c.Duration("drain"),
		ReloadOnSIGHUP: true,
		MCP:            c.String("mcp"),
		Console:        c.String("console"),
		Version:        c.App.Version,
	}
	if w := consoleWithoutAdmin(c); w != "" {
		fmt.Fprintln(c.App.ErrWriter, "skillbox: warning: "+w)
	}
	if err := host.Serve(c.Context, opts, sopts); err != nil {
		if nt := (*transport.NoTLSError)(nil); errors.As(err, &nt) {
			if msg := noTLSWords(c, nt.Addr); msg != "" {
				return usagef("serve: %s", msg)
			}
		}
		if ae := (*transport.AddrError)(nil); errors.As(err, &ae) {
			switch f := doorFlag(c, ae.Addr); f {
			case "listen":
				return usagef("serve: --listen %q: %s", ae.Addr, ae.Problem)
			case "mcp", "console": // HTTP doors: TCP only
				return usagef("serve: --%s %q: want host:port (e.g. 127.0.0.1:7300)", f, ae.Addr)
			}
		}
		return fmt.Errorf("serve: %w", recoverAdvice(c, home.AuditLog(), err))
	}
	return nil
}

// noTLSWords says, naming the flags, why a TCP door at addr was refused for want of
// TLS: the flags that set addr and what would let it listen. "" if no door flag has addr.
func noTLSWords(c *cli.Context, addr string) string {
	const tls = "TCP needs TLS (--tls-cert and --tls-key), or "
	switch f := doorFlag(c, addr); f {
	case "":
		return ""
	case "listen":
		return "--listen " + addr + ": " + tls + "a unix socket, or a loopback address with --token-file"
	default:
		return "--" + f + " " + addr + ": " + tls + "a loopback address with --token-file"
	}
}

// doorFlag is the name of the door flag (listen, mcp, console) set to addr, or "".
func doorFlag(c *cli.Context, addr string) string {
	for _, f := range []string{"listen", "mcp", "console"} {
		if c.String(f) == addr {
			return f
		}
	}
	return ""
}

// printServeEvent is one line on stderr for what the server reports.
func printServeEvent(w io.Writer, ev host.Event) {
	switch ev.Kind {
	case host.SandboxUnavailable:
		fmt.Fprintf(w, "skillbox: %s sandbox unavailable, %s skills will be refused: %v\n", ev.Sandbox, ev.Sandbox, oneLine(ev.Err))
	case host.NoWatchdog:
		fmt.Fprintf(w, "skillbox: warning: no container watchdog (%v): a crash leaves containers running until the next start\n", oneLine(ev.Err))
	case host.AnonymousTLS:
		fmt.Fprintf(w, "skillbox: warning: TLS without --client-ca or --token-file (%s): every caller is tls:anonymous, "+
			"so approvals without `callers` are open to anyone who can reach the port\n", ev.Door)
	case host.Serving:
		fmt.Fprintf(w, "skillbox: serving on %s\n", ev.Addr)
	case host.ServingMetrics:
		fmt.Fprintf(w, "skillbox: metrics on http://%s/metrics\n", ev.Addr)
	case host.Reloaded:
		fmt.Fprintf(w, "skillbox: reloaded (%s)\n", map[bool]string{true: "1 package", false: fmt.Sprint(ev.Packages, " packages")}[ev.Packages == 1])
	case host.ReloadFailed:
		fmt.Fprintf(w, "skillbox: SIGHUP: %v\n", oneLine(ev.Err)) // the error says the previous state is kept
	case host.Draining:
		fmt.Fprintln(w, "skillbox: shutting down, draining calls in flight")
	case host.DrainTimedOut:
		fmt.Fprintln(w, "skillbox: drain timed out; cancelling the calls still running")
	case host.ShutdownFailed:
		fmt.Fprintf(w, "skillbox: %v\n", oneLine(ev.Err))
	}
}

// consoleWithoutAdmin is the warning for a console nobody can use: every page needs
// an --admin identity, and the default admin (this uid on the unix socket) is never a
// console caller, who is token:NAME (--token-file), cert:NAME (--client-ca) or, over
// TLS with neither, tls:anonymous. "" when some --admin is of a kind the console admits.
func consoleWithoutAdmin(c *cli.Context) string {
	if c.String("console") == "" {
		return ""
	}
	tokens, certs := c.String("token-file") != "", c.String("client-ca") != ""
	for _, a := range c.StringSlice("admin") {
		if tokens && strings.HasPrefix(a, "token:") || certs && strings.HasPrefix(a, "cert:") ||
			!tokens && !certs && a == "tls:anonymous" {
			return ""
		}
	}
	const refused = "nobody can use the console: only --admin identities may, and "
	switch {
	case tokens && certs:
		return refused + "none is a token:NAME or cert:NAME (add --admin token:NAME, a NAME in the token file)"
	case tokens:
		return refused + "none is a token:NAME (add --admin token:NAME, a NAME in the token file)"
	case certs:
		return refused + "none is a cert:NAME (add --admin cert:NAME, a client certificate's name)"
	}
	return refused + "over TLS without --token-file or --client-ca every caller is tls:anonymous (add one of them, and an --admin)"
}
