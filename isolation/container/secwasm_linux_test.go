package container

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/manifest"
)

// TestWasmGrantInsideRunningWriteGrant: as TestReadGrantInsideRunningWriteGrant, with a
// wasm skill holding the grant inside the running container call's read-write
// directory. A container call can make links there, and the wasm sandbox opens a
// grant's host path following them: the wasm call must not get the host directory the
// link points to (a security review found it read there, and written there under a
// read-write grant).
func TestWasmGrantInsideRunningWriteGrant(t *testing.T) {
	s := newSandbox(t)
	ws, err := wasm.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close(context.Background())
	ws.GuardPaths(s)
	base := t.TempDir()
	rw := filepath.Join(base, "workspace")
	outside := filepath.Join(base, "not-granted")
	must(t, os.Mkdir(rw, 0o777))
	must(t, os.Chmod(rw, 0o777))
	must(t, os.Mkdir(outside, 0o755))
	must(t, os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("host-only-data"), 0o644))

	stop := linkWhileRunning(t, s, rw, "inbox", outside)
	defer stop()

	module := filepath.Join("..", "wasm", "testdata", "escape.wasm")
	code, err := os.ReadFile(module)
	must(t, err)
	sum := sha256.Sum256(code)
	reader := isolation.Call{
		ID: "wasm-reader",
		Skill: isolation.Skill{
			Manifest: &manifest.Manifest{Name: "reader", Sandbox: manifest.Sandbox{Wasm: &manifest.WasmSandbox{Module: "escape.wasm"}}},
			Dir:      filepath.Dir(module),
			Digest:   "sha256:" + hex.EncodeToString(sum[:]),
		},
		Input:  []byte("rsecret.txt"),
		Limits: isolation.Limits{Timeout: 5 * time.Second, Memory: 16 << 20, Output: 64 << 10, Logs: 16 << 10},
		Grant:  isolation.Grant{Files: []isolation.Mount{{Guest: "/in", Host: filepath.Join(rw, "inbox"), Access: manifest.AccessRead}}},
	}
	res, err := ws.Run(context.Background(), reader)
	if strings.Contains(string(res.Output), "host-only-data") {
		t.Errorf("a wasm grant inside a running container call's read-write grant reached a host directory no grant names: %s", res.Output)
	}
	t.Logf("wasm reader: %v %q", err, res.Output)
}
