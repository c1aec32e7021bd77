package wasm_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/manifest"
)

// fdCall is a probe call with a read-only grant holding one file.
func fdCall(t *testing.T, op, data string) isolation.Call {
	t.Helper()
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644))
	in, _ := json.Marshal(map[string]string{"op": op, "path": "/data/f", "data": data})
	return isolation.Call{ID: "fd", Skill: goSkill(t, "probe"), Input: in, Limits: limits(),
		Grant: isolation.Grant{Files: []isolation.Mount{{Guest: "/data", Host: dir, Access: manifest.AccessRead}}}}
}

// WASI fd_renumber to a large descriptor number made wazero grow its descriptor
// table to that number, on the host and outside every budget: 2^24 cost 130 MiB, and
// the largest number a guest may name (2^31-1) 16 GiB, enough to end the server. A
// guest with any file grant could do it. fd_renumber is refused (ENOTSUP, 58) and the
// call allocates nothing of the kind.
func TestRenumberToLargeDescriptor(t *testing.T) {
	var sb isolation.Sandbox = newSandbox(t)
	call := fdCall(t, "renumber", strconv.Itoa(1<<24))
	warm := fdCall(t, "read", "")
	warm.Grant = call.Grant
	runProbe(t, &sb, warm) // the module is loaded before measuring
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out := runProbe(t, &sb, call)
	runtime.ReadMemStats(&after)
	if !out.OK || out.Data != "58" {
		t.Errorf("fd_renumber to descriptor 2^24: %+v, want a refusal", out)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
		t.Errorf("the call allocated %d MiB on the host", grew>>20)
	}
}

// Every file a guest opens is a host descriptor of the server, which its doors, its
// audit log and every other call share. One call may hold at most wasm.MaxOpenFiles.
func TestOpenFilesBounded(t *testing.T) {
	var sb isolation.Sandbox = newSandbox(t)
	out := runProbe(t, &sb, fdCall(t, "openmany", strconv.Itoa(4*wasm.MaxOpenFiles)))
	n, err := strconv.Atoi(out.Data)
	if err != nil || n >= wasm.MaxOpenFiles || out.OK {
		t.Fatalf("a call opened %s files (bound %d): %+v", out.Data, wasm.MaxOpenFiles, out)
	}
	// The bound is per call: the next one opens as many again.
	out = runProbe(t, &sb, fdCall(t, "openmany", strconv.Itoa(wasm.MaxOpenFiles/2)))
	if !out.OK || out.Data != strconv.Itoa(wasm.MaxOpenFiles/2) {
		t.Fatalf("after a call at the bound: %+v", out)
	}
}
