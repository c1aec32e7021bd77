package container

import (
	"context"
	"testing"

	"github.com/docker/docker/api/types/image"
)

// TestImageVolumeIsReadOnly: an image that declares a VOLUME gets no writable place
// beyond /tmp and its grants. Docker backs an image's VOLUME with an anonymous volume on
// its own disk, which a read-only root does not cover: the skill could write there
// without bound (host disk, not its memory), before its call too when warm (security
// review secegress).
func TestImageVolumeIsReadOnly(t *testing.T) {
	s := newSandbox(t, WithWarmPool(1))
	ctx := context.Background()
	// /data is the skill user's in the image, so only the mount can refuse a write.
	id, err := buildImage(ctx, env.cli, "./testdata/hostile", "hostile", "skillbox-test/volume:"+randomID(),
		"COPY --chown=65534:65534 hostile /data/\nVOLUME /data\nVOLUME /tmp\n")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = env.cli.ImageRemove(context.Background(), id, image.RemoveOptions{Force: true, PruneChildren: true})
	})
	for _, warm := range []bool{false, true} {
		call := hostileCall(`{"mode":"write","path":"/data/x"}`)
		call.Skill.Digest, call.Skill.Manifest.Sandbox.Container.ID = id, id
		if warm {
			if err := s.Prewarm(ctx, call); err != nil {
				t.Fatalf("Prewarm: %v", err)
			}
		}
		res, err := s.Run(ctx, call)
		if err != nil {
			t.Fatalf("warm=%v Run: %v; logs %q", warm, err, tail(res.Logs, 300))
		}
		if e, _ := decode(t, res.Output)["error"].(string); e == "" {
			t.Errorf("warm=%v: the skill wrote into its image's VOLUME /data", warm)
		}
		// /tmp stays the writable tmpfs it always is, VOLUME or not.
		call.Input = []byte(`{"mode":"write","path":"/tmp/x"}`)
		res, err = s.Run(ctx, call)
		if err != nil {
			t.Fatalf("warm=%v Run: %v; logs %q", warm, err, tail(res.Logs, 300))
		}
		if e, _ := decode(t, res.Output)["error"].(string); e != "" {
			t.Errorf("warm=%v: /tmp of an image declaring VOLUME /tmp: %s", warm, e)
		}
	}
}
