package container

import (
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
