package engine_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
	"github.com/skillbox-dev/skillbox/signing"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

// deepPackage writes a wasm package whose input schema nests properties n levels deep
// (53 KB for n = 1,600), signed by signer when it is not nil. It signs by hand: the
// package tools parse the manifest, which is what this package is built to make slow.
func deepPackage(t *testing.T, n int, signer signing.Signer) string {
	t.Helper()
	dir := t.TempDir()
	code, err := os.ReadFile("testdata/echo.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "module.wasm"), code, 0o644); err != nil {
		t.Fatal(err)
	}
	codeSum := sha256.Sum256(code)
	var b strings.Builder
	b.WriteString("apiVersion: skillbox/v1\nname: deep\nversion: 1.0.0\ndescription: d\nsandbox:\n  wasm:\n    module: module.wasm\n    sha256: " +
		hex.EncodeToString(codeSum[:]) + "\ninput: ")
	b.WriteString(strings.Repeat(`{"properties":{"a":`, n) + "{}" + strings.Repeat("}}", n) + "\n")
	raw := []byte(b.String())
	if err := os.WriteFile(filepath.Join(dir, skillpkg.ManifestFile), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if signer != nil {
		mSum := sha256.Sum256(raw)
		bundle, err := signing.SignSkill(context.Background(),
			signing.Subject{Name: skillpkg.ManifestFile, SHA256: hex.EncodeToString(mSum[:])},
			signing.Subject{Name: "module.wasm", SHA256: hex.EncodeToString(codeSum[:])}, signer)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, skillpkg.BundleFile), bundle, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Finding 8: an unsigned 53 KB package whose schema nests 1,600 levels held install for
// 36 s, because skill.yaml was parsed (and its schemas compiled) before the signature
// was checked. The signature over the raw bytes now comes first; the manifest parser
// also refuses the depth, for packages a trusted signer did sign.
func TestInstallChecksSignatureBeforeParsing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	stranger := testkit.NewHome(t) // a key trust.yaml does not list

	for _, tc := range []struct {
		name   string
		signer signing.Signer
		check  string
		want   string
	}{
		{"unsigned", nil, signing.CheckMissingBundle, "the package is not signed"},
		{"signed by an untrusted key", stranger.Signer, signing.CheckUntrustedKey, "which the trust policy does not list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := f.eng.Install(ctx, deepPackage(t, 1600, tc.signer), "test")
			took := time.Since(start)
			if err == nil {
				t.Fatal("installed")
			}
			// The signature's refusal, not the schema's: nothing of skill.yaml was read.
			if signing.CheckOf(err) != tc.check || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Install = %v (check %q), want the %s check: %s", err, signing.CheckOf(err), tc.check, tc.want)
			}
			if strings.Contains(err.Error(), "nested") || strings.Contains(err.Error(), "schema") {
				t.Fatalf("Install = %v: the manifest was parsed before the signature was checked", err)
			}
			// Unfixed, parsing this package took 36 s (7 s here at half the depth).
			if took > 3*time.Second {
				t.Errorf("refusing took %v", took)
			}
		})
	}

	// Signed by the trusted key, the same package is refused by its shape, in words.
	_, err := f.eng.Install(ctx, deepPackage(t, 1600, f.home.Signer), "test")
	if err == nil || !strings.Contains(err.Error(), "skill.yaml: input: nested more than 64 levels deep (at input.properties.a.properties.a") {
		t.Fatalf("signed deep package: %v", err)
	}
	if signing.CheckOf(err) != "" {
		t.Fatalf("signed deep package refused by the signature check: %v", err)
	}

	// Nothing entered the store, and each refusal was recorded.
	ents, err := os.ReadDir(filepath.Join(f.home.Dir, "skills"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("store holds %d entries after refusals", len(ents))
	}
	var refused int
	for _, e := range auditEvents(t, f.eng) {
		if e.Event == "verify.failed" {
			refused++
		}
	}
	if refused != 2 {
		t.Fatalf("%d verify.failed records, want 2", refused)
	}
}
