package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/skillbox-dev/skillbox/manifest"
)

var wasmBytes = []byte("\x00asm\x01\x00\x00\x00")

func wasmSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func skillYAML(name, version, module string, code []byte) string {
	return fmt.Sprintf(`apiVersion: skillbox/v1
name: %s
version: %s
description: test skill
sandbox:
  wasm:
    module: %s
    sha256: %s
input: {type: object}
output: {type: object}
`, name, version, module, wasmSum(code))
}

// writePkg makes a package directory from name → content.
// newHome is a $SKILLBOX_HOME whose read-only package directories are made writable
// again at the end, so t.TempDir can remove them when tests do not run as root.
func newHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Cleanup(func() { removeReadOnly(home) })
	return home
}

func writePkg(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func wasmPkg(t *testing.T, name, version string) string {
	return writePkg(t, map[string]string{
		"skill.yaml":          skillYAML(name, version, "module.wasm", wasmBytes),
		"module.wasm":         string(wasmBytes),
		"skill.sigstore.json": `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`,
	})
}

func TestInstallLayoutAndModes(t *testing.T) {
	home := newHome(t)
	s, err := Open(home)
	if err != nil {
		t.Fatal(err)
	}
	src := wasmPkg(t, "echo", "1.0.0")
	e, err := s.Install(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(src, "skill.yaml"))
	want := "sha256:" + wasmSum(raw)
	if e.ManifestDigest != want || e.Name != "echo" || e.Version != "1.0.0" || e.CodeDigest != "sha256:"+wasmSum(wasmBytes) {
		t.Fatalf("entry = %+v, want digest %s", e, want)
	}
	if e.Dir != filepath.Join(home, "skills", strings.TrimPrefix(want, "sha256:")) {
		t.Fatalf("dir = %s", e.Dir)
	}
	for _, f := range []string{"skill.yaml", "module.wasm", "skill.sigstore.json"} {
		st, err := os.Stat(filepath.Join(e.Dir, f))
		if err != nil || st.Mode().Perm() != 0o444 {
			t.Errorf("%s: %v mode %v, want 0444", f, err, st.Mode().Perm())
		}
	}
	if st, _ := os.Stat(e.Dir); st.Mode().Perm() != 0o555 {
		t.Errorf("package dir mode %v, want 0555", st.Mode().Perm())
	}
	// Reinstalling the same package is a no-op returning the same entry.
	again, err := s.Install(context.Background(), src)
	if err != nil || again.ManifestDigest != e.ManifestDigest {
		t.Fatalf("reinstall: %+v %v", again, err)
	}
	// A fresh Store (a restart) finds it by scanning.
	s2, _ := Open(home)
	list, err := s2.List()
	if err != nil || len(list) != 1 || list[0].ManifestDigest != e.ManifestDigest {
		t.Fatalf("list after reopen: %+v %v", list, err)
	}
	assertNoStaging(t, home)
}

func TestInstallNestedModuleAndContainer(t *testing.T) {
	s, _ := Open(newHome(t))
	nested := writePkg(t, map[string]string{
		"skill.yaml":           skillYAML("nested", "0.1.0", "build/out/skill.wasm", wasmBytes),
		"build/out/skill.wasm": string(wasmBytes),
	})
	e, err := s.Install(context.Background(), nested)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.Dir, "build/out/skill.wasm")); err != nil {
		t.Fatal(err)
	}
	id := "sha256:" + strings.Repeat("ab", 32)
	ctr := writePkg(t, map[string]string{
		"skill.yaml": `apiVersion: skillbox/v1
name: ctr
version: 2.0.0
description: container skill
sandbox:
  container:
    image: image.tar
    id: ` + id + `
input: {type: object}
output: {type: object}
`,
		"image.tar": "not really a tarball; the store does not look inside",
	})
	e, err = s.Install(context.Background(), ctr)
	if err != nil {
		t.Fatal(err)
	}
	if e.CodeDigest != id {
		t.Fatalf("code digest %s", e.CodeDigest)
	}
}

