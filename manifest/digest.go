package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// DigestPrefix begins the canonical spelling of a digest ("sha256:<hex>"), as
// skill.yaml, the store, approvals, audit records and the API write it. It is the
// spelling's one constant; code that makes or reads a digest uses Digest.
const DigestPrefix = "sha256:"

// Digest is a sha256 digest: of skill.yaml's bytes, of a wasm module, or a container
// image ID. Its one spelling in text is "sha256:<64 lowercase hex>" (String); two
// places carry the bare hex (Hex, ParseHexDigest): skill.yaml's sandbox.wasm.sha256 and
// the subjects of a signed statement. A Digest is made only by hashing or by parsing,
// so a non-zero one is always well formed. The zero Digest is no digest.
type Digest struct {
	hex string
}

// DigestOf is the digest of data.
func DigestOf(data []byte) Digest {
	sum := sha256.Sum256(data)
	return Digest{hex.EncodeToString(sum[:])}
}

// DigestOfReader is the digest of everything r yields.
func DigestOfReader(r io.Reader) (Digest, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return Digest{}, err
	}
	return Digest{hex.EncodeToString(h.Sum(nil))}, nil
}

// ParseDigest reads the canonical spelling, "sha256:<64 lowercase hex digits>" (also a
// Docker image ID). Anything else, upper case included, is an error.
func ParseDigest(s string) (Digest, error) {
	h, ok := strings.CutPrefix(s, DigestPrefix)
	if !ok || !isLowerHex64(h) {
		return Digest{}, fmt.Errorf("%q: want sha256:<64 lowercase hex digits>", s)
	}
	return Digest{h}, nil
}

// ParseHexDigest reads the bare spelling, "<64 lowercase hex digits>", as
// sandbox.wasm.sha256 and a signed subject carry it.
func ParseHexDigest(s string) (Digest, error) {
	if !isLowerHex64(s) {
		return Digest{}, fmt.Errorf("%q: want 64 lowercase hex digits", s)
	}
	return Digest{s}, nil
}

// Hex is the bare spelling (64 lowercase hex digits); "" for the zero Digest.
func (d Digest) Hex() string { return d.hex }

// String is the canonical spelling, "sha256:<hex>"; "" for the zero Digest.
func (d Digest) String() string {
	if d.hex == "" {
		return ""
	}
	return DigestPrefix + d.hex
}

// IsZero reports whether d is no digest.
func (d Digest) IsZero() bool { return d.hex == "" }

func isLowerHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// CodeDigest is the digest of the code s records, converted from its field's spelling:
// sandbox.wasm.sha256 (bare hex) or sandbox.container.id (an image ID). It is zero
// when s records none or a malformed one, which Parse refuses.
func (s Sandbox) CodeDigest() Digest {
	var d Digest
	switch {
	case s.Wasm != nil:
		d, _ = ParseHexDigest(s.Wasm.SHA256)
	case s.Container != nil:
		d, _ = ParseDigest(s.Container.ID)
	}
	return d
}
