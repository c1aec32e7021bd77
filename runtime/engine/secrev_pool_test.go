package engine_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

// Security review: through the whole engine path (signed, approved, callers list),
// one caller's input reaches another caller's output when a reactor reads stdin in
// _initialize: the pooled instance is reset to a snapshot taken after _initialize,
// which ran bound to the first call's input.
func TestSecRevPooledReactorCrossCallerInput(t *testing.T) {
	dir := t.TempDir()
	mod := filepath.Join(dir, "rx.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", mod, "../../isolation/wasm/testdata/guests/rxinitstdin")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "rx", Version: "1.0.0", Module: mod, Body: `input: {type: object}
output: {type: object}
limits: {timeout: 10s, memory: 64MiB}
`}, &approval.Grant{Callers: []string{"alice", "bob"}})
	ctx := context.Background()
	if _, err := f.eng.Invoke(ctx, engine.Request{Skill: "rx", Caller: "alice", Input: []byte(`{"ssn":"alice-078-05-1120"}`)}); err != nil {
		t.Fatal(err)
	}
	res, err := f.eng.Invoke(ctx, engine.Request{Skill: "rx", Caller: "bob", Input: []byte(`{"q":"hi"}`)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bob's output: %s", res.Output)
	if strings.Contains(string(res.Output), "alice-078-05-1120") {
		t.Fatalf("bob's call was handed alice's input: %s", res.Output)
	}
}
