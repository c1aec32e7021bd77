package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/manifest"
)

// recordingGuard is a container sandbox's path guard that records what it was asked.
type recordingGuard struct {
	isolation.Sandbox
	mu    sync.Mutex
	asked []string
}

func (g *recordingGuard) Mounting(_ context.Context, paths []string) (func(), error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked = append(g.asked, paths...)
	return func() {}, nil
}

// With both sandboxes open, a wasm call opens its granted directories under the
// container sandbox's path guard (a container call can make links where a wasm grant's
// path leads through).
func TestWasmOpensGrantsUnderContainerGuard(t *testing.T) {
	ctx := context.Background()
	ws, err := wasm.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close(ctx)
	g := &recordingGuard{}
	guardWasmPaths(map[string]isolation.Sandbox{manifest.KindWasm: ws, manifest.KindContainer: g})

	module := filepath.Join("..", "..", "isolation", "wasm", "testdata", "escape.wasm")
	code, err := os.ReadFile(module)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(code)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ws.Run(ctx, isolation.Call{
		ID: "g",
		Skill: isolation.Skill{Manifest: &manifest.Manifest{Name: "reader", Sandbox: manifest.Sandbox{Wasm: &manifest.WasmSandbox{Module: "escape.wasm"}}},
			Dir: filepath.Dir(module), Digest: "sha256:" + hex.EncodeToString(sum[:])},
		Input:  []byte("rf"),
		Limits: isolation.Limits{Timeout: 30 * time.Second, Memory: 16 << 20, Output: 1 << 10, Logs: 1 << 10},
		Grant:  isolation.Grant{Files: []isolation.Mount{{Guest: "/in", Host: dir, Access: manifest.AccessRead}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !slices.Contains(g.asked, dir) {
		t.Fatalf("the wasm call opened %s without the container sandbox's guard (asked: %q)", dir, g.asked)
	}
}
