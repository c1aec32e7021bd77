package front

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// heavy are module path prefixes the front must not link: each costs start-up time
// in package initialisation before main (issue 18).
var heavy = []string{
	"k8s.io/", "sigs.k8s.io/", "github.com/docker/", "github.com/moby/", "github.com/sigstore/",
	"oras.land/", "github.com/prometheus/",
	"google.golang.org/grpc", "google.golang.org/protobuf", "github.com/modelcontextprotocol/",
	"github.com/asaskevich/govalidator", "github.com/go-openapi/", "go.opentelemetry.io/",
	"github.com/google/go-containerregistry", "github.com/opencontainers/",
}

// The command users type links nothing heavy: no Kubernetes, Docker, sigstore, OCI,
// metrics or gRPC library, nor the engine that needs them.
func TestFrontLinksNoHeavyPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../../cmd/skillbox").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list -deps listed %d packages: %q", len(deps), out)
	}
	own := []string{ // skillbox's packages that link the heavy ones
		"github.com/skillbox-dev/skillbox/runtime/engine", "github.com/skillbox-dev/skillbox/runtime/host",
		"github.com/skillbox-dev/skillbox/signing", "github.com/skillbox-dev/skillbox/runtime/audit",
		"github.com/skillbox-dev/skillbox/runtime/metrics", "github.com/skillbox-dev/skillbox/isolation/container",
		"github.com/skillbox-dev/skillbox/internal/cli",
	}
	// jsonschema is linked, as the copy whose init compiles nothing
	// (third_party/santhosh-tekuri-jsonschema), not upstream's.
	out, err = exec.Command("go", "list", "-m", "-f", "{{with .Replace}}{{.Path}}{{end}}", "github.com/santhosh-tekuri/jsonschema/v6").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "./third_party/santhosh-tekuri-jsonschema" {
		t.Errorf("jsonschema/v6 is not replaced by the patched copy: %v %s", err, out)
	}
	for _, d := range deps {
		for _, h := range heavy {
			if strings.HasPrefix(d, h) {
				t.Errorf("cmd/skillbox links %s", d)
			}
		}
		for _, o := range own {
			if d == o {
				t.Errorf("cmd/skillbox links %s", d)
			}
		}
	}
}

// binaries builds skillbox and skillbox-full side by side and returns their paths.
func binaries(t *testing.T) (front, full string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "../../cmd/skillbox", "../../cmd/skillbox-full").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "skillbox"), filepath.Join(dir, FullName)
}

type result struct {
	code           int
	stdout, stderr string
}

