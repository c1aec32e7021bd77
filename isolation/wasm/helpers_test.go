package wasm_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/manifest"
)

// testEnv is shared by the tests of one run: Go guests are built once, and compiled
// code goes to one on-disk cache so each new Sandbox loads instead of recompiling.
type testEnv struct {
	dir      string
	cacheDir string
	mu       sync.Mutex
	built    map[string]error
}

var env testEnv

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "skillbox-wasm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	env = testEnv{dir: dir, cacheDir: filepath.Join(dir, "cache"), built: map[string]error{}}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func digestOf(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func skillAt(tb testing.TB, dir, module string) isolation.Skill {
	tb.Helper()
	return isolation.Skill{
		Manifest: &manifest.Manifest{Name: "test-skill", Sandbox: manifest.Sandbox{Wasm: &manifest.WasmSandbox{Module: module}}},
		Dir:      dir,
		Digest:   digestOf(tb, filepath.Join(dir, module)),
	}
}

// watSkill is a committed testdata module.
func watSkill(tb testing.TB, name string) isolation.Skill {
	return skillAt(tb, "testdata", name+".wasm")
}

// goSkill builds testdata/guests/NAME for wasip1 once per test run.
func goSkill(tb testing.TB, name string) isolation.Skill {
	tb.Helper()
	return buildGuest(tb, name)
}

// goReactor builds testdata/guests/NAME as a WASI reactor once per test run.
func goReactor(tb testing.TB, name string) isolation.Skill {
	tb.Helper()
	return buildGuest(tb, name, "-buildmode=c-shared")
}

func buildGuest(tb testing.TB, name string, flags ...string) isolation.Skill {
	tb.Helper()
	out := name + ".wasm"
	env.mu.Lock()
	err, done := env.built[name]
	if !done {
		args := append(append([]string{"build"}, flags...), "-o", filepath.Join(env.dir, out), "./testdata/guests/"+name)
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, berr := cmd.CombinedOutput(); berr != nil {
			err = fmt.Errorf("build guest %s: %v\n%s", name, berr, b)
		} else {
			precompile(env.dir, out)
		}
		env.built[name] = err
	}
	env.mu.Unlock()
	if err != nil {
		tb.Fatal(err)
	}
	return skillAt(tb, env.dir, out)
}

// precompile compiles a Go guest into the run's shared on-disk cache, with no deadline:
// compiling a Go module takes seconds, and under the race detector on a loaded machine
// more than a test call's 30 s budget, which bounds the wait for a first call's compile.
// Every Sandbox of the run then loads it from the cache. A module that does not compile
// is left for the test's own call to report.
func precompile(dir, module string) {
	b, err := os.ReadFile(filepath.Join(dir, module))
	if err != nil {
		return
	}
	sum := sha256.Sum256(b)
	ctx := context.Background()
	sb, err := wasm.New(ctx, wasm.WithCacheDir(env.cacheDir))
	if err != nil {
		return
	}
	defer sb.Close(ctx)
	_ = sb.Prepare(ctx, isolation.Skill{
		Manifest: &manifest.Manifest{Name: "test-skill", Sandbox: manifest.Sandbox{Wasm: &manifest.WasmSandbox{Module: module}}},
		Dir:      dir,
		Digest:   "sha256:" + hex.EncodeToString(sum[:]),
	})
}

func newSandbox(tb testing.TB, opts ...wasm.Option) *wasm.Sandbox {
	tb.Helper()
	opts = append([]wasm.Option{wasm.WithCacheDir(env.cacheDir)}, opts...)
	sb, err := wasm.New(context.Background(), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := sb.Close(context.Background()); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return sb
}

func limits() isolation.Limits {
	return isolation.Limits{
		Timeout:  30 * time.Second,
		Memory:   64 << 20,
		Output:   1 << 20,
		Logs:     64 << 10,
		Requests: 5,
		Response: 1 << 20,
	}
}

// requireReason fails unless err is an *isolation.Error with reason want.
func requireReason(tb testing.TB, err error, want isolation.Reason) *isolation.Error {
	tb.Helper()
	var ie *isolation.Error
	if !errors.As(err, &ie) {
		tb.Fatalf("want *isolation.Error %s, got %T %v", want, err, err)
	}
	if ie.Reason != want {
		tb.Fatalf("want reason %s, got %s: %v", want, ie.Reason, err)
	}
	return ie
}

// requireEcho proves the sandbox still runs a good module after a hostile one.
func requireEcho(tb testing.TB, sb *wasm.Sandbox) {
	tb.Helper()
	res, err := sb.Run(context.Background(), isolation.Call{ID: "echo", Skill: watSkill(tb, "echo"), Input: []byte(`{"hi":1}`), Limits: limits()})
	if err != nil {
		tb.Fatalf("echo after hostile module: %v", err)
	}
	if string(res.Output) != `{"hi":1}` {
		tb.Fatalf("echo output %q", res.Output)
	}
}
