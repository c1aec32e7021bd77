package signing

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	conformanceIdentity = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
	conformanceIssuer   = "https://token.actions.githubusercontent.com"
)

// conformanceDir is the sigstore-conformance bundle-verify vectors: the copy committed
// in testdata (so a clean checkout tests them offline), which mirrors the project's
// ../shared/testdata/sigstore-conformance.
func conformanceDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "sigstore-conformance"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bundle-verify")); err != nil {
		t.Fatalf("sigstore-conformance vectors missing: want %s/bundle-verify: %v", dir, err)
	}
	return dir
}

// readOptional returns the trimmed file content, or def when the file does not exist.
func readOptional(t *testing.T, path, def string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return def
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestConformanceBundleVerify runs every sigstore-conformance bundle-verify case offline:
// a folder ending in _fail must be refused, every other one accepted.
func TestConformanceBundleVerify(t *testing.T) {
	base := conformanceDir(t)
	vectors := filepath.Join(base, "bundle-verify")
	entries, err := os.ReadDir(vectors)
	if err != nil {
		t.Fatal(err)
	}
	defaultArtifact, err := os.ReadFile(filepath.Join(vectors, "a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	total, passed := 0, 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		total++
		name := e.Name()
		dir := filepath.Join(vectors, name)
		ok := t.Run(name, func(t *testing.T) {
			wantFail := strings.HasSuffix(name, "_fail")
			bundleJSON, err := os.ReadFile(filepath.Join(dir, "bundle.sigstore.json"))
			if err != nil {
				t.Fatal(err)
			}
			artifact := defaultArtifact
			if b, err := os.ReadFile(filepath.Join(dir, "artifact")); err == nil {
				artifact = b
			}
			var p BundlePolicy
			if key, err := os.ReadFile(filepath.Join(dir, "key.pub")); err == nil {
				p.KeyPEM = key
			} else {
				p.Identity = readOptional(t, filepath.Join(dir, "identity"), conformanceIdentity)
				p.Issuer = readOptional(t, filepath.Join(dir, "issuer"), conformanceIssuer)
			}
			if tr, err := os.ReadFile(filepath.Join(dir, "trusted_root.json")); err == nil {
				p.TrustedRootJSON = tr
			}
			_, err = VerifyBundle(context.Background(), bundleJSON, ArtifactBytes(artifact), p)
			switch {
			case wantFail && err == nil:
				t.Fatalf("verified, want refusal")
			case !wantFail && err != nil:
				t.Fatalf("refused: %v", err)
			case wantFail:
				t.Logf("refused as expected: %v", err)
			}
		})
		if ok {
			passed++
		}
	}
	t.Logf("sigstore-conformance bundle-verify: %d/%d cases gave the expected answer", passed, total)
	if total == 0 {
		t.Fatal("no conformance cases found")
	}
}
