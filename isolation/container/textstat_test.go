package container

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// TestTextstatSkill builds the first-party container skill skills/textstat with its
// own Dockerfile, packs it as image.tar next to its manifest and runs it through the
// sandbox with the manifest's limits.
func TestTextstatSkill(t *testing.T) {
	s := newSandbox(t)
	ctx := context.Background()
	dockerfile, err := os.ReadFile("../../skills/textstat/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("skillbox-test/textstat:%d", os.Getpid())
	id, err := buildImageWith(ctx, env.cli, "../../skills/textstat", "textstat", tag, string(dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = env.cli.ImageRemove(context.Background(), id, image.RemoveOptions{Force: true, PruneChildren: true})
	})
	m, _, err := manifest.LoadFile("../../skills/textstat/skill.yaml")
	if err != nil {
		t.Fatalf("skill.yaml: %v", err)
	}
	m.Sandbox.Container.ID = id // what `skillbox pack` writes
	dir := t.TempDir()
	saveImage(t, tag, dir)
	if _, err := env.cli.ImageRemove(ctx, id, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
		t.Fatal(err)
	}
	input := []byte(`{"text":"The quick brown fox. The lazy dog!\nThe end","top":2,"skip_stopwords":false}`)
	if err := m.ValidateInput(input); err != nil {
		t.Fatalf("input: %v", err)
	}
	call := isolation.Call{
		ID:    "textstat-" + randomID(),
		Skill: isolation.Skill{Manifest: m, Dir: dir, Digest: id},
		Input: input,
		Limits: isolation.Limits{Timeout: time.Duration(m.Limits.Timeout), Memory: int64(m.Limits.Memory),
			Output: int64(m.Limits.Output), CPU: m.Limits.CPU},
	}
	res, err := s.Run(ctx, call)
	if err != nil {
		t.Fatalf("Run: %v; logs %s", err, res.Logs)
	}
	if err := m.ValidateOutput(res.Output); err != nil {
		t.Fatalf("output %s does not match the schema: %v", res.Output, err)
	}
	out := decode(t, res.Output)
	if out["words"] != 9.0 || out["sentences"] != 3.0 || out["lines"] != 2.0 {
		t.Errorf("stats = %s", res.Output)
	}
	top := out["top_words"].([]any)
	if len(top) != 2 || top[0].(map[string]any)["word"] != "the" || top[0].(map[string]any)["count"] != 3.0 {
		t.Errorf("top words = %v", top)
	}
	// A bad input fails as the skill's own failure.
	call.ID, call.Input = "textstat-"+randomID(), []byte(`{"text":"x","top":1000}`)
	if _, err := s.Run(ctx, call); isolation.ReasonOf(err) != isolation.ReasonSkillFailed {
		t.Errorf("bad input = %v, want SKILL_FAILED", err)
	}
}
