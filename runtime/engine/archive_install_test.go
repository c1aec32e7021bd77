package engine_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
	"github.com/skillbox-dev/skillbox/signing"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

// archived packs the files of the package directory dir as a .tar.gz and returns its
// path. It packs by hand: skillpkg.Archive refuses a package whose manifest is invalid.
func archived(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "pkg.tar.gz")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for _, name := range []string{skillpkg.ManifestFile, "module.wasm", skillpkg.BundleFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(b)), Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// An install refused from a .tar.gz keeps the typed cause a directory install keeps:
// the failed signature check (signing.CheckOf) and the manifest's problems
// (*manifest.Error). It used to be rebuilt from the message text, to put the archive's
// name in place of the temporary directory it was extracted to, which dropped both.
// The message still names the archive and never the temporary directory.
func TestArchiveInstallKeepsTheCause(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	stranger := testkit.NewHome(t) // a key trust.yaml does not list

	untrusted := stranger.Build(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm"})
	invalid := deepPackage(t, 1600, f.home.Signer) // signed by the trusted key, refused by its shape

	for _, tc := range []struct {
		name  string
		dir   string
		check string // the failed signature check, "" for none
		want  string // in the message
		isMan bool   // the cause is a *manifest.Error
	}{
		{"untrusted key", untrusted, signing.CheckUntrustedKey, "which the trust policy does not list", false},
		{"invalid manifest", invalid, "", "skill.yaml: input: nested more than 64 levels deep", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, dirErr := f.eng.Install(ctx, tc.dir, "test")
			archive := archived(t, tc.dir)
			_, tgzErr := f.eng.Install(ctx, archive, "test")
			for _, c := range []struct {
				src string
				err error
			}{{tc.dir, dirErr}, {archive, tgzErr}} {
				if c.err == nil {
					t.Fatalf("install %s: installed", c.src)
				}
				if got := signing.CheckOf(c.err); got != tc.check {
					t.Errorf("install %s: signing.CheckOf = %q, want %q (%v)", c.src, got, tc.check, c.err)
				}
				var me *manifest.Error
				if errors.As(c.err, &me) != tc.isMan {
					t.Errorf("install %s: errors.As(*manifest.Error) = %v, want %v (%v)", c.src, !tc.isMan, tc.isMan, c.err)
				}
				msg := c.err.Error()
				if !strings.HasPrefix(msg, "install "+c.src+": ") || !strings.Contains(msg, tc.want) {
					t.Errorf("install %s: %q: want it to begin \"install %s: \" and say %q", c.src, msg, c.src, tc.want)
				}
				if strings.Contains(msg, os.TempDir()+string(filepath.Separator)+"skillbox-install-") {
					t.Errorf("install %s: %q names the temporary directory", c.src, msg)
				}
			}
		})
	}
}
