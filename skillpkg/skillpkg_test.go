package skillpkg

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/manifest"
)

const wasmYAML = `# The demo skill.
apiVersion: skillbox/v1
name: demo
version: 0.1.0
description: Says hello.
sandbox:
  wasm:
    module: module.wasm
    sha256: "" # filled in by skillbox pack
input:
  type: object
limits:
  timeout: 5s # short on purpose
`

func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestFillWasm(t *testing.T) {
	dir := t.TempDir()
	code := []byte("\x00asm\x01\x00\x00\x00")
	writeFiles(t, dir, map[string][]byte{"skill.yaml": []byte(wasmYAML), "module.wasm": code})
	if _, err := Load(dir); err == nil {
		t.Fatal("Load accepted an unfilled manifest")
	}
	p, err := Fill(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Code.Name != "module.wasm" || p.Code.SHA256 != hexSum(code) || p.Manifest.Sandbox.Wasm.SHA256 != hexSum(code) {
		t.Errorf("code subject %+v", p.Code)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "skill.yaml"))
	for _, keep := range []string{"# The demo skill.", "# filled in by skillbox pack", "# short on purpose", "sha256: " + hexSum(code)} {
		if !strings.Contains(string(data), keep) {
			t.Errorf("skill.yaml lost %q:\n%s", keep, data)
		}
	}
	// Key order kept: name before version before sandbox.
	if i, j := strings.Index(string(data), "name:"), strings.Index(string(data), "sandbox:"); i < 0 || j < i {
		t.Errorf("key order changed:\n%s", data)
	}
	if ManifestDigest(data) != "sha256:"+hexSum(data) || !bytes.Equal(p.ManifestBytes, data) {
		t.Error("manifest digest")
	}
	// Filling again changes nothing.
	if _, err := Fill(dir); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(filepath.Join(dir, "skill.yaml"))
	if !bytes.Equal(again, data) {
		t.Error("second Fill rewrote skill.yaml")
	}
	// Changed code: Load refuses until filled again.
	writeFiles(t, dir, map[string][]byte{"module.wasm": []byte("other")})
	var dm *DigestMismatchError
	if _, err := Load(dir); !errors.As(err, &dm) {
		t.Errorf("changed module: %v", err)
	}
}

func TestFillReportsManifestProblems(t *testing.T) {
	dir := t.TempDir()
	bad := strings.Replace(wasmYAML, "timeout: 5s", "timeout: 5 seconds", 1)
	writeFiles(t, dir, map[string][]byte{"skill.yaml": []byte(bad), "module.wasm": []byte("x")})
	_, err := Fill(dir)
	var me *manifest.Error
	if !errors.As(err, &me) || !strings.Contains(err.Error(), `limits.timeout: "5 seconds"`) {
		t.Fatalf("got %v", err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "skill.yaml"))
	if string(data) != bad {
		t.Error("invalid result was written")
	}
}

func TestFillRefusesModuleOutsidePackage(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "pkg")
	writeFiles(t, parent, map[string][]byte{"secret.wasm": []byte("x")})
	writeFiles(t, dir, map[string][]byte{"skill.yaml": []byte(wasmYAML)})
	if err := os.Symlink("../secret.wasm", filepath.Join(dir, "module.wasm")); err != nil {
		t.Fatal(err)
	}
	if _, err := Fill(dir); err == nil || !strings.Contains(err.Error(), "module.wasm") {
		t.Fatalf("symlink out of the package: %v", err)
	}
}

