package signing

import (
	"context"
	"testing"
)

// FuzzVerifySkill: whatever the bundle bytes, VerifySkill returns (never panics), and
// anything but the genuine bundle is refused with a typed reason.
func FuzzVerifySkill(f *testing.F) {
	pkg := newTestPackage(f, "fuzz")
	good, err := SignSkill(context.Background(), pkg.manifest, pkg.code, pkg.signer)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{}}`))
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := VerifySkill(context.Background(), b, pkg.manifest, pkg.code, pkg.policy)
		if err == nil {
			if id == nil || id.Signer != "acme-release" {
				t.Fatalf("accepted with identity %+v", id)
			}
			return
		}
		if CheckOf(err) == "" {
			t.Fatalf("untyped refusal: %v", err)
		}
	})
}

func BenchmarkVerifySkillKey(b *testing.B) {
	pkg := newTestPackage(b, "bench")
	bundle, err := SignSkill(context.Background(), pkg.manifest, pkg.code, pkg.signer)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := VerifySkill(context.Background(), bundle, pkg.manifest, pkg.code, pkg.policy); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignSkillKey(b *testing.B) {
	pkg := newTestPackage(b, "bench")
	for b.Loop() {
		if _, err := SignSkill(context.Background(), pkg.manifest, pkg.code, pkg.signer); err != nil {
			b.Fatal(err)
		}
	}
}
