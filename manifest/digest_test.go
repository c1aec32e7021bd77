package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func TestDigestSpellings(t *testing.T) {
	sum := sha256.Sum256([]byte("skill"))
	h := hex.EncodeToString(sum[:])

	d := DigestOf([]byte("skill"))
	if d.Hex() != h || d.String() != "sha256:"+h || d.IsZero() {
		t.Fatalf("DigestOf = %q / %q", d.Hex(), d.String())
	}
	if r, err := DigestOfReader(strings.NewReader("skill")); err != nil || r != d {
		t.Fatalf("DigestOfReader = %v, %v; want %v", r, err, d)
	}
	if p, err := ParseDigest("sha256:" + h); err != nil || p != d {
		t.Fatalf("ParseDigest = %v, %v", p, err)
	}
	if p, err := ParseHexDigest(h); err != nil || p != d {
		t.Fatalf("ParseHexDigest = %v, %v", p, err)
	}
	var zero Digest
	if !zero.IsZero() || zero.String() != "" || zero.Hex() != "" {
		t.Fatalf("zero Digest = %q", zero.String())
	}

	for _, bad := range []string{"", h, "sha256:", "sha256:" + strings.ToUpper(h), "sha256:" + h[:63], "sha256:" + h + "0",
		"sha512:" + h, "SHA256:" + h, " sha256:" + h, "sha256:" + h[:63] + "g"} {
		if _, err := ParseDigest(bad); err == nil || !strings.Contains(err.Error(), "want sha256:<64 lowercase hex digits>") {
			t.Errorf("ParseDigest(%q) = %v", bad, err)
		}
	}
	for _, bad := range []string{"", "sha256:" + h, strings.ToUpper(h), h[:63], h + "0", h[:63] + "g"} {
		if _, err := ParseHexDigest(bad); err == nil || !strings.Contains(err.Error(), "want 64 lowercase hex digits") {
			t.Errorf("ParseHexDigest(%q) = %v", bad, err)
		}
	}
}

// The code digest reads each field in its own spelling and gives the one canonical form.
func TestSandboxCodeDigest(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name string
		s    Sandbox
		want string
	}{
		{"wasm, bare hex", Sandbox{Wasm: &WasmSandbox{Module: "m.wasm", SHA256: h}}, "sha256:" + h},
		{"container, image ID", Sandbox{Container: &ContainerSandbox{Image: "image.tar", ID: "sha256:" + h}}, "sha256:" + h},
		{"wasm, malformed", Sandbox{Wasm: &WasmSandbox{Module: "m.wasm", SHA256: "sha256:" + h}}, ""},
		{"container, bare hex", Sandbox{Container: &ContainerSandbox{Image: "image.tar", ID: h}}, ""},
		{"none", Sandbox{}, ""},
	} {
		if got := tc.s.CodeDigest().String(); got != tc.want {
			t.Errorf("%s: CodeDigest = %q, want %q", tc.name, got, tc.want)
		}
	}
}