// dockerSave builds a tarball shaped like `docker save` output (OCI layout, Docker 25+).
func dockerSave(t *testing.T, config []byte, extra ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	cfgName := "blobs/sha256/" + hexSum(config)
	add := func(name string, data []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	add(cfgName, config)
	add("blobs/sha256/"+strings.Repeat("a", 64), []byte("layer"))
	manifests := `[{"Config":"` + cfgName + `","RepoTags":["demo:latest"],"Layers":[]}`
	for _, e := range extra {
		manifests += "," + e
	}
	add("manifest.json", []byte(manifests+"]"))
	tw.Close()
	return buf.Bytes()
}

func TestImageID(t *testing.T) {
	config := []byte(`{"architecture":"amd64","config":{"User":"65534:65534"}}`)
	id, err := ImageID(bytes.NewReader(dockerSave(t, config)))
	if err != nil || id != hexSum(config) {
		t.Fatalf("ImageID = %s, %v; want %s", id, err, hexSum(config))
	}
	if _, err := ImageID(bytes.NewReader(dockerSave(t, config, `{"Config":"x"}`))); err == nil || !strings.Contains(err.Error(), "exactly one image") {
		t.Errorf("two images: %v", err)
	}
	if _, err := ImageID(bytes.NewReader([]byte("not a tar"))); err == nil {
		t.Error("garbage accepted")
	}

	dir := t.TempDir()
	yamlDoc := "apiVersion: skillbox/v1\nname: c\nversion: 1.0.0\ndescription: d\nsandbox:\n  container:\n    image: image.tar\n"
	writeFiles(t, dir, map[string][]byte{"skill.yaml": []byte(yamlDoc), "image.tar": dockerSave(t, config)})
	p, err := Fill(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Manifest.Sandbox.Container.ID != "sha256:"+hexSum(config) || p.Code.Name != "image.tar" {
		t.Errorf("container fill: %+v %+v", p.Manifest.Sandbox.Container, p.Code)
	}
	if _, code, err := Subjects(dir, p.Manifest); err != nil || code != p.Code {
		t.Fatalf("Subjects of a filled container package = %+v, %v; want %+v", code, err, p.Code)
	}

	// An image tar holding another image than the one skill.yaml runs never gives a
	// pair to verify: a signature over the tar's image would let the package run
	// whatever image the manifest names that the engine already has.
	other := []byte(`{"architecture":"amd64","os":"linux","config":{"User":"65534"}}`)
	writeFiles(t, dir, map[string][]byte{"image.tar": dockerSave(t, other)})
	_, _, err = Subjects(dir, p.Manifest)
	var dm *DigestMismatchError
	if !errors.As(err, &dm) || dm.Field != "sandbox.container.id" || dm.Actual != "sha256:"+hexSum(other) ||
		!strings.Contains(err.Error(), "image.tar: digest sha256:"+hexSum(other)+" does not match sandbox.container.id "+p.Manifest.Sandbox.Container.ID) {
		t.Fatalf("Subjects with another image in image.tar: %v", err)
	}
}

func TestArchiveRoundTrip(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{"skill.yaml": []byte(wasmYAML), "module.wasm": []byte("code"), BundleFile: []byte("{}"), "notes.txt": []byte("not packed")})
	if _, err := Fill(dir); err != nil {
		t.Fatal(err)
	}
	a1, a2 := filepath.Join(t.TempDir(), "a.tar.gz"), filepath.Join(t.TempDir(), "b.tar.gz")
	if err := Archive(dir, a1); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(dir, "module.wasm"), timeZero.AddDate(30, 0, 0), timeZero.AddDate(30, 0, 0))
	if err := Archive(dir, a2); err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(a1)
	b2, _ := os.ReadFile(a2)
	if !bytes.Equal(b1, b2) {
		t.Error("archive is not deterministic")
	}
	out := filepath.Join(t.TempDir(), "x")
	if err := Extract(a1, out); err != nil {
		t.Fatal(err)
	}
	p, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if !p.HasBundle || p.Code.SHA256 != hexSum([]byte("code")) {
		t.Errorf("extracted package: %+v", p)
	}
	if _, err := os.Stat(filepath.Join(out, "notes.txt")); err == nil {
		t.Error("a file outside the package was archived")
	}
	if err := Extract(a1, out); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("extract into a full directory: %v", err)
	}
}

type entry struct {
	hdr  tar.Header
	data string
}

