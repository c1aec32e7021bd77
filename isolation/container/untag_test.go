package container

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"path"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// tarOf is a tarball of the given entries {name, contents}, in order; contents "->T"
// make a symbolic link to T, "=>T" a hard link.
func tarOf(t *testing.T, entries ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	writeEntries(t, tw, entries)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeEntries writes entries {name, contents} to tw as tarOf describes them.
func writeEntries(t *testing.T, tw *tar.Writer, entries [][2]string) {
	t.Helper()
	for _, e := range entries {
		if target, ok := strings.CutPrefix(e[1], "->"); ok { // a symbolic link
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: e[0], Linkname: target, Mode: 0o777}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if target, ok := strings.CutPrefix(e[1], "=>"); ok { // a hard link
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: e[0], Linkname: target, Mode: 0o777}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e[0], Mode: 0o644, Size: int64(len(e[1]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e[1])); err != nil {
			t.Fatal(err)
		}
	}
}

// asExtracted is what `docker load` finds in the directory it extracts a tarball to:
// each entry under its cleaned name inside that directory, a later entry replacing an
// earlier one of the same name (moby's archive.Unpack).
func asExtracted(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(path.Clean("/"+h.Name), "/")] = b
	}
}

// TestUntaggedDropsEveryName: whatever way a tarball spells a tag, what `docker load`
// reads from the untagged stream names no image. Docker reads manifest.json with
// encoding/json, whose field names match in any case ("repoTags", "REPOTAGS",
// "RepoTagſ" all fill RepoTags); it extracts "/manifest.json" to the same file as
// "manifest.json", the later entry winning; and with the containerd image store it
// names images from the annotations of index.json (io.containerd.image.name, or
// org.opencontainers.image.ref.name).
func TestUntaggedDropsEveryName(t *testing.T) {
	const cfg = `{"architecture":"amd64","os":"linux"}`
	clean := `[{"Config":"c.json","RepoTags":null,"Layers":["l/layer.tar"]}]`
	tagged := func(key string) string {
		return `[{"Config":"c.json","` + key + `":["skillbox-test/victim:1"],"Layers":["l/layer.tar"]}]`
	}
	index := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"digest":"sha256:` + strings.Repeat("ab", 32) + `","size":123,"annotations":{"io.containerd.image.name":"docker.io/skillbox-test/victim:1",` +
		`"org.opencontainers.image.ref.name":"docker.io/skillbox-test/victim:2","dev.skillbox.test.kept":"yes"}}]}`
	for _, tc := range []struct {
		name    string
		entries [][2]string
		refused string // the untagged stream fails with this
	}{
		{"RepoTags", [][2]string{{"manifest.json", tagged("RepoTags")}, {"c.json", cfg}}, ""},
		{"repoTags", [][2]string{{"manifest.json", tagged("repoTags")}, {"c.json", cfg}}, ""},
		{"REPOTAGS", [][2]string{{"manifest.json", tagged("REPOTAGS")}, {"c.json", cfg}}, ""},
		{"long s", [][2]string{{"manifest.json", tagged("RepoTag\u017f")}, {"c.json", cfg}}, ""},
		{"both spellings", [][2]string{{"manifest.json", `[{"Config":"c.json","RepoTags":null,"repotags":["skillbox-test/victim:1"],"Layers":[]}]`}}, ""},
		{"absolute name", [][2]string{{"manifest.json", clean}, {"c.json", cfg}, {"/manifest.json", tagged("RepoTags")}}, ""},
		{"dot dot name", [][2]string{{"manifest.json", clean}, {"c.json", cfg}, {"l/../manifest.json", tagged("RepoTags")}}, ""},
		{"index.json", [][2]string{{"oci-layout", `{"imageLayoutVersion":"1.0.0"}`}, {"index.json", index}, {"manifest.json", clean}}, ""},
		{"/index.json", [][2]string{{"oci-layout", `{"imageLayoutVersion":"1.0.0"}`}, {"/index.json", index}}, ""},
		{"through a symbolic link", [][2]string{{"manifest.json", clean}, {"here", "->."}, {"here/manifest.json", tagged("RepoTags")}},
			`image tar: entry "here/manifest.json" is written through the symbolic link "here": refused`},
		{"through a hard link to a symbolic link", [][2]string{{"manifest.json", clean}, {"a", "->."}, {"b", "=>a"}, {"b/c/manifest.json", tagged("RepoTags")}},
			`image tar: entry "b/c/manifest.json" is written through the symbolic link "b": refused`},
		{"manifest.json as a link", [][2]string{{"x.json", tagged("RepoTags")}, {"manifest.json", "->x.json"}},
			"image tar manifest.json: unexpected end of JSON input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := untagged(bytes.NewReader(tarOf(t, tc.entries...)))
			out, err := io.ReadAll(rc)
			rc.Close()
			if tc.refused != "" {
				if err == nil || err.Error() != tc.refused {
					t.Fatalf("untagged: %v, want %q", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatalf("untagged: %v", err)
			}
			files := asExtracted(t, out)
			if raw, ok := files["manifest.json"]; ok {
				var items []struct {
					Config   string
					RepoTags []string
					Layers   []string
				}
				if err := json.Unmarshal(raw, &items); err != nil {
					t.Fatalf("manifest.json as docker reads it: %v\n%s", err, raw)
				}
				for _, it := range items {
					if len(it.RepoTags) != 0 {
						t.Errorf("docker load reads RepoTags %v from %s", it.RepoTags, raw)
					}
					if it.Config != "c.json" {
						t.Errorf("Config = %q, want it kept (%s)", it.Config, raw)
					}
				}
			}
			if raw, ok := files["index.json"]; ok {
				var idx ocispec.Index
				if err := json.Unmarshal(raw, &idx); err != nil {
					t.Fatalf("index.json: %v\n%s", err, raw)
				}
				for _, m := range idx.Manifests {
					for _, k := range []string{"io.containerd.image.name", ocispec.AnnotationRefName} {
						if v, ok := m.Annotations[k]; ok {
							t.Errorf("index.json names the image %q (%s)", v, k)
						}
					}
					if m.Annotations["dev.skillbox.test.kept"] != "yes" || m.Digest.Encoded() != strings.Repeat("ab", 32) || m.Size != 123 {
						t.Errorf("index.json lost more than the names: %s", raw)
					}
				}
			}
			if raw, ok := files["c.json"]; ok && string(raw) != cfg {
				t.Errorf("the config changed: %s", raw)
			}
		})
	}
}
