package wasm_test

import (
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/isolation/wasm"
)

// A reactor's _initialize sees an empty stdin: the state it leaves is the snapshot a
// pooled instance is reset to after every call, whoever makes the next one, so the
// input of the call that made the instance must not reach it (found by a security
// review: a Go init() reading stdin kept the first caller's input for every later
// caller). Pooled or not, the skill sees the same: nothing in init, its own input in
// the handler.
func TestInitializeSeesNoCallersInput(t *testing.T) {
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
	want := []string{`{"kept":null,"mine":"alice-secret"}`, `{"kept":null,"mine":"bob"}`, `{"kept":null,"mine":"bob"}`}
	for i, o := range outs {
		if o != want[i] {
			t.Errorf("pooled call %d: got %s, want %s", i, o, want[i])
		}
	}
}
