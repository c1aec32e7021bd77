package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestRunDirNamesEgressDenial: `run DIR` goes through the engine's call core, so a
// skill that fails after a refused request is reported as EGRESS_DENIED with the
// denial (method, URL, why), in the words the server gives, not as a bare
// SKILL_FAILED; the refused server is never reached.
func TestRunDirNamesEgressDenial(t *testing.T) {
	var hits atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer backend.Close()
	dir := t.TempDir()
	code, err := os.ReadFile(filepath.Join("..", "..", "runtime", "engine", "testdata", "failhttp.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "module.wasm"), code, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(code)
	yaml := `apiVersion: skillbox/v1
name: failing
version: 1.0.0
description: Fails after its request.
sandbox:
  wasm:
    module: module.wasm
    sha256: ` + hex.EncodeToString(sum[:]) + `
input: {type: object}
output: {type: object}
capabilities:
  network: ["http://127.0.0.1:1"]
limits: {requests: 5}
`
	if err := os.WriteFile(filepath.Join(dir, "skill.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	exit, stdout, stderr := runRunCLI(t, "run", dir, "--input", fmt.Sprintf(`{"method":"GET","url":%q}`, backend.URL))
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	want := "run failing: the skill failed after GET " + backend.URL + " was refused ("
	if exit != 1 || !strings.Contains(last, want) || !strings.HasSuffix(last, "(EGRESS_DENIED)") {
		t.Fatalf("exit %d, last line %q; want it to hold %q and end (EGRESS_DENIED)", exit, last, want)
	}
	if hits.Load() != 0 {
		t.Fatal("the refused server was reached")
	}
	// The failed call still shows the author its logs and egress decisions.
	var out runOutput
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("stdout of a failed run is not the result JSON: %v\n%s", err, stdout)
	}
	if string(out.Output) != "null" || len(out.Egress) != 1 || out.Egress[0].Allowed || out.Egress[0].Denial != "NOT_GRANTED" || out.Logs == "" {
		t.Fatalf("failed run's result: output %s, egress %+v, logs %q", out.Output, out.Egress, out.Logs)
	}
}
