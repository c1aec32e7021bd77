package container

// The watchdog bounds what a dead server leaves running. Docker has no deadline that
// outlives the process that started a container, so a server killed with SIGKILL (or
// by the OOM killer, or a crash) would leave its warm containers and its running
// calls' containers until its next start. The sandbox starts a small process of its
// own (WithWatchdog) in its own process group, with a pipe on its standard input that
// only the server holds. When the server dies, however it dies, the kernel closes the
// pipe; the watchdog reads end of file and removes everything labelled with the
// sandbox's instance, then exits. A clean Close tells it so first, and it exits
// without touching Docker.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/client"
)

// cleanWord is what Close writes to the watchdog once nothing of the sandbox is left:
// the watchdog then exits without touching Docker. Anything else followed by end of
// file means the server is gone and its objects must go.
const cleanWord = "clean\n"

const (
	// watchdogRestarts bounds the restarts in a row of a watchdog that keeps exiting
	// (each run shorter than watchdogStable); then the sandbox says it gives up.
	watchdogRestarts = 5
	watchdogStable   = time.Minute
	// watchdogBackoff is the wait before the first restart, doubled for each next.
	watchdogBackoff = time.Second
	// watchdogCleanExit bounds how long Close waits for a watchdog told "clean"
	// before it kills it.
	watchdogCleanExit = 10 * time.Second
	// watchdogReapWait bounds how long Close waits for a watchdog reaping what Close
	// could not remove; after that it is left to finish on its own.
	watchdogReapWait = time.Minute
	// A create the dead server had in flight can still finish in the engine after the
	// first pass: the watchdog looks again reapGap later, until a later pass finds
	// nothing (at most reapPasses passes).
	reapPasses = 10
	reapGap    = time.Second
)

// WithWatchdog makes New start argv as this sandbox's watchdog: a process in its own
// process group that removes the sandbox's containers, networks and host firewall
// rules when the server dies without Close (kill -9, a crash), and then exits. The
// sandbox appends its instance id to argv; the process must call RunWatchdog with its
// standard input and that id. It inherits the environment, with DOCKER_HOST set to
// this sandbox's engine, and writes its own messages to standard error. If it dies
// while the server lives, the sandbox reports it (WithLogger) and restarts it.
func WithWatchdog(argv []string) Option {
	return func(s *Sandbox) { s.watchArgv = append([]string(nil), argv...) }
}

// WithLogger sets where the sandbox reports its own trouble (a watchdog that exited),
// not the skills' logs.
func WithLogger(l *slog.Logger) Option { return func(s *Sandbox) { s.log = l } }

// watchdog is the sandbox's side of its watchdog process: it holds the only write end
// of the process's standard input and restarts the process if it exits early.
type watchdog struct {
	argv    []string // with the instance id last
	env     []string
	stderr  *os.File
	log     *slog.Logger
	backoff time.Duration

	mu      sync.Mutex
	cmd     *exec.Cmd
	pipe    *os.File // write end of cmd's standard input; nil between runs
	closing bool
	stop    chan struct{} // closed by close: ends a wait before a restart
	done    chan struct{} // closed when supervise returns
}

// startWatchdog starts the watchdog process and its supervision.
func (s *Sandbox) startWatchdog() error {
	w := &watchdog{
		argv:    append(append([]string(nil), s.watchArgv...), s.instance),
		env:     append(os.Environ(), "DOCKER_HOST="+s.cli.DaemonHost()),
		stderr:  s.watchStderr,
		log:     s.log,
		backoff: s.watchBackoff,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	cmd, pipe, err := w.spawn()
	if err != nil {
		return err
	}
	w.cmd, w.pipe = cmd, pipe
	s.wd = w
	go w.supervise(cmd)
	return nil
}

// spawn starts one watchdog process. Its standard input is a fresh pipe whose write
// end stays in this process only (os.Pipe sets close-on-exec, so no other child
// inherits it): when this process dies the watchdog reads end of file. Its own
// process group keeps a Ctrl-C meant for the server's group from reaching it. Its
// standard error is this process's own file, not a pipe through this process, so it
// can still report after this process is gone.
func (w *watchdog) spawn() (*exec.Cmd, *os.File, error) {
	r, pipe, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("container watchdog: %w", err)
	}
	cmd := exec.Command(w.argv[0], w.argv[1:]...)
	cmd.Stdin = r
	cmd.Stderr = w.stderr
	cmd.Env = w.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	r.Close()
	if err != nil {
		pipe.Close()
		return nil, nil, fmt.Errorf("container watchdog: start %s: %w", w.argv[0], err)
	}
	return cmd, pipe, nil
}

