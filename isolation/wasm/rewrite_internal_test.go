package wasm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A section the rewrite does not read to its end was read otherwise than wazero reads
// it: the module is not pooled, whatever that reading found.
func TestRewriteUnreadBytesUnpoolable(t *testing.T) {
	code, err := os.ReadFile(filepath.Join("testdata", "rxstate.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, plan, err := rewriteReactor(code); err != nil || plan.unpoolable != "" {
		t.Fatalf("rxstate: %v, unpoolable %q; want it pooled", err, plan.unpoolable)
	}
	secs, err := splitSections(code)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []byte{2, 6, 7} {
		mod := append([]section(nil), secs...)
		found := false
		for i, s := range mod {
			if s.id == id {
				mod[i].payload = append(append([]byte(nil), s.payload...), 0x0b)
				found = true
			}
		}
		if !found {
			t.Fatalf("rxstate has no section %d", id)
		}
		in := joinSections(code[:8], mod)
		out, plan, err := rewriteReactor(in)
		if err != nil {
			t.Fatalf("section %d: %v", id, err)
		}
		if !strings.Contains(plan.unpoolable, "not read to its end") || string(out) != string(in) {
			t.Fatalf("section %d with a byte past its entries: unpoolable %q", id, plan.unpoolable)
		}
	}
}