func hostile(t *testing.T, entries ...entry) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(e.data))
		}
		h.Mode = 0o644
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.data))
		}
	}
	tw.Close()
	gz.Close()
	f := filepath.Join(t.TempDir(), "h.tar.gz")
	if err := os.WriteFile(f, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestExtractHostile(t *testing.T) {
	small := Limits{Entries: 4, FileBytes: 100, Total: 150}
	file := func(name, data string) entry { return entry{tar.Header{Name: name}, data} }
	for _, tc := range []struct {
		name    string
		entries []entry
		want    string
	}{
		{"absolute", []entry{file("/etc/cron.d/x", "x")}, `archive entry "/etc/cron.d/x": absolute path`},
		{"dotdot", []entry{file("../x", "x")}, `archive entry "../x": path leaves the package (..)`},
		{"inner dotdot", []entry{file("a/../../x", "x")}, `archive entry "a/../../x": path leaves the package (..)`},
		{"unclean", []entry{file("a//b", "x")}, `archive entry "a//b": unclean path`},
		{"symlink", []entry{{tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, ""}}, `archive entry "l": links are not allowed`},
		{"hardlink", []entry{file("a", "x"), {tar.Header{Name: "b", Typeflag: tar.TypeLink, Linkname: "a"}, ""}}, `archive entry "b": links are not allowed`},
		{"device", []entry{{tar.Header{Name: "d", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}, ""}}, `archive entry "d": devices and pipes are not allowed`},
		{"fifo", []entry{{tar.Header{Name: "p", Typeflag: tar.TypeFifo}, ""}}, `archive entry "p": devices and pipes are not allowed`},
		{"duplicate", []entry{file("skill.yaml", "a"), file("./skill.yaml", "b")}, `archive entry "./skill.yaml": duplicate entry`},
		{"too many", []entry{file("a", ""), file("b", ""), file("c", ""), file("d", ""), file("e", "")}, "archive: more than 4 entries"},
		{"file too big", []entry{file("big", strings.Repeat("x", 101))}, `archive entry "big": 101 bytes, over the limit of 100 per file`},
		{"total too big", []entry{file("a", strings.Repeat("x", 100)), file("b", strings.Repeat("x", 51))}, `archive entry "b": archive over the limit of 150 bytes in all`},
		{"file then dir over it", []entry{file("a", "x"), file("a/b", "y")}, `archive entry "a/b": a is not a directory`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arch := hostile(t, tc.entries...)
			parent := t.TempDir()
			dest := filepath.Join(parent, "out")
			err := ExtractLimits(arch, dest, small)
			var ae *ArchiveError
			if !errors.As(err, &ae) || err.Error() != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
			// No harm done: nothing left in dest, nothing written beside it.
			if ents, _ := os.ReadDir(dest); len(ents) != 0 {
				t.Errorf("left %d entries behind", len(ents))
			}
			if ents, _ := os.ReadDir(parent); len(ents) != 1 {
				t.Errorf("wrote beside the destination: %v", ents)
			}
		})
	}
	// Not gzip at all.
	junk := filepath.Join(t.TempDir(), "j.tar.gz")
	os.WriteFile(junk, []byte("junk"), 0o644)
	var ae *ArchiveError
	if err := Extract(junk, filepath.Join(t.TempDir(), "o")); !errors.As(err, &ae) {
		t.Errorf("junk: %v", err)
	}
	// A file that is no package at all (a key, an empty file) is said in one phrase,
	// not gzip's own ("not gzip: gzip: invalid header").
	empty := filepath.Join(t.TempDir(), "e.tar.gz")
	os.WriteFile(empty, nil, 0o644)
	for _, f := range []string{junk, empty} {
		const want = "archive: not a .tar.gz (no gzip header): want a package made by skillbox pack -o"
		if err := Extract(f, filepath.Join(t.TempDir(), "o")); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %s", filepath.Base(f), err, want)
		}
	}
}

var timeZero = mustTime()

func mustTime() (t0 time.Time) { return time.Time{}.AddDate(2000, 0, 0) }