func runBin(t *testing.T, bin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

// skillDir is an unsigned wasm skill directory around the engine's echo module.
func skillDir(t *testing.T) string {
	t.Helper()
	return skillDirOutput(t, "{type: object}")
}

// skillDirOutput is skillDir with the output schema output.
func skillDirOutput(t *testing.T, output string) string {
	t.Helper()
	dir := t.TempDir()
	code, err := os.ReadFile(filepath.Join("..", "..", "runtime", "engine", "testdata", "echo.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "module.wasm"), code, 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := "apiVersion: skillbox/v1\nname: echo\nversion: 1.0.0\ndescription: Echo the input.\n" +
		"sandbox:\n  wasm:\n    module: module.wasm\n    sha256: " + fmt.Sprintf("%x", sha256.Sum256(code)) + "\n" +
		"input:\n  type: object\n  properties:\n    name: {type: string}\n  required: [name]\noutput: " + output + "\n"
	if err := os.WriteFile(filepath.Join(dir, "skill.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// withoutTimes drops the usage fields that differ from one run to the next.
func withoutTimes(t *testing.T, stdout string) string {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(stdout), &v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout)
	}
	if u, ok := v["usage"].(map[string]any); ok {
		delete(u, "wallMs")
		delete(u, "compileMs")
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// `run DIR` of a wasm skill, which skillbox runs itself, says exactly what
// skillbox-full says for the same call: output, warnings, errors and exit codes.
func TestRunDirSameThroughBothBinaries(t *testing.T) {
	front, full := binaries(t)
	dir := skillDir(t)
	// Its output never matches: the call runs and fails INVALID_OUTPUT.
	strict := skillDirOutput(t, "{type: object, required: [greeting]}")
	env := []string{"SKILLBOX_HOME=" + filepath.Join(t.TempDir(), "home")}
	// Exit 2 is a command line that is wrong, 1 a call or directory that failed.
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"run", dir, "--input", `{"name":"Ada"}`}, 0},
		{[]string{"run", dir, "--input", `{"name":"Ada"}`, "--json"}, 0},
		{[]string{"run", "--json", dir, "--input", `{"name":7}`}, 1},        // invalid input
		{[]string{"run", dir, "--input", `{"name":`}, 1},                    // not JSON
		{[]string{"run", strict, "--input", `{"name":"Ada"}`, "--json"}, 1}, // ran, and failed
		{[]string{"run", strict, "--input", `{"name":"Ada"}`}, 1},
		{[]string{"run", dir, "--input", `{"name":"Ada"}`, "--mount", "/data=" + dir}, 1}, // a mount the manifest does not ask
		{[]string{"run", dir, "--input", `{"name":"Ada"}`, "--mount", "/data"}, 2},        // a mount without =HOSTDIR
		{[]string{"run", dir}, 2},                                                         // no --input
		{[]string{"run", dir, "--input"}, 2},                                              // --input without a value
		{[]string{"run", dir, "--nosuch", "--input", "{}"}, 2},
		{[]string{"run", dir, dir, "--input", "{}"}, 2},
		{[]string{"run", filepath.Join(dir, "nosuch"), "--input", "{}"}, 1},
		{[]string{"version"}, 0},
		{[]string{"--version"}, 0},
		{[]string{"version", "extra"}, 2},
	} {
		args := tc.args
		a, b := runBin(t, front, env, args...), runBin(t, full, env, args...)
		if a.code != b.code || a.stderr != b.stderr {
			t.Errorf("%q: skillbox exit %d, stderr %q; skillbox-full exit %d, stderr %q", args, a.code, a.stderr, b.code, b.stderr)
		}
		if a.code != tc.code {
			t.Errorf("%q: exit %d, want %d; stderr %q", args, a.code, tc.code, a.stderr)
		}
		if args[0] == "run" && a.stdout != "" {
			if x, y := withoutTimes(t, a.stdout), withoutTimes(t, b.stdout); x != y {
				t.Errorf("%q: stdout differs:\nskillbox:      %s\nskillbox-full: %s", args, x, y)
			}
		} else if a.stdout != b.stdout {
			t.Errorf("%q: stdout differs:\nskillbox:      %q\nskillbox-full: %q", args, a.stdout, b.stdout)
		}
	}
	// The call really ran, in both.
	if r := runBin(t, front, env, "run", dir, "--input", `{"name":"Ada"}`, "--json"); r.code != 0 || !strings.Contains(r.stdout, `"output":{"name":"Ada"}`) {
		t.Fatalf("run DIR: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A failed call with --json says why on stdout too, as one JSON line: refused
	// before it ran (no usage), or after (its usage).
	for _, tc := range []struct {
		dir, input, reason string
		ran                bool
	}{
		{dir, `{"name":7}`, "INVALID_INPUT", false},
		{strict, `{"name":"Ada"}`, "INVALID_OUTPUT", true},
	} {
		r := runBin(t, front, env, "run", tc.dir, "--input", tc.input, "--json")
		var out struct {
			Error   struct{ Reason, Message, Field string }
			Usage   *struct{ WallMs int64 }
			Warning string
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); r.code != 1 || err != nil || strings.Count(r.stdout, "\n") != 1 {
			t.Fatalf("run %s --json: exit %d, want 1 and one JSON line on stdout (%v):\n%s%s", tc.input, r.code, err, r.stdout, r.stderr)
		}
		if out.Error.Reason != tc.reason || out.Error.Message == "" || out.Warning == "" || (out.Usage != nil) != tc.ran {
			t.Errorf("run %s --json: %s: want reason %s, a message, the warning, usage only if it ran", tc.input, r.stdout, tc.reason)
		}
	}
}

// What skillbox does not run itself, skillbox-full does, in the same process: help,
// did-you-mean, other commands, exit codes.
func TestHandsOverToFull(t *testing.T) {
	front, _ := binaries(t)
	env := []string{"SKILLBOX_HOME=" + filepath.Join(t.TempDir(), "home")}
	if r := runBin(t, front, env, "help"); r.code != 0 || !strings.Contains(r.stdout, "keygen") || !strings.Contains(r.stdout, "serve") {
		t.Errorf("help: exit %d, stdout lacks the full command list:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runBin(t, front, env, "run", "--help"); r.code != 0 || !strings.Contains(r.stdout, "skillbox run DIR|NAME") {
		t.Errorf("run --help: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// skillbox-full's exit status comes through: 2 for a command line that is wrong.
	if r := runBin(t, front, env, "invok"); r.code != 2 || r.stderr != "skillbox: unknown command \"invok\"; did you mean skillbox invoke? (see skillbox --help)\n" {
		t.Errorf("invok: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runBin(t, front, env, "install"); r.code != 2 || r.stderr != "skillbox: install: want exactly one DIR, FILE.tar.gz or oci://REF (see skillbox install --help)\n" {
		t.Errorf("install: exit %d, stderr %q", r.code, r.stderr)
	}
	// `run NAME` of a name not installed is refused by the front itself, in the full
	// CLI's words; an installed one would go over.
	if r := runBin(t, front, env, "run", "nosuch", "--input", "{}"); r.code != 1 || !strings.Contains(r.stderr, "no directory ./nosuch here and no installed skill nosuch") {
		t.Errorf("run nosuch: exit %d, stderr %q", r.code, r.stderr)
	}
	// The process the caller started is the one that runs the command (exec, not a
	// child, so signals and the exit code reach it): its pid becomes skillbox-full.
	cmd := exec.Command(front, "serve", "--listen", "unix://"+filepath.Join(t.TempDir(), "s.sock"))
	cmd.Env = append(os.Environ(), env...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	exe := ""
	for range 200 {
		if p, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "exe")); err == nil && strings.HasSuffix(p, FullName) {
			exe = p
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if exe == "" {
		t.Fatalf("pid %d never became %s\n%s", cmd.Process.Pid, FullName, errb.String())
	}
}

// Without skillbox-full beside it or on PATH, a command skillbox does not run itself
// fails with one line saying what to install; what it runs itself still works.
func TestFullMissing(t *testing.T) {
	front, _ := binaries(t)
	alone := filepath.Join(t.TempDir(), "skillbox")
	b, err := os.ReadFile(front)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alone, b, 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + t.TempDir(), "SKILLBOX_HOME=" + filepath.Join(t.TempDir(), "home")}
	r := runBin(t, alone, env, "skills")
	if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "skillbox-full") || !strings.Contains(r.stderr, "go install ./cmd/skillbox ./cmd/skillbox-full") {
		t.Errorf("skills without skillbox-full: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runBin(t, alone, env, "run", skillDir(t), "--input", `{"name":"Ada"}`, "--json"); r.code != 0 || !strings.Contains(r.stdout, `"output":{"name":"Ada"}`) {
		t.Errorf("run DIR without skillbox-full: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
