package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An upgrade is reviewed against what the operator granted, not what the old version
// asked, under one heading; API changes for agents show; an older version says so;
// approve does not open with "NOT APPROVED".
func TestUpgradeReviewAgainstTheGrant(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	echo := filepath.Join("..", "..", "runtime", "engine", "testdata", "echo.wasm")
	ship := func(version, description, input string) {
		t.Helper()
		dir := filepath.Join(op.work, "fetcher-"+version)
		pkg := writeWasmSkill(t, dir, "fetcher", echo, "")
		manifest := "apiVersion: skillbox/v1\nname: fetcher\nversion: " + version + "\ndescription: " + description + "\n" +
			"sandbox:\n  wasm:\n    module: module.wasm\n    sha256: \"\"\ninput: " + input + "\noutput: {type: object}\n" +
			"capabilities:\n  network: [\"https://a.example\", \"https://b.example\"]\n"
		if err := os.WriteFile(filepath.Join(pkg, "skill.yaml"), []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
		op.must("pack", pkg)
		op.must("sign", pkg, "--key", filepath.Join(op.work, "release.key"))
		archive := filepath.Join(op.work, "fetcher-"+version+".tar.gz")
		op.must("pack", pkg, "-o", archive)
		op.must("install", archive)
	}

	ship("1.0.0", "Fetch a page.", "{type: object}")
	grant := filepath.Join(op.work, "grant.yaml")
	if err := os.WriteFile(grant, []byte("network: [\"https://a.example\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := op.must("approve", "fetcher", "--grant", grant, "--yes", "--by", "alice")
	if first := strings.SplitN(out, "\n", 2)[0]; !strings.HasPrefix(first, "FIRST APPROVAL of fetcher") {
		t.Fatalf("approve opens with %q", first)
	}

	// 1.1.0 asks what 1.0.0 asked, but b.example was left out of the grant: it is new.
	ship("1.1.0", "Fetch a page and summarise it.", "{type: object, properties: {url: {type: string}}, required: [url]}")
	out = op.must("review", "fetcher")
	for _, want := range []string{
		"NEW VERSION 1.1.0 is not approved (approved: 1.0.0); compared with what 1.0.0 was granted:",
		"  + connect to https://b.example",
		`  ~ description (what agents read to choose the tool): "Fetch a page and summarise it." (was "Fetch a page.")`,
		"  ~ input schema changed: agents must send other arguments",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("review of 1.1.0 lacks %q:\n%s", want, out)
		}
	}
	// One heading: the changes follow it at once, not under a second one.
	if !strings.Contains(out, "compared with what 1.0.0 was granted:\n  + connect to https://b.example\n") || strings.Contains(out, "Changes since") {
		t.Errorf("review of 1.1.0 does not list the changes right under its one heading:\n%s", out)
	}
	if strings.Contains(out, "connect to https://a.example\n") && strings.Contains(out, "+ connect to https://a.example") {
		t.Errorf("a.example was granted; it is not new:\n%s", out)
	}
	if strings.Contains(out, "output schema changed") {
		t.Errorf("the output schema did not change:\n%s", out)
	}

	ship("0.9.0", "Fetch a page.", "{type: object}")
	out = op.must("review", "fetcher", "--pin", "0.9.0")
	if !strings.Contains(out, "OLDER VERSION 0.9.0 is not approved (approved: 1.0.0)") {
		t.Errorf("review of an older version:\n%s", out)
	}
}
