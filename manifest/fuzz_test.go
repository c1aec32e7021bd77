package manifest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParse: no input panics, and whatever parses survives a marshal/parse round trip
// unchanged (so a valid result re-validates).
func FuzzParse(f *testing.F) {
	f.Add([]byte(goodWasm))
	f.Add([]byte(goodContainer))
	f.Add([]byte("apiVersion: skillbox/v1\nname: a\nversion: 0.0.0\ndescription: x\nsandbox: {wasm: {module: m, sha256: " + goodHex + "}}\ncapabilities: {network: ['http://[::ffff:1.2.3.4]:1/']}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("input: {properties: {x: {pattern: '('}}}\n"))
	f.Add([]byte{})
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if m != nil {
				t.Fatal("manifest and error both returned")
			}
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T, want *Error", err)
			}
			return
		}
		out, err := yaml.Marshal(m)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		m2, err := Parse(out)
		if err != nil {
			t.Fatalf("valid manifest does not re-validate: %v\n--- input\n%s\n--- marshalled\n%s", err, data, out)
		}
		out2, err := yaml.Marshal(m2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip not stable:\n%s\n---\n%s", out, out2)
		}
	})
}
