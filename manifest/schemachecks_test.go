package manifest

import (
	"errors"
	"testing"
)

type checksMemo struct {
	passed map[[32]byte]int
	asked  int
}

func (c *checksMemo) Known(sum [32]byte) bool { c.asked++; return c.passed[sum] > 0 }
func (c *checksMemo) Passed(sum [32]byte)     { c.passed[sum]++ }

// A schema that passed its metaschema check is remembered and, parsed again, compiled
// without the check, validating input exactly as before; a refused schema is never
// remembered, so it is refused every time.
func TestSchemaChecksRemembered(t *testing.T) {
	good := []byte("apiVersion: skillbox/v1\nname: s\nversion: 1.0.0\ndescription: d\n" +
		"sandbox: {wasm: {module: m.wasm, sha256: \"" + zeros + "\"}}\n" +
		"input: {type: object, properties: {n: {type: integer, minimum: 1}}, required: [n]}\n")
	checks := &checksMemo{passed: map[[32]byte]int{}}
	for i := range 3 {
		m, err := ParseWith(good, checks)
		if err != nil {
			t.Fatalf("parse %d: %v", i, err)
		}
		var se *SchemaError
		if err := m.ValidateInput([]byte(`{"n":0}`)); !errors.As(err, &se) || se.Path != "input.n" || se.Rule != "must be at least 1" {
			t.Errorf("parse %d: n=0: %v", i, err)
		}
		if err := m.ValidateInput([]byte(`{"n":2}`)); err != nil {
			t.Errorf("parse %d: n=2: %v", i, err)
		}
	}
	if len(checks.passed) != 1 {
		t.Fatalf("remembered %d schemas, want 1", len(checks.passed))
	}
	for _, n := range checks.passed {
		if n != 1 {
			t.Errorf("the schema was recorded %d times; once passed, it is not checked again", n)
		}
	}
	// minimum must be a number: the metaschema refuses it, every time.
	bad := []byte("apiVersion: skillbox/v1\nname: s\nversion: 1.0.0\ndescription: d\n" +
		"sandbox: {wasm: {module: m.wasm, sha256: \"" + zeros + "\"}}\n" +
		"input: {type: object, properties: {n: {type: integer, minimum: \"one\"}}}\n")
	for i := range 2 {
		if _, err := ParseWith(bad, checks); err == nil {
			t.Fatalf("parse %d of a schema the metaschema refuses succeeded", i)
		}
	}
	if len(checks.passed) != 1 {
		t.Errorf("a refused schema was remembered")
	}
}

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"
