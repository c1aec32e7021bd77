package container

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/errdefs"

	"github.com/skillbox-dev/skillbox/isolation"
)

// saveImage writes `docker save ref` to dir/image.tar.
func saveImage(t *testing.T, ref, dir string) string {
	t.Helper()
	rc, err := env.cli.ImageSave(context.Background(), []string{ref})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	path := filepath.Join(dir, "image.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, rc); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadImage(t *testing.T) {
	s := newSandbox(t)
	ctx := context.Background()
	wrong := "sha256:" + strings.Repeat("ab", 32)

	// An image that is not loaded yet: tagged, saved, removed.
	tag := fmt.Sprintf("skillbox-test/other:%d", os.Getpid())
	otherID, err := buildImage(ctx, env.cli, "./testdata/hostile", "other", tag, "LABEL dev.skillbox.test.other="+randomID()+"\n") // unique: another test process may remove its own copy
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = env.cli.ImageRemove(context.Background(), otherID, image.RemoveOptions{Force: true, PruneChildren: true})
	})
	dir := t.TempDir()
	tarPath := saveImage(t, tag, dir)
	removeImage := func() {
		t.Helper()
		if _, err := env.cli.ImageRemove(ctx, otherID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Fatal(err)
		}
	}
	removeImage()

	var mm *MismatchError
	if err := s.LoadImage(ctx, tarPath, wrong); !errors.As(err, &mm) || len(mm.Got) != 1 || mm.Got[0] != otherID {
		t.Fatalf("LoadImage with the wrong id = %v, want a MismatchError naming %s", err, otherID)
	}
	if _, err := env.cli.ImageInspect(ctx, otherID); !errdefs.IsNotFound(err) {
		t.Fatalf("a refused image stayed loaded (inspect: %v)", err)
	}
	if err := s.LoadImage(ctx, tarPath, "latest"); err == nil {
		t.Fatal("LoadImage accepted a non-digest id")
	}
	if err := s.LoadImage(ctx, tarPath, otherID); err != nil {
		t.Fatalf("LoadImage with the right id: %v", err)
	}
	if _, err := env.cli.ImageInspect(ctx, otherID); err != nil {
		t.Fatalf("loaded image missing: %v", err)
	}

	// An image that was already present is not removed by a refused load.
	hostileTar := saveImage(t, env.hostileID, t.TempDir())
	if err := s.LoadImage(ctx, hostileTar, wrong); !errors.As(err, &mm) {
		t.Fatalf("LoadImage(hostile, wrong) = %v, want MismatchError", err)
	}
	if _, err := env.cli.ImageInspect(ctx, env.hostileID); err != nil {
		t.Fatalf("the pre-existing image was removed: %v", err)
	}

	// Run loads the package's image.tar itself when the image is missing.
	removeImage()
	call := hostileCall(`{"mode":"echo"}`)
	call.Skill.Dir = dir
	call.Skill.Digest = otherID
	call.Skill.Manifest.Sandbox.Container.ID = otherID
	res, err := s.Run(ctx, call)
	if err != nil {
		t.Fatalf("Run from image.tar: %v", err)
	}
	if !strings.Contains(string(res.Output), "echo") {
		t.Errorf("output = %s", res.Output)
	}

	// A registry reference is pulled; no registry answers here, so the pull fails
	// clearly. The registry is a closed loopback port: nothing leaves the host.
	call = hostileCall(`{"mode":"echo"}`)
	call.Skill.Digest = "sha256:" + strings.Repeat("cd", 32)
	call.Skill.Manifest.Sandbox.Container.Image = "127.0.0.1:1/skill@sha256:" + strings.Repeat("cd", 32)
	call.Skill.Dir = dir
	if _, err := s.Run(ctx, call); err == nil || !strings.Contains(err.Error(), "pull 127.0.0.1:1/skill@sha256:") || isolation.ReasonOf(err) != isolation.ReasonInvalidModule {
		t.Fatalf("registry image = %v, want a failed pull", err)
	}
	// An unpinned reference is refused before any pull.
	if err := s.PullImage(ctx, "127.0.0.1:1/skill:latest", call.Skill.Digest); err == nil || !strings.Contains(err.Error(), "pinned by digest") {
		t.Fatalf("unpinned reference = %v", err)
	}
}

