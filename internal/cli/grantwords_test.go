package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// approve shows the grant as it will be: no cpu for a wasm skill (it has no CPU
// budget), one oversight line, and what the grant left out of the manifest's ask.
func TestApproveShowsWhatWasLeftOut(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	echo := filepath.Join("..", "..", "runtime", "engine", "testdata", "echo.wasm")
	pkg := writeWasmSkill(t, op.work, "asker", echo, "capabilities:\n"+
		"  network: [\"https://a.example\", \"https://b.example\"]\n  env: [REGION]\n  secrets: [API_TOKEN]\n")
	op.must("pack", pkg)
	op.must("sign", pkg, "--key", filepath.Join(op.work, "release.key"))
	op.must("install", pkg)

	grant := filepath.Join(op.work, "grant.yaml")
	if err := os.WriteFile(grant, []byte("network: [\"https://a.example\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := op.must("approve", "asker", "--grant", grant, "--yes", "--by", "alice")
	for _, want := range []string{
		"  network: https://a.example\n",
		"  left out: network https://b.example, env REGION, secret API_TOKEN\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("approve lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "cpu") {
		t.Errorf("the grant of a wasm skill shows a cpu budget:\n%s", out)
	}
	if n := strings.Count(out, "oversight:"); n != 1 {
		t.Errorf("oversight shown %d times:\n%s", n, out)
	}

	// Granting everything asked leaves nothing out.
	if err := os.WriteFile(grant, []byte("network: [\"https://a.example\", \"https://b.example\"]\nenv: {REGION: eu}\nsecrets: {API_TOKEN: \"env:TOK\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = op.must("approve", "asker", "--grant", grant, "--yes", "--by", "alice")
	if strings.Contains(out, "left out") {
		t.Errorf("a full grant says something was left out:\n%s", out)
	}
}