// supervise waits for the watchdog process; if it ends while the sandbox is open, it
// says so and starts a new one, after a growing wait, at most watchdogRestarts times
// in a row.
func (w *watchdog) supervise(cmd *exec.Cmd) {
	defer close(w.done)
	failures := 0
	for {
		started := time.Now()
		var why error
		if cmd != nil {
			why = cmd.Wait()
			if why == nil {
				why = errors.New("it exited")
			}
			if time.Since(started) >= watchdogStable {
				failures = 0
			}
		} else {
			why = errors.New("it could not be started")
		}
		w.mu.Lock()
		if w.closing {
			w.mu.Unlock()
			return
		}
		if w.pipe != nil {
			w.pipe.Close()
			w.pipe = nil
		}
		w.mu.Unlock()
		failures++
		if failures > watchdogRestarts {
			w.log.Error("container watchdog keeps ending; giving up: until this server restarts, a crash of it "+
				"leaves its containers running until its next start", "error", why.Error(), "restarts", watchdogRestarts)
			return
		}
		delay := w.backoff << (failures - 1)
		w.log.Warn("container watchdog ended while the server runs; restarting it", "error", why.Error(), "in", delay.String())
		select {
		case <-time.After(delay):
		case <-w.stop:
			return
		}
		w.mu.Lock()
		if w.closing {
			w.mu.Unlock()
			return
		}
		var pipe *os.File
		var err error
		if cmd, pipe, err = w.spawn(); err != nil {
			w.log.Warn("container watchdog could not be restarted", "error", err.Error())
			cmd = nil
		} else {
			w.cmd, w.pipe = cmd, pipe
		}
		w.mu.Unlock()
	}
}

// close ends the watchdog with the sandbox. clean says Close left nothing: the
// watchdog is told so and exits at once (it is killed if it does not within
// watchdogCleanExit). Otherwise it removes what is left, and Close waits for that up
// to watchdogReapWait.
func (w *watchdog) close(clean bool) {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		return
	}
	w.closing = true
	close(w.stop)
	cmd := w.cmd
	if w.pipe != nil {
		if clean {
			_, _ = w.pipe.WriteString(cleanWord)
		}
		w.pipe.Close()
		w.pipe = nil
	}
	w.mu.Unlock()
	wait := watchdogReapWait
	if clean {
		wait = watchdogCleanExit
	}
	select {
	case <-w.done:
	case <-time.After(wait):
		if clean && cmd != nil {
			_ = cmd.Process.Kill()
			<-w.done
		}
	}
}

// RunWatchdog is the whole work of a watchdog process (see WithWatchdog), for the
// sandbox whose instance id is instance. It blocks reading stdin until end of file.
// If the sandbox closed cleanly, it returns nil having done nothing. Otherwise the
// server is gone: it force-removes every container and network labelled with the
// instance (sweeping read-write grants of cut-short calls) and the instance's host
// firewall rules, looking again until a pass finds nothing, and returns.
//
// Signals follow the server's. SIGHUP (the server's reload) is ignored. A first
// SIGTERM or SIGINT is noted and the watchdog keeps waiting: a signal sent to every
// skillbox process (systemd, kill $(pidof skillbox)) also reached the server, which
// drains its calls and then closes. A second one removes everything at once. So does
// the end of ctx. It sets the process's signal handling, so it is for a process of its
// own. log receives what it does (nil: nothing).
func RunWatchdog(ctx context.Context, stdin io.Reader, instance string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !validInstance(instance) {
		return fmt.Errorf("container watchdog: instance %q: want the 12 lowercase hex digits of a sandbox's %s label", limitString(instance, 32), LabelInstance)
	}
	// SIGPIPE is caught so that a closed standard error (the server's, gone with it)
	// makes writes fail instead of killing the watchdog before it reaps.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE)
	defer signal.Stop(sigs)
	// In a process group of its own it is a background job of the server's terminal:
	// with `stty tostop` a write there would stop it.
	signal.Ignore(syscall.SIGTTOU)
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("container watchdog: docker client: %w", err)
	}
	defer cli.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = cli.Ping(pctx)
	cancel()
	if err != nil {
		return fmt.Errorf("container watchdog: %w: %v", ErrNoEngine, err)
	}
	word := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(stdin, 64))
		_, _ = io.Copy(io.Discard, stdin) // only end of file ends the wait
		word <- string(b)
	}()
	bg := context.WithoutCancel(ctx)
	signalled := false
	for {
		select {
		case w := <-word:
			if w == cleanWord {
				return nil
			}
			log.Warn("container watchdog: the server is gone without closing its sandbox; removing its containers", "instance", instance)
			return reapInstance(bg, cli, instance, log)
		case sig := <-sigs:
			if sig == syscall.SIGHUP || sig == syscall.SIGPIPE {
				continue
			}
			if !signalled {
				signalled = true
				log.Warn("container watchdog: "+sig.String()+": waiting for the server to end; send it again to remove the sandbox's containers now", "instance", instance)
				continue
			}
			log.Warn("container watchdog: "+sig.String()+" again: removing the sandbox's containers now", "instance", instance)
			return reapInstance(bg, cli, instance, log)
		case <-ctx.Done():
			return reapInstance(bg, cli, instance, log)
		}
	}
}

// reapInstance removes one sandbox's objects, passing again until a later pass finds
// nothing.
func reapInstance(ctx context.Context, cli *client.Client, instance string, log *slog.Logger) error {
	sc := reapScope{label: LabelInstance + "=" + instance, firewall: true, ruleTag: "skillbox:" + instance}
	total := 0
	var err error
	for pass := 0; pass < reapPasses; pass++ {
		if pass > 0 {
			time.Sleep(reapGap)
		}
		var n int
		n, err = reap(ctx, cli, sc)
		total += n
		if n == 0 && pass > 0 && err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("container watchdog: instance %s: %w", instance, err)
	}
	log.Info("container watchdog: removed the sandbox's containers and networks", "instance", instance, "removed", total)
	return nil
}

// validInstance says whether id is a sandbox instance id (randomID): only then is it
// safe in a label filter and a firewall rule match.
func validInstance(id string) bool {
	if len(id) != 12 {
		return false
	}
	for _, r := range id {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}
