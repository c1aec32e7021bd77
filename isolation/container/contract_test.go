package container

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/errdefs"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/egress"
	"github.com/skillbox-dev/skillbox/isolation/sandboxtest"
	"github.com/skillbox-dev/skillbox/manifest"
)

// TestContract runs the sandbox contract suite against the container sandbox on the
// real engine (never skipped under SKILLBOX_REQUIRE_DOCKER=1): one sandbox with an
// egress proxy and no warm pool, and the suite's skill program in a FROM scratch
// image.
func TestContract(t *testing.T) {
	needEngine(t)
	id := buildContractImage(t, "")
	sandboxtest.Run(t, &contractFactory{id: id})
}

// buildContractImage builds the suite's skill into an image, removed when t ends;
// extra goes into its Dockerfile.
func buildContractImage(t *testing.T, extra string) string {
	t.Helper()
	tag := fmt.Sprintf("skillbox-test/contract:%d-%s", os.Getpid(), randomID())
	id, err := buildImage(context.Background(), env.cli, sandboxtest.SkillDir(t), "contract", tag, extra)
	if err != nil {
		t.Fatalf("build the contract image: %v", err)
	}
	t.Cleanup(func() { removeImage(t, id) })
	return id
}

// removeImage removes an image that may be gone already.
func removeImage(t *testing.T, id string) {
	_, err := env.cli.ImageRemove(context.Background(), id, image.RemoveOptions{Force: true, PruneChildren: true})
	if err != nil && !errdefs.IsNotFound(err) {
		t.Errorf("remove image %s: %v", id, err)
	}
}

type contractFactory struct {
	id string
	sb *Sandbox
}

func (f *contractFactory) New(t *testing.T) isolation.Sandbox {
	proxy := egress.NewProxy()
	t.Cleanup(func() { proxy.Close() })
	opts := []Option{WithEgressProxy(proxy)}
	if env.noFirewall != nil {
		opts = append(opts, WithoutHostFirewallUnsafe())
	}
	sb, err := New(context.Background(), withTestRuntime(opts)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.sb = sb
	return sb
}

func (f *contractFactory) skill(id, dir string) isolation.Skill {
	return isolation.Skill{
		Manifest: &manifest.Manifest{
			APIVersion: manifest.APIVersion, Name: "contract", Version: "0.0.1",
			Sandbox: manifest.Sandbox{Container: &manifest.ContainerSandbox{Image: "image.tar", ID: id}},
		},
		Dir:    dir,
		Digest: id,
	}
}

func (f *contractFactory) Skill(t *testing.T, _ sandboxtest.Behaviour) isolation.Skill {
	return f.skill(f.id, "")
}

// Unprepared is an image of its own, saved to the package directory and removed from
// the engine, so the call must load it.
func (f *contractFactory) Unprepared(t *testing.T) isolation.Skill {
	id := buildContractImage(t, "LABEL dev.skillbox.test.fresh="+randomID()+"\n")
	dir := t.TempDir()
	saveImage(t, id, dir)
	removeImage(t, id)
	return f.skill(id, dir)
}

// Serve serves on the host's loopback: the egress proxy, on the host, dials it.
func (f *contractFactory) Serve(t *testing.T, h http.Handler) string {
	return sandboxtest.ServeLoopback(t, h)
}

// Leftovers lists the sandbox's containers; once it is closed, its networks too (a
// skill's network is kept for its next call until then).
func (f *contractFactory) Leftovers(t *testing.T, closed bool) string {
	label := LabelInstance + "=" + f.sb.Instance()
	if closed {
		return leftovers(context.Background(), env.cli, label)
	}
	cs, err := env.cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", label))})
	if err != nil {
		return err.Error()
	}
	var left []string
	for _, c := range cs {
		left = append(left, "container "+c.ID[:12]+" "+c.State)
	}
	return strings.Join(left, ", ")
}

// StopTime: killing and removing a container takes the engine a second or so; the
// rest is slack for a loaded machine.
func (f *contractFactory) StopTime() time.Duration { return 15 * time.Second }
