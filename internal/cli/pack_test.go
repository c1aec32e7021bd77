package cli

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A bundle signed before the last edit is flagged by pack and never archived.
func TestPackRefusesAStaleBundle(t *testing.T) {
	bin := signBuildCLI(t)
	work := t.TempDir()
	env := []string{"SKILLBOX_HOME=" + filepath.Join(work, "home"), "SKILLBOX_KEY_PASSWORD="}
	pkg := filepath.Join(work, "echo")
	code, err := os.ReadFile(filepath.Join("..", "..", "runtime", "engine", "testdata", "echo.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(pkg, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("module.wasm", code)
	write("skill.yaml", []byte("apiVersion: skillbox/v1\nname: echo\nversion: 1.0.0\ndescription: Echo.\n"+
		"sandbox:\n  wasm:\n    module: module.wasm\n    sha256: \"\"\ninput: {type: object}\noutput: {type: object}\n"))
	for _, args := range [][]string{{"pack", pkg}, {"keygen", "--out", filepath.Join(work, "k")}, {"sign", pkg, "--key", filepath.Join(work, "k.key")}} {
		if r := signRunCLI(t, bin, env, args...); r.code != 0 {
			t.Fatalf("%v: %s", args, r.stderr)
		}
	}
	if r := signRunCLI(t, bin, env, "pack", pkg, "-o", filepath.Join(work, "ok.tar.gz")); r.code != 0 || r.stderr != "" {
		t.Fatalf("pack of a freshly signed package: %d %q", r.code, r.stderr)
	}

	write("module.wasm", append(code, 0)) // the author rebuilds and forgets to sign
	r := signRunCLI(t, bin, env, "pack", pkg)
	if r.code != 0 || !strings.Contains(r.stderr, "warning: skill.sigstore.json does not match the package any more") {
		t.Fatalf("pack after an edit: %d %q", r.code, r.stderr)
	}
	r = signRunCLI(t, bin, env, "pack", pkg, "-o", filepath.Join(work, "stale.tar.gz"))
	if r.code == 0 || !strings.Contains(r.stderr, "sign it again before archiving") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("pack -o with a stale bundle: %d %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(work, "stale.tar.gz")); !os.IsNotExist(err) {
		t.Fatalf("an archive with a stale bundle was written: %v", err)
	}
}

// pack names a container's code digest as what it is, the image ID: the sha256 of
// image.tar is another number, and a reader comparing the two must not see a mismatch.
func TestPackNamesTheImageID(t *testing.T) {
	bin := signBuildCLI(t)
	work := t.TempDir()
	env := []string{"SKILLBOX_HOME=" + filepath.Join(work, "home")}
	pkg := filepath.Join(work, "tool")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	config := []byte(`{"architecture":"amd64","config":{"User":"65534:65534"}}`)
	sum := sha256.Sum256(config)
	cfgName := "blobs/sha256/" + hex.EncodeToString(sum[:])
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
	}{
		{cfgName, config},
		{"manifest.json", []byte(`[{"Config":"` + cfgName + `","RepoTags":["tool:dev"],"Layers":[]}]`)},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkg, "image.tar"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkg, "skill.yaml"), []byte("apiVersion: skillbox/v1\nname: tool\nversion: 1.0.0\ndescription: A tool.\n"+
		"sandbox:\n  container:\n    image: image.tar\n    id: \"\"\ninput: {type: object}\noutput: {type: object}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := signRunCLI(t, bin, env, "pack", pkg)
	want := "image.tar image ID sha256:" + hex.EncodeToString(sum[:]) + "\n"
	if r.code != 0 || !strings.HasSuffix(r.stdout, want) {
		t.Fatalf("pack: exit %d, stdout %q, stderr %q; want a last line %q", r.code, r.stdout, r.stderr, want)
	}
	// sign names it the same way.
	key := filepath.Join(work, "acme")
	if r := signRunCLI(t, bin, env, "keygen", "--out", key); r.code != 0 {
		t.Fatalf("keygen: %d %s", r.code, r.stderr)
	}
	r = signRunCLI(t, bin, env, "sign", pkg, "--key", key+".key")
	want = ", image.tar image ID sha256:" + hex.EncodeToString(sum[:]) + "\n"
	if r.code != 0 || !strings.HasSuffix(r.stdout, want) {
		t.Fatalf("sign: exit %d, stdout %q, stderr %q; want a line ending %q", r.code, r.stdout, r.stderr, want)
	}
}