func TestFillAddsMissingKey(t *testing.T) {
	dir := t.TempDir()
	doc := strings.Replace(wasmYAML, "    sha256: \"\" # filled in by skillbox pack\n", "", 1)
	writeFiles(t, dir, map[string][]byte{"skill.yaml": []byte(doc), "module.wasm": []byte("m")})
	p, err := Fill(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Manifest.Sandbox.Wasm.SHA256 != hexSum([]byte("m")) {
		t.Errorf("sha256 = %q", p.Manifest.Sandbox.Wasm.SHA256)
	}
}

func TestCodeSubjectRegistry(t *testing.T) {
	ref := "registry.example.com/acme/tool@sha256:" + strings.Repeat("b", 64)
	doc := "apiVersion: skillbox/v1\nname: c\nversion: 1.0.0\ndescription: d\nsandbox:\n  container:\n    image: " + ref + "\n    id: sha256:" + strings.Repeat("c", 64) + "\n"
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{"skill.yaml": []byte(doc)})
	p, err := Fill(dir) // nothing to compute, still validates
	if err != nil {
		t.Fatal(err)
	}
	if p.Code.Name != ref || p.Code.SHA256 != strings.Repeat("c", 64) {
		t.Errorf("code subject %+v", p.Code)
	}
	files, err := Files(dir)
	if err != nil || len(files) != 1 || files[0] != ManifestFile {
		t.Errorf("a registry image is not archived: %v %v", files, err)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no skill.yaml: not a skill package") {
		t.Errorf("empty dir: %v", err)
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{"skill.yaml": []byte("name: [")})
	var pe *ManifestError
	if _, err := Load(dir); !errors.As(err, &pe) {
		t.Errorf("bad yaml: %v", err)
	}
	dir = t.TempDir()
	writeFiles(t, dir, map[string][]byte{"skill.yaml": []byte(strings.Replace(wasmYAML, `""`, strings.Repeat("a", 64), 1))})
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "module.wasm: not found in the package") {
		t.Errorf("missing module: %v", err)
	}
}

