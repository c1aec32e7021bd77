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

// Through the whole engine path (signed, approved, two callers), a reactor that reads
// stdin in _initialize never hands one caller's input to another: a pooled instance is
// reset to the state _initialize left, and _initialize sees no call's input.
func TestPooledReactorKeepsNoCallersInput(t *testing.T) {
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
	if strings.Contains(string(res.Output), "alice-078-05-1120") {
		t.Fatalf("bob's call was handed alice's input: %s", res.Output)
	}
	if want := `{"kept":null,"mine":{"q":"hi"}}`; string(res.Output) != want {
		t.Fatalf("bob's output %s, want %s", res.Output, want)
	}
}