func TestInstallRefuses(t *testing.T) {
	cases := map[string]struct {
		setup func(t *testing.T) string
		want  string
	}{
		"unexpected file": {func(t *testing.T) string {
			d := wasmPkg(t, "echo", "1.0.0")
			os.WriteFile(filepath.Join(d, "main.go"), []byte("package main"), 0o644)
			return d
		}, "main.go: unexpected file"},
		"unexpected directory": {func(t *testing.T) string {
			d := wasmPkg(t, "echo", "1.0.0")
			os.Mkdir(filepath.Join(d, ".git"), 0o755)
			return d
		}, ".git/: unexpected directory"},
		"symlinked module": {func(t *testing.T) string {
			d := wasmPkg(t, "echo", "1.0.0")
			other := filepath.Join(t.TempDir(), "real.wasm")
			os.WriteFile(other, wasmBytes, 0o644)
			os.Remove(filepath.Join(d, "module.wasm"))
			os.Symlink(other, filepath.Join(d, "module.wasm"))
			return d
		}, "module.wasm: symlinks are not allowed"},
		"symlinked manifest": {func(t *testing.T) string {
			d := wasmPkg(t, "echo", "1.0.0")
			other := filepath.Join(t.TempDir(), "skill.yaml")
			os.Rename(filepath.Join(d, "skill.yaml"), other)
			os.Symlink(other, filepath.Join(d, "skill.yaml"))
			return d
		}, "skill.yaml: not a regular file"},
		"missing module": {func(t *testing.T) string {
			d := wasmPkg(t, "echo", "1.0.0")
			os.Remove(filepath.Join(d, "module.wasm"))
			return d
		}, "module.wasm: missing from the package"},
		"module digest mismatch": {func(t *testing.T) string {
			d := wasmPkg(t, "echo", "1.0.0")
			os.WriteFile(filepath.Join(d, "module.wasm"), []byte("\x00asm\x01\x00\x00\x00\x00"), 0o644)
			return d
		}, "does not match the manifest's"},
		"bad manifest": {func(t *testing.T) string {
			return writePkg(t, map[string]string{"skill.yaml": "name: Bad\n"})
		}, "skill.yaml:"},
		"no manifest": {func(t *testing.T) string { return t.TempDir() }, "skill.yaml"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			home := newHome(t)
			s, _ := Open(home)
			_, err := s.Install(context.Background(), tc.setup(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Install = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if l, _ := s.List(); len(l) != 0 {
				t.Fatalf("something was installed: %+v", l)
			}
			assertNoStaging(t, home)
		})
	}
}

func TestInstallCheckedSeesStagedCopy(t *testing.T) {
	home := newHome(t)
	s, _ := Open(home)
	src := wasmPkg(t, "echo", "1.0.0")
	var staged string
	_, err := s.InstallChecked(context.Background(), src, func(_ context.Context, dir string, e Entry) error {
		staged = dir
		b, err := os.ReadFile(filepath.Join(dir, "module.wasm"))
		if err != nil || string(b) != string(wasmBytes) || e.Name != "echo" {
			t.Errorf("staged copy: %v", err)
		}
		return errors.New("signature does not verify")
	})
	if err == nil || !strings.Contains(err.Error(), "signature does not verify") {
		t.Fatalf("err = %v", err)
	}
	if staged == "" || strings.HasPrefix(staged, src) {
		t.Fatalf("check ran on %q, not a staged copy", staged)
	}
	if _, err := os.Stat(staged); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("staging directory left behind")
	}
	if l, _ := s.List(); len(l) != 0 {
		t.Fatal("a refused package was committed")
	}
}

// A refusal keeps its cause for callers to branch on, and names the package as the
// caller asked (an archive, not the directory it was extracted to): a check's own error,
// a *manifest.Error. The manifest's problems used to be flattened to text.
func TestInstallErrorsKeepTheCause(t *testing.T) {
	s, _ := Open(newHome(t))
	ctx := context.Background()
	refusal := errors.New("signature does not verify")
	src := wasmPkg(t, "echo", "1.0.0")
	_, err := s.InstallVerified(ctx, src, InstallOptions{Source: "echo.tar.gz",
		Check: func(context.Context, string, Entry) error { return refusal }})
	if !errors.Is(err, refusal) || !strings.HasPrefix(err.Error(), "install echo.tar.gz: ") || strings.Contains(err.Error(), src) {
		t.Fatalf("check refusal: %v", err)
	}

	bad := writePkg(t, map[string]string{"skill.yaml": "name: Bad\n"})
	_, err = s.InstallVerified(ctx, bad, InstallOptions{Source: "bad.tar.gz"})
	var me *manifest.Error
	if !errors.As(err, &me) || len(me.Problems) < 2 {
		t.Fatalf("bad manifest: %v: want the *manifest.Error listing each problem", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "install bad.tar.gz: skill.yaml: ") || strings.Contains(msg, "\n") || strings.Contains(msg, bad) {
		t.Fatalf("bad manifest: %q: want one line naming bad.tar.gz", msg)
	}
}

func TestLookup(t *testing.T) {
	s, _ := Open(newHome(t))
	ctx := context.Background()
	var v1, v2, v10 Entry
	var err error
	for _, p := range []struct {
		e *Entry
		v string
	}{{&v1, "1.0.0"}, {&v10, "1.10.0"}, {&v2, "1.2.0"}} {
		if *p.e, err = s.Install(ctx, wasmPkg(t, "echo", p.v)); err != nil {
			t.Fatal(err)
		}
	}
	other, _ := s.Install(ctx, wasmPkg(t, "other", "9.9.9"))
	cases := []struct {
		pin, want, wantErr string
	}{
		{"", v10.ManifestDigest, ""},
		{"1.2.0", v2.ManifestDigest, ""},
		{v1.ManifestDigest, v1.ManifestDigest, ""},
		{"3.0.0", "", "not installed"},
		{other.ManifestDigest, "", "not installed"},
		{"sha256:zz", "", "bad digest"},
		{"sha256:" + strings.Repeat("0", 64), "", "not installed"},
	}
	for _, tc := range cases {
		e, err := s.Lookup("echo", tc.pin)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrNotFound) {
				t.Errorf("Lookup(echo, %q) = %v, want %q", tc.pin, err, tc.wantErr)
			}
			continue
		}
		if err != nil || e.ManifestDigest != tc.want {
			t.Errorf("Lookup(echo, %q) = %s %v, want %s", tc.pin, e.ManifestDigest, err, tc.want)
		}
	}
	if _, err := s.Lookup("nope", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown name: %v", err)
	}
	vs, _ := s.Versions("echo")
	if len(vs) != 3 || vs[0].Version != "1.10.0" || vs[2].Version != "1.0.0" {
		t.Errorf("versions order: %v", vs)
	}

	// The same version under a second digest is ambiguous by version.
	d := wasmPkg(t, "echo", "1.2.0")
	y, _ := os.ReadFile(filepath.Join(d, "skill.yaml"))
	os.WriteFile(filepath.Join(d, "skill.yaml"), []byte(strings.Replace(string(y), "test skill", "rebuilt", 1)), 0o644)
	if _, err := s.Install(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup("echo", "1.2.0"); err == nil || !strings.Contains(err.Error(), "pin a digest") {
		t.Errorf("ambiguous version: %v", err)
	}
}

