package oci

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"

	"github.com/skillbox-dev/skillbox/signing"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

// Anyone who can push to a repository can attach referrers to an artifact in it. A
// junk bundle (garbage, or the same package signed by a key nobody trusts, which
// names the same skill.yaml and so looks like the better choice) must not fail an
// install of a package that also carries a bundle the trust policy accepts.
func TestPullTriesEveryBundleReferrer(t *testing.T) {
	ctx := context.Background()
	addr := startRegistry(t, nil)
	trusted := newSigner(t)
	policy, err := signing.PolicyFromKey("test", trusted.pub)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(ctx context.Context, raw, bundle []byte) error {
		_, err := signing.VerifyManifest(ctx, bundle, skillpkg.ManifestSubject(raw), policy)
		return err
	}
	opts := local
	opts.VerifyBundle = verify

	pkg := writePackage(t, trusted, "alpha", "1.0.0", "alpha module")
	good, err := os.ReadFile(filepath.Join(pkg, skillpkg.BundleFile))
	if err != nil {
		t.Fatal(err)
	}
	// Junk: the same package signed by strangers (each names this skill.yaml), and bytes
	// that are no bundle at all.
	var junk [][]byte
	for range 4 {
		other := writePackage(t, newSigner(t), "alpha", "1.0.0", "alpha module")
		data, err := os.ReadFile(filepath.Join(other, skillpkg.BundleFile))
		if err != nil {
			t.Fatal(err)
		}
		junk = append(junk, data)
	}
	junk = append(junk, []byte(`{"not":"a bundle"}`))

	attach := func(ref string, bundles ...[]byte) {
		t.Helper()
		r, _ := ParseRef(ref)
		repo, _ := repository(r, local)
		desc, err := repo.Resolve(ctx, r.Digest)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bundles {
			bl, err := pushBytes(ctx, repo, BundleMediaType, "", b)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, BundleMediaType,
				oras.PackManifestOptions{Subject: &desc, Layers: []ocispec.Descriptor{bl}}); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Run("junk beside a good bundle installs", func(t *testing.T) {
		// The good bundle last: a registry lists referrers in the order it likes.
		ref := pushRaw(t, addr, "junk/alpha", pkg, junk[0])
		attach(ref, append(junk[1:], good)...)
		out := filepath.Join(t.TempDir(), "pkg")
		got, err := Pull(ctx, ref, out, opts)
		if err != nil {
			t.Fatalf("pull with %d junk referrers beside a good one: %v", len(junk), err)
		}
		if got.Bundles != len(junk)+1 {
			t.Errorf("found %d bundle referrers, want %d", got.Bundles, len(junk)+1)
		}
		if err := verifyDir(t, out, trusted); err != nil {
			t.Fatalf("the bundle kept does not verify: %v", err)
		}
	})

	t.Run("only junk is refused in one line", func(t *testing.T) {
		ref := pushRaw(t, addr, "onlyjunk/alpha", pkg, junk[0])
		attach(ref, junk[1:]...)
		out := filepath.Join(t.TempDir(), "pkg")
		got, err := Pull(ctx, ref, out, opts)
		if err != nil {
			t.Fatal(err)
		}
		// The bundle is left for the install to refuse in its own words, and record.
		if got.Verified || len(got.Rejected) != len(junk) {
			t.Fatalf("verified %v, %d rejected; want none verified, %d rejected", got.Verified, len(got.Rejected), len(junk))
		}
		for _, r := range got.Rejected {
			if !strings.HasPrefix(r, "referrer sha256:") || strings.Contains(r, "\n") {
				t.Errorf("rejection %q: want one line naming the referrer", r)
			}
		}
		if err := verifyDir(t, out, trusted); err == nil {
			t.Error("a junk bundle verifies")
		}
	})
}
