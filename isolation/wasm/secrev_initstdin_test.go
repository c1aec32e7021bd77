package wasm_test

import (
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/isolation/wasm"
)

// Security review: a pooled reactor's _initialize runs bound to the first call's
// stdin (newInstance binds the call before _initialize), and the snapshot that the
// pool restores after every call is taken after _initialize. A skill that reads
// stdin during _initialize keeps the first caller's input in the starting state of
// every later call the instance serves, whoever makes it.
func TestSecRevReactorInitializeSeesFirstCallersInput(t *testing.T) {
	skill := goReactor(t, "rxinitstdin")
	a := pooledCall(skill, `"alice-secret"`)
	b := pooledCall(skill, `"bob"`)
	// Control: without the pool every call gets a fresh instance, and bob's calls
	// see only their own input.
	for i, o := range runs(t, newSandbox(t, wasm.WithoutPool()), a, b, b)[1:] {
		if strings.Contains(o, "alice-secret") {
			t.Fatalf("control (no pool), call %d: %s", i+1, o)
		}
	}
	outs := runs(t, newSandbox(t), a, b, b)
	t.Logf("outputs: %q", outs)
	for i, o := range outs[1:] {
		if strings.Contains(o, "alice-secret") {
			t.Errorf("call %d (bob's input) was handed alice's input from the pooled snapshot: %s", i+1, o)
		}
	}
}