func TestTamperedStoreIsReported(t *testing.T) {
	home := newHome(t)
	s, _ := Open(home)
	e, err := s.Install(context.Background(), wasmPkg(t, "echo", "1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(e.Dir, "skill.yaml")
	os.Chmod(e.Dir, 0o755)
	os.Chmod(p, 0o644)
	b, _ := os.ReadFile(p)
	os.WriteFile(p, append(b, "# edited\n"...), 0o644)
	fresh, _ := Open(home) // no cache
	if _, err := fresh.List(); err == nil || !strings.Contains(err.Error(), "does not match its digest") {
		t.Fatalf("List on a tampered store: %v", err)
	}
}

func TestConcurrentInstallSamePackage(t *testing.T) {
	home := newHome(t)
	src := wasmPkg(t, "echo", "1.0.0")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			s, _ := Open(home) // separate stores, as separate processes would be
			_, err := s.Install(context.Background(), src)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s, _ := Open(home)
	if l, err := s.List(); err != nil || len(l) != 1 {
		t.Fatalf("list: %d %v", len(l), err)
	}
	assertNoStaging(t, home)
}

func TestDisableSurvivesRestart(t *testing.T) {
	home := newHome(t)
	s, _ := Open(home)
	if err := s.Disable("echo", "ops", "incident 42"); err != nil {
		t.Fatal(err)
	}
	s2, _ := Open(home)
	d, err := s2.IsDisabled("echo")
	if err != nil || d == nil || d.Reason != "incident 42" || d.By != "ops" || d.At.IsZero() {
		t.Fatalf("after restart: %+v %v", d, err)
	}
	set, _ := s2.DisabledSet()
	if len(set) != 1 || set["echo"] == nil {
		t.Fatalf("set = %v", set)
	}
	if err := s2.Enable("echo"); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.IsDisabled("echo"); d != nil {
		t.Fatal("still disabled after Enable")
	}
	if err := s.Enable("echo"); err != nil {
		t.Fatalf("enable twice: %v", err)
	}
	for _, bad := range []string{"../escape", "", "UPPER", "a/b"} {
		if err := s.Disable(bad, "", ""); err == nil {
			t.Errorf("Disable(%q) accepted", bad)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(home, "disabled")); len(ents) != 0 {
		t.Fatalf("leftovers in disabled/: %v", ents)
	}
}

func TestCompareVersions(t *testing.T) {
	ordered := []string{"junk", "0.9.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.2.0", "1.10.0", "2.0.0"}
	for i := range ordered {
		for j := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := CompareVersions(ordered[i], ordered[j]); got != want {
				t.Errorf("CompareVersions(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
	if CompareVersions("1.0.0+build.1", "1.0.0+build.2") != 0 {
		t.Error("build metadata must not order")
	}
}

func assertNoStaging(t *testing.T, home string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(home, "skills"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".stage-") {
			t.Fatalf("staging directory left behind: %s", e.Name())
		}
	}
}
