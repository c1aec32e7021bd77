package wasm_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/sandboxtest"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
)

// TestContract runs the sandbox contract suite against the wasm sandbox.
func TestContract(t *testing.T) {
	sandboxtest.Run(t, &contractFactory{})
}

// contractFactory gives the suite a wasm sandbox and the suite's skill program built
// for wasip1: one module without network imports and one with them (for Fetch),
// since a module that imports the network functions needs a network grant.
type contractFactory struct {
	once     sync.Once
	dir      string
	plain    isolation.Skill
	networed isolation.Skill
}

func (f *contractFactory) build(t *testing.T) {
	f.once.Do(func() {
		f.dir = filepath.Join(env.dir, "contract")
		if err := os.MkdirAll(f.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		sandboxtest.BuildSkill(t, "wasip1", "wasm", filepath.Join(f.dir, "plain.wasm"))
		sandboxtest.BuildSkill(t, "wasip1", "wasm", filepath.Join(f.dir, "net.wasm"), "skillbox_net")
		f.plain = skillAt(t, f.dir, "plain.wasm")
		f.networed = skillAt(t, f.dir, "net.wasm")
	})
	if f.plain.Digest == "" {
		t.Fatal("the contract skill was not built")
	}
}

func (f *contractFactory) New(t *testing.T) isolation.Sandbox {
	sb, err := wasm.New(context.Background(), wasm.WithCacheDir(env.cacheDir))
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

func (f *contractFactory) Skill(t *testing.T, b sandboxtest.Behaviour) isolation.Skill {
	f.build(t)
	if b == sandboxtest.Fetch {
		return f.networed
	}
	return f.plain
}

// Unprepared is the plain module with a custom section of random bytes: another
// digest, so neither the sandbox nor the on-disk cache has compiled it.
func (f *contractFactory) Unprepared(t *testing.T) isolation.Skill {
	f.build(t)
	code, err := os.ReadFile(filepath.Join(f.dir, "plain.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	// A custom section: id 0, size, name length and name, then the payload.
	payload := make([]byte, 16)
	_, _ = rand.Read(payload)
	name := "skillbox-contract"
	sec := append([]byte{byte(len(name))}, name...)
	sec = append(sec, payload...)
	code = append(code, 0, byte(len(sec)))
	code = append(code, sec...)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fresh.wasm"), code, 0o644); err != nil {
		t.Fatal(err)
	}
	return skillAt(t, dir, "fresh.wasm")
}

func (f *contractFactory) Serve(t *testing.T, h http.Handler) string {
	return sandboxtest.ServeLoopback(t, h)
}

// Leftovers lists goroutines still running a call: in Run, or in a wazero instance
// or host function. A compilation the timeout cut short may go on in the background
// for the next call, but not past Close.
func (f *contractFactory) Leftovers(t *testing.T, closed bool) string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var left []string
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		s := string(g)
		for _, frame := range []string{
			"isolation/wasm.(*Sandbox).Run(",
			"wazero.(*runtime).InstantiateModule(",
			"isolation/wasm.httpRequest(",
			"isolation/wasm.sleep(",
		} {
			if closed {
				frame = "isolation/wasm." // anything of the sandbox's, compilations too
			}
			if strings.Contains(s, frame) {
				left = append(left, firstLine(s)+" in "+strings.TrimSuffix(frame, "("))
				break
			}
		}
	}
	return strings.Join(left, "; ")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// StopTime: a wasm call ends as soon as its context does; the rest is slack for a
// loaded machine running the race detector.
func (f *contractFactory) StopTime() time.Duration { return 3 * time.Second }

// TestContractReactor runs the contract suite against the same program built as a
// reactor, with every call allowed to use the pool (its Granted is its Limits): the
// budgets, the cancel and the kill switch hold for pooled instances as for fresh ones.
func TestContractReactor(t *testing.T) {
	sandboxtest.Run(t, &reactorFactory{})
}

type reactorFactory struct {
	contractFactory
	rxOnce sync.Once
}

func (f *reactorFactory) build(t *testing.T) {
	f.rxOnce.Do(func() {
		f.dir = filepath.Join(env.dir, "contract-reactor")
		if err := os.MkdirAll(f.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		sandboxtest.BuildReactorSkill(t, filepath.Join(f.dir, "plain.wasm"))
		sandboxtest.BuildReactorSkill(t, filepath.Join(f.dir, "net.wasm"), "skillbox_net")
		f.plain = skillAt(t, f.dir, "plain.wasm")
		f.networed = skillAt(t, f.dir, "net.wasm")
		f.once.Do(func() {}) // contractFactory.build must not rebuild as commands
	})
	if f.plain.Digest == "" {
		t.Fatal("the contract reactor was not built")
	}
}

func (f *reactorFactory) New(t *testing.T) isolation.Sandbox {
	return pooledSandbox{f.contractFactory.New(t).(*wasm.Sandbox)}
}

func (f *reactorFactory) Skill(t *testing.T, b sandboxtest.Behaviour) isolation.Skill {
	f.build(t)
	return f.contractFactory.Skill(t, b)
}

func (f *reactorFactory) Unprepared(t *testing.T) isolation.Skill {
	f.build(t)
	return f.contractFactory.Unprepared(t)
}

// pooledSandbox lets every call with a budget use the pool, as the engine's calls do.
type pooledSandbox struct{ *wasm.Sandbox }

func (s pooledSandbox) Run(ctx context.Context, call isolation.Call) (isolation.Result, error) {
	call.Granted = call.Limits
	return s.Sandbox.Run(ctx, call)
}
