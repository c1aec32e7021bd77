package base

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/hostlite"
	"github.com/skillbox-dev/skillbox/runtime/runner"
	"github.com/skillbox-dev/skillbox/runtime/store"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

// UnverifiedWarning is printed with every `run DIR`: an author's unsigned directory.
const UnverifiedWarning = "UNVERIFIED: run from a directory, this skill gets exactly what its manifest asks; nothing is verified or approved"

// RunCommand is `skillbox run`, with action.
func RunCommand(action cli.ActionFunc) *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run one call of a skill directory (unverified) or of an installed skill, and print the result as JSON",
		ArgsUsage: "DIR|NAME",
		UsageText: `skillbox run DIR|NAME --input JSON|@FILE [--mount GUEST=HOSTDIR]... [--json]

   skillbox run ./hello --input '{"name":"Ada"}'
   skillbox run ./grep --input @query.json --mount /data=$PWD/corpus --json
   skillbox run fetch --input '{"url":"https://example.com"}'    # an installed, approved skill`,
		Description: `run DIR is the author's inner loop: an unsigned skill directory (wasm, or a container
with image.tar) gets exactly what its manifest asks and nothing is verified or approved,
which the output says loudly. Each files capability must be bound to a host directory
with --mount; granted env and secret names take their values from this process's
environment. Limits come from the manifest.
run NAME is the operator's path: the installed skill, verified, approved and budgeted by
the same engine as the server, recorded in the audit log, with this user as the caller
(unix:uid=N). Compiled code is cached under $SKILLBOX_HOME/cache (default ~/.skillbox).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "input", Usage: "the call's input: JSON, or @FILE to read it from a file (@- for stdin) (required)"},
			&cli.StringSliceFlag{Name: "mount", Usage: "bind the manifest's files path GUEST to host directory HOSTDIR (repeatable)"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as one compact JSON line; a failed call prints one too, with its error (reason, message)"},
			HomeFlag(),
		},
		Action: action,
	}
}

// HomeFlag is --home, the skill home.
func HomeFlag() cli.Flag {
	return &cli.StringFlag{Name: "home", EnvVars: []string{hostlite.EnvHome}, Usage: "skill home (trust.yaml, skills/, approvals/, audit/)", DefaultText: "~/" + hostlite.DefaultHomeDir}
}

// HomeRoot is the skill home's root: --home, else $SKILLBOX_HOME, else ~/.skillbox.
func HomeRoot(c *cli.Context) (string, error) { return hostlite.ResolveHome(c.String("home")) }

// Author is the author's unverified path over one sandbox (hostlite.Author).
type Author interface {
	InvokeUnverified(ctx context.Context, req runner.UnverifiedRequest) (*runner.Result, error)
	Close() error
}

// RunOptions is what a binary lets `run` do.
type RunOptions struct {
	// Installed runs `run NAME` of a skill installed in the home.
	Installed func(c *cli.Context, f RunFlags) error
	// Runs reports whether OpenAuthor opens the sandbox of kind; a directory of
	// another kind goes to Elsewhere before anything is read or printed.
	Runs      func(kind string) bool
	Elsewhere func(c *cli.Context) error
	// OpenAuthor opens the author's path over the sandbox of kind, for the skill home
	// at root.
	OpenAuthor func(ctx context.Context, root, kind string) (Author, error)
}

// RunAction is `run DIR|NAME`: a directory runs here, unverified; an installed name
// goes to o.Installed; a name that is neither is refused before anything is opened.
func RunAction(o RunOptions) cli.ActionFunc {
	return func(c *cli.Context) error {
		f, err := ParseRunArgs(c)
		if err != nil {
			return err
		}
		isDir, err := IsPackageDir(c, f.Dir)
		if err != nil {
			return fmt.Errorf("run: %w", err)
		}
		if !isDir {
			// A name that is neither a directory here nor an installed skill is a typo:
			// refused before anything is opened or recorded in the skill home.
			if installed, err := IsInstalled(c, f.Dir); err == nil && !installed {
				return fmt.Errorf("run %s: no directory ./%s here and no installed skill %s (skillbox skills lists installed ones)", f.Dir, f.Dir, f.Dir)
			}
			return o.Installed(c, f)
		}
		return runDir(c, f, o)
	}
}

// runDir is the author's loop: the directory as it is, code changed since the last
// pack included, with a warning (it is unverified anyway, and could never verify so).
func runDir(c *cli.Context, f RunFlags, o RunOptions) error {
	root, err := HomeRoot(c)
	if err != nil {
		return fmt.Errorf("run %s: %w", f.Dir, err)
	}
	// The author runs the same directory again and again: a schema checked against
	// its metaschema once is not checked again (hostlite.SchemaChecks).
	pkg, err := skillpkg.LoadStaleWith(f.Dir, hostlite.NewSchemaChecks(root))
	if err != nil {
		return fmt.Errorf("run %s: %s", f.Dir, AuthorError(err))
	}
	m := pkg.Manifest
	if !o.Runs(m.Sandbox.Kind()) {
		return o.Elsewhere(c)
	}
	warning := UnverifiedWarning
	if st := pkg.Stale; st != nil {
		warning += "; STALE: " + st.Name + " changed since skill.yaml recorded its digest (" + st.Field + "): run skillbox pack before signing"
	}
	input, err := ReadInput(f.Input)
	if err != nil {
		return fmt.Errorf("run %s: input: %w", m.Name, err)
	}
	mounts, err := ParseMounts(f.Mounts)
	if err != nil {
		return fmt.Errorf("run %s: %w", m.Name, err)
	}
	fmt.Fprintln(c.App.ErrWriter, "WARNING: "+warning)
	for _, line := range UnsetValues(m, os.LookupEnv) {
		fmt.Fprintln(c.App.ErrWriter, "note: "+line)
	}
	// Only the sandbox of the package's kind: a wasm skill does not wait for Docker.
	// The runner prepares the package in it (compiles the module, or loads image.tar
	// and checks its ID against skill.yaml) before the call.
	author, err := o.OpenAuthor(c.Context, root, m.Sandbox.Kind())
	if err != nil {
		return fmt.Errorf("run %s: %w", m.Name, err)
	}
	defer author.Close()
	res, err := author.InvokeUnverified(c.Context, runner.UnverifiedRequest{
		Dir: f.Dir, Package: pkg, Input: input, Mounts: mounts, Env: os.LookupEnv,
	})
	if err != nil {
		// A call that ran shows its logs, usage and egress decisions (output null)
		// before the one line saying why it failed; with --json, every failed call
		// says why on stdout too.
		if f.JSON {
			fail := CallFailure(err, res)
			fail.Warning = warning
			if werr := WriteRunFailure(c.App.Writer, fail); werr != nil {
				return werr
			}
		} else if res != nil {
			out := ResultOutput(res)
			out.Warning = warning
			if werr := WriteRunOutput(c.App.Writer, out, false); werr != nil {
				return werr
			}
		}
		return RunDirError(m.Name, err)
	}
	out := ResultOutput(res)
	out.Warning = warning
	return WriteRunOutput(c.App.Writer, out, f.JSON)
}

// RunOutput is one call's result as `run` and `invoke` print it.
type RunOutput struct {
	Output json.RawMessage `json:"output"`
	Logs   string          `json:"logs"`
	// LogsTruncated: Logs is only the end of the call's logs (a failed invoke's reply
	// carries the last 4 KiB).
	LogsTruncated bool        `json:"logsTruncated,omitempty"`
	Usage         RunUsage    `json:"usage"`
	Egress        []RunEgress `json:"egress"`
	Version       string      `json:"version,omitempty"`
	CallID        string      `json:"callId,omitempty"`
	AuditID       string      `json:"auditId,omitempty"`
	Warning       string      `json:"warning,omitempty"`
}

// RunError is why a call failed, as `run --json` and `invoke --json` print it: the
// machine-readable reason (the one the stderr line ends with, and the wire API's
// ErrorDetail.reason), one line for people, and what identifies the call where known.
type RunError struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// Field is the offending field's path, for INVALID_INPUT and INVALID_OUTPUT.
	Field string `json:"field,omitempty"`
	// AuditID is the audit record of the failed or refused call (run NAME, invoke).
	AuditID string `json:"auditId,omitempty"`
	// CallID is the call's id, where the failure carries it: a call that ran (invoke,
	// run NAME) or that waited for an approver's decision (invoke).
	CallID string `json:"callId,omitempty"`
}

// RunFailure is a failed call as `run --json` and `invoke --json` print it, one
// compact line: error, and, when the call ran far enough to have them, the fields of
// RunOutput (output null, logs, usage, egress).
type RunFailure struct {
	Error RunError `json:"error"`
	// *RunOutput is nil for a call refused before it ran: its fields are left out.
	*RunOutput
	// Warning is run DIR's warning, whether or not the call ran.
	Warning string `json:"warning,omitempty"`
}

// CallFailure is err's line for a failed call; res, if not nil, is what the call that
// ran left (its output is not printed).
func CallFailure(err error, res *runner.Result) RunFailure {
	fail := RunFailure{Error: RunError{Reason: string(runner.ReasonOf(err)), Message: runner.CallerMessage(err)}}
	var re *runner.Error
	if errors.As(err, &re) {
		fail.Error.Field, fail.Error.AuditID = re.Field, re.AuditID
	}
	if res != nil {
		out := ResultOutput(res)
		out.Output = nil
		fail.RunOutput = &out
	}
	return fail
}

// WriteRunFailure prints fail to w as one compact line.
func WriteRunFailure(w io.Writer, fail RunFailure) error {
	return json.NewEncoder(w).Encode(fail)
}

// RunUsage is what a call used, as printed. Times are whole milliseconds, as the wire
// API, MCP and the audit log give them (a call of under 1 ms shows 0), so a number
// means the same wherever a user reads it.
type RunUsage struct {
	WallMs int64 `json:"wallMs"`
	// CompileMs is the time the call waited for its code to be made ready (compiled, or
	// loaded from the cache; for run DIR of a container, image.tar loaded), apart from
	// wallMs (present only when it waited 1 ms or more).
	CompileMs       int64 `json:"compileMs,omitempty"`
	PeakMemoryBytes int64 `json:"peakMemoryBytes"`
	OutputBytes     int64 `json:"outputBytes"`
	Requests        int   `json:"requests"`
	DeniedRequests  int   `json:"deniedRequests"`
}

// RunEgress is one outbound request decision, as printed.
type RunEgress struct {
	Time    time.Time `json:"time"`
	Method  string    `json:"method"`
	URL     string    `json:"url"`
	Allowed bool      `json:"allowed"`
	Denial  string    `json:"denial,omitempty"` // NOT_GRANTED or REQUEST_LIMIT
	Reason  string    `json:"reason,omitempty"`
	Status  int       `json:"status,omitempty"`
	Bytes   int64     `json:"bytes,omitempty"`
}

// ResultOutput is a call's result as printed.
func ResultOutput(res *runner.Result) RunOutput {
	out := RunOutput{
		Output: json.RawMessage(res.Output),
		Logs:   string(res.Logs),
		Usage: RunUsage{
			WallMs:          res.Usage.Wall.Milliseconds(),
			CompileMs:       res.Usage.Compile.Milliseconds(),
			PeakMemoryBytes: res.Usage.PeakMemory,
			OutputBytes:     res.Usage.OutputBytes,
			Requests:        res.Usage.Requests,
			DeniedRequests:  res.Usage.DeniedRequests,
		},
		Egress: make([]RunEgress, 0, len(res.Egress)),
	}
	for _, e := range res.Egress {
		out.Egress = append(out.Egress, RunEgress{Time: e.Time, Method: e.Method, URL: e.URL, Allowed: e.Allowed,
			Denial: string(e.Denial), Reason: e.Reason, Status: e.Status, Bytes: e.Bytes})
	}
	return out
}

// WriteRunOutput prints out to w: indented, or one compact line.
func WriteRunOutput(w io.Writer, out RunOutput, compact bool) error {
	enc := json.NewEncoder(w)
	if !compact {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(out)
}

// UnsetValues says, for each env and secret name the manifest asks that env does not
// know, what the call does without it: `run DIR` takes those values from the author's
// shell, and a forgotten one would otherwise look like a skill or an API that fails.
func UnsetValues(m *manifest.Manifest, env func(string) (string, bool)) []string {
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

// CallError is a failed call as every command that makes one (run DIR, run NAME,
// invoke) ends it, one line of one shape: "CMD NAME: MESSAGE (REASON) audit N", the
// reason the machine-readable one (--json's error.reason, the wire's
// ErrorDetail.reason), the audit record where the call was recorded. A script reads
// the reason from the parentheses at the end (before " audit N"). Err keeps the cause.
type CallError struct {
	Cmd, Name string // "run", "invoke"; the skill
	Message   string
	Reason    string
	AuditID   string
	Err       error
}

func (e *CallError) Error() string {
	return e.Cmd + " " + e.Name + ": " + ReasonLine(e.Message, e.Reason, e.AuditID)
}

// ReasonLine is the end of every failure line that has a machine-readable reason:
// "MESSAGE (REASON)", then " audit N" when the failure was recorded.
func ReasonLine(msg, reason, auditID string) string {
	s := msg + " (" + reason + ")"
	if auditID != "" {
		s += " audit " + auditID
	}
	return s
}

func (e *CallError) Unwrap() error { return e.Err }

// RunDirError is the one line `run DIR` prints for a failed call (a CallError, never
// audited), in the words of its flags.
func RunDirError(name string, err error) error {
	reason := runner.ReasonOf(err)
	msg := err.Error()
	var me *runner.MountError
	switch {
	case errors.As(err, &me) && me.Unasked:
		msg = fmt.Sprintf("--mount %s: the manifest asks for no files at %s", me.Guest, me.Guest)
	case errors.As(err, &me):
		msg = fmt.Sprintf("the manifest asks for files at %s: bind it with --mount %s=HOSTDIR", me.Guest, me.Guest)
	default:
		// The skill's own words (the end of its stderr) are the author's to see.
		if words := runner.SkillMessage(err); words != "" {
			msg += ": " + words
		}
	}
	return &CallError{Cmd: "run", Name: name, Message: msg, Reason: string(reason), Err: err}
}

// ParseMounts reads --mount GUEST=HOSTDIR flags into guest → absolute host directory;
// the runner checks them against the files the manifest asks for.
func ParseMounts(mounts []string) (map[string]string, error) {
	hosts := map[string]string{}
	for _, mt := range mounts {
		guest, host, ok := strings.Cut(mt, "=")
		if !ok || guest == "" || host == "" {
			return nil, Usagef("--mount %q: want GUEST=HOSTDIR", mt)
		}
		if _, dup := hosts[guest]; dup {
			return nil, Usagef("--mount %s given twice", guest)
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

// RunFlags are `run`'s argument and flags.
type RunFlags struct {
	Dir    string // DIR or NAME
	Input  string
	Mounts []string
	JSON   bool
}

// ParseRunArgs takes DIR|NAME and the flags (flags written after DIR were moved in
// front by Interspersed).
func ParseRunArgs(c *cli.Context) (RunFlags, error) {
	f := RunFlags{Input: c.String("input"), Mounts: c.StringSlice("mount"), JSON: c.Bool("json")}
	if c.NArg() != 1 {
		return f, Usagef("run: want exactly one skill directory or name, got %d (see skillbox run --help)", c.NArg())
	}
	if !c.IsSet("input") {
		return f, Usagef("run: --input is required")
	}
	f.Dir = c.Args().First()
	return f, nil
}

// MaxInput bounds --input: a call's input is JSON for one skill, not a bulk upload
// (the server's own gRPC limit is 4 MiB).
const MaxInput = 16 << 20

// ReadInput reads --input: inline JSON, @FILE or @- for stdin, at most MaxInput bytes.
func ReadInput(s string) ([]byte, error) {
	name, ok := strings.CutPrefix(s, "@")
	if !ok {
		return []byte(s), nil
	}
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxInput+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxInput {
		return nil, fmt.Errorf("%s is larger than %d MiB", s, MaxInput>>20)
	}
	return b, nil
}

// AuthorError renders an error as one line; manifest problems are joined with "; ".
func AuthorError(err error) string {
	var me *manifest.Error
	var pe *skillpkg.ManifestError
	if errors.As(err, &pe) && errors.As(err, &me) {
		return pe.File + ": " + strings.Join(me.Lines(), "; ")
	}
	return err.Error()
}

// IsPackageDir decides whether the argument of `run` or `review` is a package
// directory (the author's) or the name of an installed skill (the operator's). A path
// with a slash is a directory; a bare name that is both a directory here and an
// installed skill is refused, so that an operator standing in the author's folder never
// runs unapproved code thinking it is the installed skill.
func IsPackageDir(c *cli.Context, arg string) (bool, error) {
	st, err := os.Stat(arg)
	dirHere := err == nil && st.IsDir()
	if strings.ContainsRune(arg, '/') || arg == "." || arg == ".." || manifest.CheckName(arg) != nil {
		return true, nil
	}
	installed, err := IsInstalled(c, arg)
	if err != nil {
		return false, err
	}
	if dirHere && installed {
		return false, fmt.Errorf("%s is both a directory here and an installed skill: write ./%s for the directory, or run this from another directory for the installed skill", arg, arg)
	}
	return dirHere, nil
}

// IsInstalled reports whether the skill home holds any version of name, without
// creating the home.
func IsInstalled(c *cli.Context, name string) (bool, error) {
	root, err := HomeRoot(c)
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(store.SkillsDir(root)); err != nil {
		return false, nil
	}
	st, err := store.Open(root)
	if err != nil {
		return false, err
	}
	_, err = st.Lookup(name, "")
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