func TestFillKeepsFormatting(t *testing.T) {
	for _, tc := range []struct{ name, before, after string }{
		{"quoted, odd indent", "sandbox:\n    wasm:   # the module\n        module: module.wasm\n        sha256: \"\"      # aligned\n",
			"sandbox:\n    wasm:   # the module\n        module: module.wasm\n        sha256: SUM      # aligned\n"},
		{"flow, non-ASCII before", "sandbox: {wasm: {module: module.wasm, sha256: 'ü'}}   # flow\n",
			"sandbox: {wasm: {module: module.wasm, sha256: SUM}}   # flow\n"},
		{"plain, stale digest", "sandbox:\n  wasm:\n    module: module.wasm\n    sha256: " + strings.Repeat("0", 64) + "\n",
			"sandbox:\n  wasm:\n    module: module.wasm\n    sha256: SUM\n"},
		{"null value: re-encoded", "sandbox:\n    wasm:\n        module: module.wasm\n        sha256: # fill me\n",
			"sandbox:\n  wasm:\n    module: module.wasm\n    sha256: SUM # fill me\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head := "apiVersion: skillbox/v1\nname: demo   # ü\nversion: 0.1.0\ndescription: Says hello.\n"
			dir := t.TempDir()
			writeFiles(t, dir, map[string][]byte{"skill.yaml": []byte(head + tc.before), "module.wasm": []byte("m")})
			if _, err := Fill(dir); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(filepath.Join(dir, "skill.yaml"))
			want := head + strings.Replace(tc.after, "SUM", hexSum([]byte("m")), 1)
			if strings.HasSuffix(tc.name, "re-encoded") {
				want = strings.Replace(want, "demo   #", "demo #", 1) // comments kept, spacing normalised
			}
			if string(got) != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// Subjects is the one way from a package directory to its signed pair: skill.yaml's
// exact bytes and the code as it is on disk. It agrees with a loaded Package, and,
// unlike Load, leaves a code digest that differs from skill.yaml's record for the
// signature check to name.
func TestSubjects(t *testing.T) {
	dir := t.TempDir()
	code := []byte("\x00asm\x01\x00\x00\x00")
	writeFiles(t, dir, map[string][]byte{"skill.yaml": []byte(wasmYAML), "module.wasm": code})
	p, err := Fill(dir)
	if err != nil {
		t.Fatal(err)
	}
	pm, pc := p.Subjects()
	if pm.Name != ManifestFile || pm.SHA256 != hexSum(p.ManifestBytes) || pc.Name != "module.wasm" || pc.SHA256 != hexSum(code) {
		t.Fatalf("Package.Subjects = %+v, %+v", pm, pc)
	}
	if d := p.CodeDigest(); d.String() != "sha256:"+hexSum(code) {
		t.Fatalf("CodeDigest = %q", d)
	}
	m := p.Manifest
	dm, dc, err := Subjects(dir, m)
	if err != nil || dm != pm || dc != pc {
		t.Fatalf("Subjects = %+v, %+v, %v; want the loaded package's %+v, %+v", dm, dc, err, pm, pc)
	}

	other := append(append([]byte(nil), code...), 0)
	writeFiles(t, dir, map[string][]byte{"module.wasm": other})
	if _, err := Load(dir); err == nil {
		t.Fatal("Load accepted a module that differs from skill.yaml's record")
	}
	if dm, dc, err = Subjects(dir, m); err != nil || dm != pm || dc.SHA256 != hexSum(other) {
		t.Fatalf("changed module: Subjects = %+v, %+v, %v; want the module's new digest", dm, dc, err)
	}

	// A skill.yaml past the size bound is not digested in part.
	big := append([]byte(wasmYAML), bytes.Repeat([]byte("#"), manifest.MaxManifestBytes)...)
	writeFiles(t, dir, map[string][]byte{"skill.yaml": big})
	if _, _, err := Subjects(dir, m); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized skill.yaml: %v", err)
	}
}

// Meta headers (PAX records, GNU long names) are read inside tar.Reader.Next and are
// no entries of their own: a run of them before one small file made Extract decompress
// and parse any amount of data (about 1,000 times the archive's size, as gzip allows)
// within Limits that bound only entries and file bytes. The tar stream is bounded too.
func TestExtractBoundsMetaHeaders(t *testing.T) {
	small := Limits{Entries: 4, FileBytes: 100, Total: 150}
	// One PAX header of 8 KiB of records, without the file header it belongs to.
	var one bytes.Buffer
	tw := tar.NewWriter(&one)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "pad", Mode: 0o644, Format: tar.FormatPAX,
		PAXRecords: map[string]string{"comment": strings.Repeat("x", 8<<10)}}); err != nil {
		t.Fatal(err)
	}
	meta := one.Bytes()[:one.Len()-512]
	var stream bytes.Buffer
	for range 64 { // 512 KiB of headers, far past 4 entries' worth
		stream.Write(meta)
	}
	tw = tar.NewWriter(&stream)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: ManifestFile, Mode: 0o644, Size: 2}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("a\n"))
	tw.Close()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	gz.Write(stream.Bytes())
	gz.Close()
	arch := filepath.Join(t.TempDir(), "meta.tar.gz")
	if err := os.WriteFile(arch, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "out")
	err := ExtractLimits(arch, dest, small)
	var ae *ArchiveError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "tar stream over the limit") {
		t.Fatalf("%d KiB of tar headers before one 2-byte file: got %v, want a refusal", stream.Len()>>10, err)
	}
	if ents, _ := os.ReadDir(dest); len(ents) != 0 {
		t.Errorf("left %d entries behind", len(ents))
	}
	// An archive at the limits still extracts: 4 entries, 150 bytes, long PAX names.
	long := strings.Repeat("d", 120)
	ok := hostile(t, entry{tar.Header{Name: long + "/", Typeflag: tar.TypeDir}, ""},
		entry{tar.Header{Name: long + "/" + strings.Repeat("a", 130)}, strings.Repeat("x", 100)},
		entry{tar.Header{Name: "b"}, strings.Repeat("x", 49)}, entry{tar.Header{Name: "c"}, "x"})
	if err := ExtractLimits(ok, filepath.Join(t.TempDir(), "ok"), small); err != nil {
		t.Fatalf("an archive within the limits: %v", err)
	}
}
