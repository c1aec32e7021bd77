package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// installWasmSkill signs and installs the echo module as skill name with extra
// manifest lines, unapproved.
func (o *operatorHome) installWasmSkill(t *testing.T, name, extra string) {
	t.Helper()
	pkg := writeWasmSkill(t, o.work, name, filepath.Join("..", "..", "runtime", "engine", "testdata", "echo.wasm"), extra)
	o.must("pack", pkg)
	o.must("sign", pkg, "--key", filepath.Join(o.work, "release.key"))
	tgz := filepath.Join(o.work, name+".tar.gz")
	o.must("pack", pkg, "-o", tgz)
	o.must("install", tgz)
}

// approve without --grant gives what the manifest asks, but env and secret values need a
// source that only a grant file names: the GRANT section says they are left out instead
// of "exactly what it asks" alone.
func TestApproveWithoutGrantNamesValuesLeftOut(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	op.installWasmSkill(t, "keyed", `capabilities:
  network: [https://api.example.com]
  env: [LANG]
  secrets:
    - PLAIN_KEY
    - name: API_TOKEN
      origins: [https://api.example.com]
`)
	out := op.must("approve", "keyed", "--yes", "--by", "test")
	want := `left out: env LANG, secret PLAIN_KEY, secret API_TOKEN (a value needs a source, which only a --grant file names`
	if !strings.Contains(out, want) {
		t.Errorf("approve without --grant does not say %q:\n%s", want, out)
	}
}