// TestLoadImageDoesNotRetag: a package whose image.tar carries the tag of an image
// already on the host cannot point that tag at its own image.
func TestLoadImageDoesNotRetag(t *testing.T) {
	s := newSandbox(t)
	ctx := context.Background()
	victimTag := fmt.Sprintf("skillbox-test/victim:%d", os.Getpid())
	removeLater := func(id string) {
		t.Cleanup(func() {
			_, _ = env.cli.ImageRemove(context.Background(), id, image.RemoveOptions{Force: true, PruneChildren: true})
		})
	}
	// The package's image, saved under the victim's tag, then removed from the engine.
	pkgID, err := buildImage(ctx, env.cli, "./testdata/hostile", "hostile", victimTag, "LABEL dev.skillbox.test.pkg="+randomID()+"\n")
	if err != nil {
		t.Fatal(err)
	}
	removeLater(pkgID)
	tarPath := saveImage(t, victimTag, t.TempDir())
	if _, err := env.cli.ImageRemove(ctx, pkgID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
		t.Fatal(err)
	}
	// The victim: another image the host knows by that tag.
	victimID, err := buildImage(ctx, env.cli, "./testdata/hostile", "hostile", victimTag, "LABEL dev.skillbox.test.victim="+randomID()+"\n")
	if err != nil {
		t.Fatal(err)
	}
	removeLater(victimID)

	if err := s.LoadImage(ctx, tarPath, pkgID); err != nil {
		t.Fatal(err)
	}
	ins, err := env.cli.ImageInspect(ctx, victimTag)
	if err != nil {
		t.Fatal(err)
	}
	if ins.ID != victimID {
		t.Fatalf("%s now names %s (the package's image), not the victim %s", victimTag, ins.ID, victimID)
	}
	if loaded, err := env.cli.ImageInspect(ctx, pkgID); err != nil || len(loaded.RepoTags) != 0 {
		t.Fatalf("the package's image was loaded with tags %v (%v)", loaded.RepoTags, err)
	}
}

// rewriteTar copies the tarball at src to dst, passing each entry's name and contents
// through edit (nil drops the entry), then appending extra entries.
func rewriteTar(t *testing.T, src, dst string, edit func(name string, data []byte) []byte, extra ...[2]string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tr, tw := tar.NewReader(in), tar.NewWriter(out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if data = edit(h.Name, data); data == nil {
			continue
		}
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	writeEntries(t, tw, extra)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLoadImageDoesNotRetagSpelledOtherwise: TestLoadImageDoesNotRetag with the tag
// written as `docker load` reads it but the untagging did not (security review): the
// key "repoTags" (docker decodes manifest.json with encoding/json, which matches field
// names in any case), or a second manifest.json named "/manifest.json" (extracted over
// the first). The package's image has its signed ID, so the load succeeds either way.
func TestLoadImageDoesNotRetagSpelledOtherwise(t *testing.T) {
	s := newSandbox(t)
	ctx := context.Background()
	removeLater := func(id string) {
		t.Cleanup(func() {
			_, _ = env.cli.ImageRemove(context.Background(), id, image.RemoveOptions{Force: true, PruneChildren: true})
		})
	}
	for _, tc := range []struct {
		name    string
		tamper  func(t *testing.T, saved, tarPath string)
		refused string // LoadImage fails saying this
	}{
		{"repoTags", func(t *testing.T, saved, tarPath string) {
			rewriteTar(t, saved, tarPath, func(name string, data []byte) []byte {
				if name == "manifest.json" {
					return bytes.ReplaceAll(data, []byte(`"RepoTags"`), []byte(`"repoTags"`))
				}
				return data
			})
		}, ""},
		{"/manifest.json", func(t *testing.T, saved, tarPath string) {
			var manifestJSON []byte
			rewriteTar(t, saved, tarPath, func(name string, data []byte) []byte {
				if name == "manifest.json" {
					manifestJSON = data
				}
				return data
			})
			rewriteTar(t, saved, tarPath, func(_ string, data []byte) []byte { return data }, [2]string{"/manifest.json", string(manifestJSON)})
		}, ""},
		{"through a symbolic link", func(t *testing.T, saved, tarPath string) {
			var manifestJSON []byte
			rewriteTar(t, saved, tarPath, func(name string, data []byte) []byte {
				if name == "manifest.json" {
					manifestJSON = data
				}
				return data
			})
			rewriteTar(t, saved, tarPath, func(_ string, data []byte) []byte { return data },
				[2]string{"here", "->."}, [2]string{"here/manifest.json", string(manifestJSON)})
		}, `entry "here/manifest.json" is written through the symbolic link "here": refused`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			victimTag := fmt.Sprintf("skillbox-test/victim-spelled:%d", os.Getpid())
			pkgID, err := buildImage(ctx, env.cli, "./testdata/hostile", "hostile", victimTag, "LABEL dev.skillbox.test.pkg="+randomID()+"\n")
			if err != nil {
				t.Fatal(err)
			}
			removeLater(pkgID)
			dir := t.TempDir()
			saved := saveImage(t, victimTag, dir)
			if _, err := env.cli.ImageRemove(ctx, pkgID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
				t.Fatal(err)
			}
			tarPath := filepath.Join(dir, "tampered.tar")
			tc.tamper(t, saved, tarPath)
			victimID, err := buildImage(ctx, env.cli, "./testdata/hostile", "hostile", victimTag, "LABEL dev.skillbox.test.victim="+randomID()+"\n")
			if err != nil {
				t.Fatal(err)
			}
			removeLater(victimID)

			err = s.LoadImage(ctx, tarPath, pkgID)
			if tc.refused == "" && err != nil {
				t.Fatal(err)
			}
			if tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)) {
				t.Fatalf("LoadImage = %v, want a refusal saying %q", err, tc.refused)
			}
			ins, err := env.cli.ImageInspect(ctx, victimTag)
			if err != nil {
				t.Fatal(err)
			}
			if ins.ID != victimID {
				t.Fatalf("%s now names %s (the package's image), not the victim %s", victimTag, ins.ID, victimID)
			}
		})
	}
}
