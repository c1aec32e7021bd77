package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/host"
	"github.com/skillbox-dev/skillbox/runtime/transport"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

// unverifiedWarning is printed with every `run DIR`: an author's unsigned directory.
const unverifiedWarning = "UNVERIFIED: this skill ran from a directory with exactly what its manifest asks; nothing was verified or approved"

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run one call of a skill directory (unverified) or of an installed skill, and print the result as JSON",
		ArgsUsage: "DIR|NAME",
		UsageText: `skillbox run DIR|NAME --input JSON|@FILE [--mount GUEST=HOSTDIR]... [--json]

   skillbox run ./hello --input '{"name":"Ada"}'
   skillbox run ./grep --input @query.json --mount /data=$PWD/corpus --json
   skillbox run fetch --input '{"url":"https://example.com"}'    # an installed, approved skill`,
		Description: `run DIR is the author's inner loop: an unsigned skill directory (wasm, or a container
with image.tar) gets exactly what its manifest asks and nothing was verified or approved,
which the output says loudly. Each files capability must be bound to a host directory
with --mount; granted env and secret names take their values from this process's
environment. Limits come from the manifest.
run NAME is the operator's path: the installed skill, verified, approved and budgeted by
the same engine as the server, recorded in the audit log, with this user as the caller
(unix:uid=N). Compiled code is cached under $SKILLBOX_HOME/cache (default ~/.skillbox).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "input", Usage: "the call's input: JSON, or @FILE to read it from a file (required)"},
			&cli.StringSliceFlag{Name: "mount", Usage: "bind the manifest's files path GUEST to host directory HOSTDIR (repeatable)"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as one compact JSON line"},
			homeFlag(),
		},
		Action: runAction,
	}
}

// runOutput is what `run` prints.
// runOutput is one call's result as `run` and `invoke` print it.
type runOutput struct {
	Output  json.RawMessage `json:"output"`
	Logs    string          `json:"logs"`
	Usage   runUsage        `json:"usage"`
	Egress  []runEgress     `json:"egress"`
	Version string          `json:"version,omitempty"`
	CallID  string          `json:"callId,omitempty"`
	AuditID string          `json:"auditId,omitempty"`
	Warning string          `json:"warning,omitempty"`
}

type runUsage struct {
	WallMs float64 `json:"wallMs"`
	// CompileMs is the time the call waited for its code to be made ready (compiled, or
	// loaded from the cache; for run DIR of a container, image.tar loaded), apart from
	// wallMs (present only when it had to wait).
	CompileMs       float64 `json:"compileMs,omitempty"`
	PeakMemoryBytes int64   `json:"peakMemoryBytes"`
	OutputBytes     int64   `json:"outputBytes"`
	Requests        int     `json:"requests"`
	DeniedRequests  int     `json:"deniedRequests"`
}

type runEgress struct {
	Time    time.Time `json:"time"`
	Method  string    `json:"method"`
	URL     string    `json:"url"`
	Allowed bool      `json:"allowed"`
	Denial  string    `json:"denial,omitempty"` // NOT_GRANTED or REQUEST_LIMIT
	Reason  string    `json:"reason,omitempty"`
	Status  int       `json:"status,omitempty"`
	Bytes   int64     `json:"bytes,omitempty"`
}

func runAction(c *cli.Context) error {
	f, err := runParseArgs(c)
	if err != nil {
		return err
	}
	isDir, err := isPackageDir(c, f.dir)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if !isDir {
		// A name that is neither a directory here nor an installed skill is a typo:
		// refused before anything is opened or recorded in the skill home.
		if installed, err := isInstalled(c, f.dir); err == nil && !installed {
			return fmt.Errorf("run %s: no directory ./%s here and no installed skill %s (skillbox skills lists installed ones)", f.dir, f.dir, f.dir)
		}
		return runInstalled(c, f)
	}
	// The author's loop runs the directory as it is: code changed since the last pack
	// runs, with a warning (it is unverified anyway, and could never verify so).
	pkg, err := skillpkg.LoadStale(f.dir)
	if err != nil {
		return fmt.Errorf("run %s: %s", f.dir, authorError(err))
	}
	warning := unverifiedWarning
	if st := pkg.Stale; st != nil {
		warning += "; STALE: " + st.Name + " changed since skill.yaml recorded its digest (" + st.Field + "): run skillbox pack before signing"
	}
	m := pkg.Manifest
	input, err := readInput(f.input)
	if err != nil {
		return fmt.Errorf("run %s: input: %w", m.Name, err)
	}
	mounts, err := parseMounts(f.mounts)
	if err != nil {
		return fmt.Errorf("run %s: %w", m.Name, err)
	}
	home, err := skillboxHome(c)
	if err != nil {
		return fmt.Errorf("run %s: %w", m.Name, err)
	}
	fmt.Fprintln(c.App.ErrWriter, "WARNING: "+warning)
	for _, line := range unsetValues(m, os.LookupEnv) {
		fmt.Fprintln(c.App.ErrWriter, "note: "+line)
	}
	// Only the sandbox of the package's kind: a wasm skill does not wait for Docker.
	// The engine prepares the package in it (compiles the module, or loads image.tar
	// and checks its ID against skill.yaml) before the call.
	author, err := host.OpenAuthor(c.Context, host.Options{Home: home}, m.Sandbox.Kind())
	if err != nil {
		return fmt.Errorf("run %s: %w", m.Name, err)
	}
	defer author.Close()
	res, err := author.InvokeUnverified(c.Context, engine.UnverifiedRequest{
		Dir: f.dir, Package: pkg, Input: input, Mounts: mounts, Env: os.LookupEnv,
	})
	if err != nil {
		// A call that ran shows its logs, usage and egress decisions (output null)
		// before the one line saying why it failed.
		if res != nil {
			out := resultOutput(res)
			out.Warning = warning
			if werr := writeRunOutput(c, out, f.json); werr != nil {
				return werr
			}
		}
		return runDirError(m.Name, err)
	}
	out := resultOutput(res)
	out.Warning = warning
	return writeRunOutput(c, out, f.json)
}

// unsetValues says, for each env and secret name the manifest asks that env does not
// know, what the call does without it: `run DIR` takes those values from the author's
// shell, and a forgotten one would otherwise look like a skill or an API that fails.
func unsetValues(m *manifest.Manifest, env func(string) (string, bool)) []string {
	var out []string
	for _, n := range m.Capabilities.Env {
		if _, ok := env(n); !ok {
			out = append(out, fmt.Sprintf("env %s is not set in this shell: the skill runs without it", n))
		}
	}
	for _, n := range m.Capabilities.Secrets {
		if _, ok := env(n); !ok {
			out = append(out, fmt.Sprintf("secret %s is not set in this shell: the skill runs without it (%s=… skillbox run …)", n, n))
		}
	}
	for _, b := range m.Capabilities.Brokered {
		if _, ok := env(b.Name); !ok {
			origins := make([]string, len(b.Origins))
			for i, o := range b.Origins {
				origins[i] = o.String()
			}
			out = append(out, fmt.Sprintf("secret %s is not set in this shell: requests to %s go without its %s header (%s=… skillbox run …)",
				b.Name, strings.Join(origins, ", "), b.Header, b.Name))
		}
	}
	return out
}

// runDirError is the one line `run DIR` prints for a failed call, in the words of its
// flags.
func runDirError(name string, err error) error {
	var me *engine.MountError
	switch reason := engine.ReasonOf(err); {
	case errors.As(err, &me) && me.Unasked:
		return fmt.Errorf("run %s: --mount %s: the manifest asks for no files at %s", name, me.Guest, me.Guest)
	case errors.As(err, &me):
		return fmt.Errorf("run %s: the manifest asks for files at %s: bind it with --mount %s=HOSTDIR", name, me.Guest, me.Guest)
	case reason == engine.ReasonInvalidInput || reason == engine.ReasonInvalidOutput:
		return fmt.Errorf("run %s: %w", name, err) // "invalid input: FIELD: what is wrong"
	default:
		// The skill's own words (the end of its stderr) are the author's to see.
		if words := engine.SkillMessage(err); words != "" {
			return fmt.Errorf("run %s: %s: %w: %s", name, reason, err, words)
		}
		return fmt.Errorf("run %s: %s: %w", name, reason, err)
	}
}

// runInstalled is `run NAME`: the operator's path, through the same engine as the
// server (verified, approved, budgeted, audited), as the local caller.
func runInstalled(c *cli.Context, f runFlags) error {
	home, err := skillboxHome(c)
	if err != nil {
		return fmt.Errorf("run %s: %w", f.dir, err)
	}
	input, err := readInput(f.input)
	if err != nil {
		return fmt.Errorf("run %s: input: %w", f.dir, err)
	}
	if len(f.mounts) > 0 {
		return fmt.Errorf("run %s: --mount is for skill directories; an installed skill's files are bound by its approval", f.dir)
	}
	// No approver can decide a call of this process: one under oversight is refused
	// at once, not after its whole wait.
	h, err := host.Open(c.Context, host.Options{Home: home, NoApprovers: true})
	if err != nil {
		return fmt.Errorf("run %s: %w", f.dir, err)
	}
	defer h.Close()
	eng := h.Engine()
	res, err := eng.Invoke(c.Context, engine.Request{Skill: f.dir, Input: input, Caller: transport.LocalCaller(), Door: "cli"})
	if errors.Is(err, engine.ErrNoApprovers) {
		return fmt.Errorf("run %s: %s needs an approver's decision for each call, which run cannot ask for: call it through the server (skillbox invoke %s), where approvers see it in the console or with skillbox pending", f.dir, f.dir, f.dir)
	}
	if err != nil {
		reason := engine.ReasonOf(err)
		msg := fmt.Sprintf("run %s: %s", f.dir, engine.CallerMessage(err))
		if reason == engine.ReasonUnavailable {
			if why := h.SandboxError(manifest.KindContainer); why != nil {
				msg += ": " + why.Error()
			}
		}
		msg += " (" + string(reason) + ")"
		var ee *engine.Error
		if errors.As(err, &ee) && ee.AuditID != "" {
			msg += " audit " + ee.AuditID
		}
		return errors.New(msg)
	}
	out := resultOutput(res)
	out.Version, out.CallID, out.AuditID = res.Version, res.CallID, res.AuditID
	return writeRunOutput(c, out, f.json)
}

// resultOutput is a call's result as printed.
func resultOutput(res *engine.Result) runOutput {
	out := runOutput{
		Output: json.RawMessage(res.Output),
		Logs:   string(res.Logs),
		Usage: runUsage{
			WallMs:          float64(res.Usage.Wall.Microseconds()) / 1000,
			CompileMs:       float64(res.Usage.Compile.Microseconds()) / 1000,
			PeakMemoryBytes: res.Usage.PeakMemory,
			OutputBytes:     res.Usage.OutputBytes,
			Requests:        res.Usage.Requests,
			DeniedRequests:  res.Usage.DeniedRequests,
		},
		Egress: make([]runEgress, 0, len(res.Egress)),
	}
	for _, e := range res.Egress {
		out.Egress = append(out.Egress, runEgress{Time: e.Time, Method: e.Method, URL: e.URL, Allowed: e.Allowed,
			Denial: string(e.Denial), Reason: e.Reason, Status: e.Status, Bytes: e.Bytes})
	}
	return out
}

func writeRunOutput(c *cli.Context, out runOutput, compact bool) error {
	enc := json.NewEncoder(c.App.Writer)
	if !compact {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(out)
}

// parseMounts reads --mount GUEST=HOSTDIR flags into guest → absolute host directory;
// the engine checks them against the files the manifest asks for.
func parseMounts(mounts []string) (map[string]string, error) {
	hosts := map[string]string{}
	for _, mt := range mounts {
		guest, host, ok := strings.Cut(mt, "=")
		if !ok || guest == "" || host == "" {
			return nil, fmt.Errorf("--mount %q: want GUEST=HOSTDIR", mt)
		}
		if _, dup := hosts[guest]; dup {
			return nil, fmt.Errorf("--mount %s given twice", guest)
		}
		abs, err := filepath.Abs(host)
		if err != nil {
			return nil, fmt.Errorf("--mount %s: %w", mt, err)
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("--mount %s: %s is not a directory", guest, host)
		}
		hosts[guest] = abs
	}
	return hosts, nil
}

type runFlags struct {
	dir    string
	input  string
	mounts []string
	json   bool
}

// runParseArgs takes DIR|NAME and the flags (flags written after DIR were moved in
// front by interspersed in main.go).
func runParseArgs(c *cli.Context) (runFlags, error) {
	f := runFlags{input: c.String("input"), mounts: c.StringSlice("mount"), json: c.Bool("json")}
	if c.NArg() != 1 {
		return f, fmt.Errorf("run: want exactly one skill directory or name, got %d (see skillbox run --help)", c.NArg())
	}
	if !c.IsSet("input") {
		return f, errors.New("run: --input is required")
	}
	f.dir = c.Args().First()
	return f, nil
}
