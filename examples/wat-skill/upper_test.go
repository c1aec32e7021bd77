package watskill_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

// load reads the package in upper/ as the store would: the manifest must validate and
// module.wasm must have the digest skill.yaml names.
func load(t *testing.T) *skillpkg.Package {
	t.Helper()
	pkg, err := skillpkg.Load("upper")
	if err != nil {
		t.Fatalf("upper/ is not a valid package: %v", err)
	}
	return pkg
}

func run(t *testing.T, sb *wasm.Sandbox, pkg *skillpkg.Package, input string, memory int64) (isolation.Result, error) {
	t.Helper()
	m := pkg.Manifest
	if memory == 0 {
		memory = int64(m.Limits.Memory)
	}
	return sb.Run(context.Background(), isolation.Call{
		ID:    "upper-test",
		Skill: isolation.Skill{Manifest: m, Dir: "upper", Digest: "sha256:" + pkg.Code.SHA256},
		Input: []byte(input),
		Limits: isolation.Limits{Timeout: time.Duration(m.Limits.Timeout), Memory: memory,
			Output: int64(m.Limits.Output), Logs: 64 << 10},
	})
}

// asciiUpper is what the skill promises: a-z to A-Z, every other character as it is.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

func TestUpperInSandbox(t *testing.T) {
	pkg := load(t)
	sb, err := wasm.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(context.Background())

	big := strings.Repeat("abc xyz ", 40000) // 320 KB: the module grows its memory
	for _, tt := range []struct{ name, input string }{
		{"plain", `{"text":"hello, world"}`},
		{"empty", `{"text":""}`},
		{"whitespace between tokens", " {\n  \"text\" :\t\"Mixed Case 123\" }\n"},
		{"escapes kept", `{"text":"line\nnext \"quoted\" back\\slash \\n tab\t \u00e9t\u00E9 \ud83d\ude00"}`},
		{"utf-8 untouched", `{"text":"straße café ñandú 日本"}`},
		{"large", `{"text":"` + big + `"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := pkg.Manifest.ValidateInput([]byte(tt.input)); err != nil {
				t.Fatalf("test input does not match the input schema: %v", err)
			}
			res, err := run(t, sb, pkg, tt.input, 0)
			if err != nil {
				t.Fatalf("call failed: %v (logs %q)", err, res.Logs)
			}
			if err := pkg.Manifest.ValidateOutput(res.Output); err != nil {
				t.Fatalf("output does not match the output schema: %v\n%s", err, res.Output)
			}
			var in, out struct{ Text string }
			if err := json.Unmarshal([]byte(tt.input), &in); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(res.Output, &out); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, res.Output)
			}
			if want := asciiUpper(in.Text); out.Text != want {
				t.Errorf("text = %.80q, want %.80q", out.Text, want)
			}
		})
	}
}

// Input the engine's schema check would have refused still ends in one clear line and
// a SKILL_FAILED, never a trap or garbage output.
func TestUpperRefusesOtherShapes(t *testing.T) {
	pkg := load(t)
	sb, err := wasm.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(context.Background())
	for _, input := range []string{``, `[]`, `{"name":"x"}`, `{"text":"unterminated`, `{"text":"ends in escape\`} {
		res, err := run(t, sb, pkg, input, 0)
		if isolation.ReasonOf(err) != isolation.ReasonSkillFailed {
			t.Errorf("%q: err = %v, want SKILL_FAILED", input, err)
		}
		if len(res.Output) != 0 {
			t.Errorf("%q: output %q, want none", input, res.Output)
		}
		if !bytes.HasPrefix(res.Logs, []byte("upper: input is not")) {
			t.Errorf("%q: logs %q, want the skill's one-line message", input, res.Logs)
		}
	}
}

// Over the memory budget, the module's memory.grow fails and it says so.
func TestUpperMemoryBudget(t *testing.T) {
	pkg := load(t)
	sb, err := wasm.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(context.Background())
	input := `{"text":"` + strings.Repeat("a", 1<<20) + `"}`
	res, err := run(t, sb, pkg, input, 256<<10)
	if err == nil {
		t.Fatalf("1 MiB input under a 256 KiB memory budget succeeded: %.40q", res.Output)
	}
	t.Logf("reason %s, logs %q", isolation.ReasonOf(err), res.Logs)
	if r := isolation.ReasonOf(err); r != isolation.ReasonMemory && r != isolation.ReasonSkillFailed {
		t.Errorf("reason %s, want MEMORY or SKILL_FAILED", r)
	}
}

// The committed module is what upper.wat compiles to (when wabt is installed).
func TestModuleMatchesSource(t *testing.T) {
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		t.Skip("wat2wasm (wabt) not installed")
	}
	out := filepath.Join(t.TempDir(), "module.wasm")
	if b, err := exec.Command("wat2wasm", "upper.wat", "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	fresh, _ := os.ReadFile(out)
	committed, err := os.ReadFile(filepath.Join("upper", "module.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, committed) {
		t.Fatal("upper/module.wasm is stale: run `make -C examples/wat-skill`")
	}
}
