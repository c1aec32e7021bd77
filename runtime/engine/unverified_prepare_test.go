package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/signing/subject"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

// preparedContainer is a container sandbox whose Prepare (loading image.tar, for the
// real one) takes a while and whose calls echo their input.
type preparedContainer struct{ prepared bool }

func (p *preparedContainer) Prepare(context.Context, isolation.Skill) error {
	time.Sleep(2 * time.Millisecond)
	p.prepared = true
	return nil
}

func (p *preparedContainer) Run(_ context.Context, call isolation.Call) (isolation.Result, error) {
	return isolation.Result{Output: call.Input}, nil
}

func (p *preparedContainer) Close(context.Context) error { return nil }

// The author's run of a container skill does not report loading its image as compile
// time: compileMs is a wasm module's compilation (docs/api.md), and a container has
// none. A wasm module's Prepare still counts (TestRunReportsCompileApart in the CLI).
func TestUnverifiedContainerHasNoCompileTime(t *testing.T) {
	const id = "sha256:" + "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12"
	data := []byte("apiVersion: skillbox/v1\nname: boxed\nversion: 1.0.0\ndescription: A container skill.\n" +
		"sandbox:\n  container:\n    image: image.tar\n    id: " + id + "\n" +
		"input: {type: object}\noutput: {type: object}\n")
	m, err := manifest.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	pkg := &skillpkg.Package{Dir: t.TempDir(), Manifest: m, ManifestBytes: data,
		Code: subject.Subject{Name: "image.tar", SHA256: strings.TrimPrefix(id, "sha256:")}}
	sb := &preparedContainer{}
	author := engine.NewAuthor(map[string]isolation.Sandbox{manifest.KindContainer: sb}, nil)
	res, err := author.InvokeUnverified(context.Background(), engine.UnverifiedRequest{Package: pkg, Input: []byte(`{"a":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !sb.prepared || string(res.Output) != `{"a":1}` {
		t.Fatalf("prepared %v, output %s: want the call prepared and run", sb.prepared, res.Output)
	}
	if res.Usage.Compile != 0 {
		t.Errorf("a container call reports %s of compile time (its image's load)", res.Usage.Compile)
	}
}
