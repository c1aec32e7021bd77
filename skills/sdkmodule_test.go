package skills_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The guest SDK is a module of its own that needs nothing but the standard library: a
// fresh author module that requires it (here resolved from this checkout by a replace,
// offline, as the published skills/sdk/v0.1.0 would be) builds for the guest, and its
// module graph holds the SDK alone, not skillbox and its dependencies.
func TestSDKIsItsOwnModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a wasm module; skipped in -short")
	}
	mod, err := os.ReadFile(filepath.Join("sdk", "go.mod"))
	if err != nil {
		t.Fatalf("skills/sdk has no go.mod: %v", err)
	}
	if !strings.Contains(string(mod), "\nmodule github.com/skillbox-dev/skillbox/skills/sdk\n") {
		t.Fatalf("skills/sdk/go.mod names another module:\n%s", mod)
	}
	if strings.Contains("\n"+string(mod), "\nrequire") {
		t.Fatalf("the SDK requires other modules; authors would download them:\n%s", mod)
	}
	sdk, err := filepath.Abs("sdk")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/skills/demo\n\ngo 1.26\n\nrequire github.com/skillbox-dev/skillbox/skills/sdk v0.1.0\n\n" +
			"replace github.com/skillbox-dev/skillbox/skills/sdk => " + sdk + "\n",
		"main.go": "package main\n\nimport (\n\t\"context\"\n\n\t\"github.com/skillbox-dev/skillbox/skills/sdk\"\n)\n\n" +
			"type In struct{ Name string `json:\"name\"` }\ntype Out struct{ Greeting string `json:\"greeting\"` }\n\n" +
			"func main() { sdk.Run(hello) }\n\nfunc hello(ctx context.Context, in In) (Out, error) {\n" +
			"\t_ = sdk.HTTPClient()\n\treturn Out{Greeting: \"hello \" + in.Name}, nil\n}\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goCmd := func(env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(append(os.Environ(), "GOPROXY=off", "GOFLAGS=-buildvcs=false", "GOWORK=off"), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if mods := strings.Fields(goCmd(nil, "list", "-m", "-f", "{{.Path}}", "all")); len(mods) != 2 || mods[0] != "example.com/skills/demo" ||
		mods[1] != "github.com/skillbox-dev/skillbox/skills/sdk" {
		t.Fatalf("the author's module graph: %q, want the module and the SDK only", mods)
	}
	goCmd([]string{"GOOS=wasip1", "GOARCH=wasm"}, "build", "-o", "module.wasm", ".")
	if st, err := os.Stat(filepath.Join(dir, "module.wasm")); err != nil || st.Size() == 0 {
		t.Fatalf("no module built: %v", err)
	}
}
