package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/manifest"
)

// unverifiedWarning is printed with every `run DIR`: an author's unsigned directory.
const unverifiedWarning = "UNVERIFIED: this skill ran from a directory with exactly what its manifest asks; nothing was verified or approved"

// Budgets the manifest does not set, for the author's loop. The engine will own these.
const (
	runResponseBytes = 4 << 20
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run one call of a skill directory in its sandbox and print the result as JSON",
		ArgsUsage: "DIR",
		UsageText: `skillbox run DIR --input JSON|@FILE [--mount GUEST=HOSTDIR]... [--json]

   skillbox run ./hello --input '{"name":"Ada"}'
   skillbox run ./grep --input @query.json --mount /data=$PWD/corpus --json`,
		Description: `Runs an unsigned skill directory (the author's inner loop): the skill gets exactly what
its manifest asks and nothing was verified or approved, which the output says loudly.
Each files capability must be bound to a host directory with --mount; granted env and
secret names take their values from this process's environment. Limits come from the
manifest; compiled code is cached under $SKILLBOX_HOME/cache (default ~/.skillbox).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "input", Usage: "the call's input: JSON, or @FILE to read it from a file (required)"},
			&cli.StringSliceFlag{Name: "mount", Usage: "bind the manifest's files path GUEST to host directory HOSTDIR (repeatable)"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as one compact JSON line"},
		},
		Action: runAction,
	}
}

// runOutput is what `run` prints.
type runOutput struct {
	Output  json.RawMessage `json:"output"`
	Logs    string          `json:"logs"`
	Usage   runUsage        `json:"usage"`
	Egress  []runEgress     `json:"egress"`
	Warning string          `json:"warning"`
}

type runUsage struct {
	WallMs          float64 `json:"wallMs"`
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
	Reason  string    `json:"reason,omitempty"`
	Status  int       `json:"status,omitempty"`
	Bytes   int64     `json:"bytes,omitempty"`
}

func runAction(c *cli.Context) error {
	f, err := runParseArgs(c)
	if err != nil {
		return err
	}
	dir := f.dir
	m, _, err := manifest.LoadFile(filepath.Join(dir, "skill.yaml"))
	if err != nil {
		return fmt.Errorf("run %s: %w", dir, err)
	}
	if m.Sandbox.Wasm == nil {
		return fmt.Errorf("run %s: only wasm skills can run yet", m.Name)
	}
	input, err := runReadInput(f.input)
	if err != nil {
		return fmt.Errorf("run %s: %w", m.Name, err)
	}
	if err := m.ValidateInput(input); err != nil {
		return fmt.Errorf("run %s: invalid input: %w", m.Name, err)
	}
	digest, err := runFileDigest(filepath.Join(dir, filepath.FromSlash(m.Sandbox.Wasm.Module)))
	if err != nil {
		return fmt.Errorf("run %s: %w", m.Name, err)
	}
	if digest != "sha256:"+m.Sandbox.Wasm.SHA256 {
		return fmt.Errorf("run %s: %s does not match the sha256 in skill.yaml (run skillbox pack)", m.Name, m.Sandbox.Wasm.Module)
	}
	grant, err := runGrant(m, f.mounts)
	if err != nil {
		return fmt.Errorf("run %s: %w", m.Name, err)
	}
	home, err := runHome()
	if err != nil {
		return fmt.Errorf("run %s: %w", m.Name, err)
	}
	cacheDir := filepath.Join(home, "cache")
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return fmt.Errorf("run %s: cache: %w", m.Name, err)
	}

	fmt.Fprintln(c.App.ErrWriter, "WARNING: "+unverifiedWarning)
	sb, err := wasm.New(c.Context, wasm.WithCacheDir(cacheDir))
	if err != nil {
		return fmt.Errorf("run %s: %w", m.Name, err)
	}
	defer sb.Close(c.Context)
	res, err := sb.Run(c.Context, isolation.Call{
		ID:     fmt.Sprintf("run-%d", time.Now().UnixNano()),
		Skill:  isolation.Skill{Manifest: m, Dir: dir, Digest: digest},
		Input:  input,
		Grant:  grant,
		Limits: runLimits(m),
	})
	if err != nil {
		return fmt.Errorf("run %s: %s: %w", m.Name, isolation.ReasonOf(err), err)
	}
	if err := m.ValidateOutput(res.Output); err != nil {
		return fmt.Errorf("run %s: invalid output: %w", m.Name, err)
	}
	return printRun(c, res, f.json)
}

func printRun(c *cli.Context, res isolation.Result, compact bool) error {
	out := runOutput{
		Output: json.RawMessage(res.Output),
		Logs:   string(res.Logs),
		Usage: runUsage{
			WallMs:          float64(res.Usage.Wall.Microseconds()) / 1000,
			PeakMemoryBytes: res.Usage.PeakMemory,
			OutputBytes:     res.Usage.OutputBytes,
			Requests:        res.Usage.Requests,
			DeniedRequests:  res.Usage.DeniedRequests,
		},
		Egress:  make([]runEgress, 0, len(res.Egress)),
		Warning: unverifiedWarning,
	}
	for _, e := range res.Egress {
		out.Egress = append(out.Egress, runEgress(e))
	}
	enc := json.NewEncoder(c.App.Writer)
	if !compact {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(out)
}

// runReadInput takes JSON inline or from @FILE.
func runReadInput(s string) ([]byte, error) {
	if name, ok := strings.CutPrefix(s, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		return b, nil
	}
	return []byte(s), nil
}

func runFileDigest(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// runGrant grants exactly what the manifest asks: every files path bound by a
// --mount, env and secret values from this process's environment.
func runGrant(m *manifest.Manifest, mounts []string) (isolation.Grant, error) {
	hosts := map[string]string{}
	for _, mt := range mounts {
		guest, host, ok := strings.Cut(mt, "=")
		if !ok || guest == "" || host == "" {
			return isolation.Grant{}, fmt.Errorf("--mount %q: want GUEST=HOSTDIR", mt)
		}
		if _, dup := hosts[guest]; dup {
			return isolation.Grant{}, fmt.Errorf("--mount %s given twice", guest)
		}
		abs, err := filepath.Abs(host)
		if err != nil {
			return isolation.Grant{}, fmt.Errorf("--mount %s: %w", mt, err)
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			return isolation.Grant{}, fmt.Errorf("--mount %s: %s is not a directory", guest, host)
		}
		hosts[guest] = abs
	}
	g := isolation.Grant{Network: m.Capabilities.Network, Env: map[string]string{}}
	for _, f := range m.Capabilities.Files {
		host, ok := hosts[f.Path]
		if !ok {
			return isolation.Grant{}, fmt.Errorf("the manifest asks for files at %s: bind it with --mount %s=HOSTDIR", f.Path, f.Path)
		}
		delete(hosts, f.Path)
		g.Files = append(g.Files, isolation.Mount{Guest: f.Path, Host: host, Access: f.Access})
	}
	for guest := range hosts {
		return isolation.Grant{}, fmt.Errorf("--mount %s: the manifest asks for no files at %s", guest, guest)
	}
	for _, name := range append(append([]string(nil), m.Capabilities.Env...), m.Capabilities.Secrets...) {
		if v, ok := os.LookupEnv(name); ok {
			g.Env[name] = v
		}
	}
	return g, nil
}

// runLimits is the manifest's budget; stderr gets as much as stdout.
func runLimits(m *manifest.Manifest) isolation.Limits {
	return isolation.Limits{
		Timeout:  time.Duration(m.Limits.Timeout),
		Memory:   int64(m.Limits.Memory),
		Output:   int64(m.Limits.Output),
		Logs:     int64(m.Limits.Output),
		CPU:      m.Limits.CPU,
		Requests: m.Limits.Requests,
		Response: runResponseBytes,
	}
}

// runHome is $SKILLBOX_HOME, or ~/.skillbox.
func runHome() (string, error) {
	if h := os.Getenv("SKILLBOX_HOME"); h != "" {
		return h, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find SKILLBOX_HOME: %w", err)
	}
	return filepath.Join(home, ".skillbox"), nil
}

type runFlags struct {
	dir    string
	input  string
	mounts []string
	json   bool
}

// runParseArgs takes DIR and the flags, also those written after DIR ("run DIR
// --input …"), which urfave/cli v2 leaves unparsed.
func runParseArgs(c *cli.Context) (runFlags, error) {
	f := runFlags{input: c.String("input"), mounts: c.StringSlice("mount"), json: c.Bool("json")}
	inputSet := c.IsSet("input")
	var pos []string
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "json" {
			f.json = !hasVal || val == "true"
			continue
		}
		if name != "input" && name != "mount" {
			return f, fmt.Errorf("run: unknown flag %s (see skillbox run --help)", a)
		}
		if !hasVal {
			if i+1 >= len(args) {
				return f, fmt.Errorf("run: flag %s needs a value", a)
			}
			i++
			val = args[i]
		}
		if name == "input" {
			f.input, inputSet = val, true
		} else {
			f.mounts = append(f.mounts, val)
		}
	}
	if len(pos) != 1 {
		return f, fmt.Errorf("run: want exactly one skill directory, got %d (see skillbox run --help)", len(pos))
	}
	if !inputSet {
		return f, errors.New("run: --input is required")
	}
	f.dir = pos[0]
	return f, nil
}
