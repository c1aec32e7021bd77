package hostlite

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/skillbox-dev/skillbox/runtime/runner"
)

// The author's path over the wasm sandbox, as the lean skillbox runs it: a real call
// of a real module, its input checked against the schema, the compile cache in the
// home.
func TestOpenWasmAuthor(t *testing.T) {
	dir := t.TempDir()
	code, err := os.ReadFile(filepath.Join("..", "engine", "testdata", "echo.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "module.wasm"), code, 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf("apiVersion: skillbox/v1\nname: echo\nversion: 1.0.0\ndescription: Echo.\n"+
		"sandbox: {wasm: {module: module.wasm, sha256: %x}}\n"+
		"input: {type: object, properties: {name: {type: string}}, required: [name]}\n", sha256.Sum256(code))
	if err := os.WriteFile(filepath.Join(dir, "skill.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	a, err := OpenWasmAuthor(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	res, err := a.InvokeUnverified(context.Background(), runner.UnverifiedRequest{Dir: dir, Input: []byte(`{"name":"Ada"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Output) != `{"name":"Ada"}` {
		t.Errorf("output %s", res.Output)
	}
	if entries, err := os.ReadDir(CacheDir(root)); err != nil || len(entries) == 0 {
		t.Errorf("nothing compiled into the home's cache: %v", err)
	}
	_, err = a.InvokeUnverified(context.Background(), runner.UnverifiedRequest{Dir: dir, Input: []byte(`{"name":7}`)})
	if runner.ReasonOf(err) != runner.ReasonInvalidInput {
		t.Fatalf("invalid input: %v (%s)", err, runner.ReasonOf(err))
	}
	if want := "invalid input: input.name: want a string, got a number"; err.Error()[:len(want)] != want {
		t.Errorf("invalid input: %q, want it to start with %q", err, want)
	}
}

// A schema check is remembered in the home's cache, and only there.
func TestSchemaChecks(t *testing.T) {
	root := t.TempDir()
	s := NewSchemaChecks(root)
	sum := sha256.Sum256([]byte("input\x00{}"))
	if s.Known(sum) {
		t.Fatal("known before it passed")
	}
	s.Passed(sum)
	if !NewSchemaChecks(root).Known(sum) {
		t.Fatal("not known after it passed")
	}
	if NewSchemaChecks(t.TempDir()).Known(sum) {
		t.Fatal("known in another home")
	}
	if fi, err := os.Stat(filepath.Join(CacheDir(root), "schemas")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache/schemas: %v %v", fi, err)
	}
}
