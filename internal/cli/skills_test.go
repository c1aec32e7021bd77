package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serverAnswers reports whether a server answers `skills` (not the offline view).
func serverAnswers(t *testing.T, bin string, env []string) bool {
	r := signRunCLI(t, bin, env, "skills")
	return r.code == 0 && !strings.Contains(r.stderr, "offline view")
}

// `skills` names a newer installed version that waits for approval, from the server
// and, with no server answering, from the skill home (saying it is the offline view).
func TestSkillsShowsPendingVersionAndOfflineView(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	run := func(args ...string) signCLIResult { t.Helper(); return signRunCLI(t, bin, op.env, args...) }

	r := run("skills")
	if r.code != 0 || !strings.Contains(r.stderr, "no server answers; the offline view from the skill home") ||
		!strings.Contains(r.stdout, "echo") || strings.Contains(r.stdout, "waits for approval") {
		t.Fatalf("offline skills: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// A server named explicitly that does not answer is an error, not the home's view.
	if r := run("skills", "--server", "unix://"+filepath.Join(op.work, "none.sock")); r.code == 0 || !strings.Contains(r.stderr, "no server answers") {
		t.Fatalf("skills --server (down): exit %d, %q", r.code, r.stderr)
	}

	pkg := writeWasmSkill(t, filepath.Join(op.work, "v2"), "echo", filepath.Join("..", "..", "runtime", "engine", "testdata", "echo.wasm"), "")
	y := filepath.Join(pkg, "skill.yaml")
	b, _ := os.ReadFile(y)
	if err := os.WriteFile(y, []byte(strings.Replace(string(b), "version: 1.0.0", "version: 1.1.0", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	op.must("pack", pkg)
	op.must("sign", pkg, "--key", filepath.Join(op.work, "release.key"))
	op.must("install", pkg)

	want := "echo 1.1.0 is installed and waits for approval (echo 1.0.0 serves): skillbox review echo, then skillbox approve echo"
	if r := run("skills"); !strings.Contains(r.stdout, want) || !strings.Contains(r.stderr, "offline view") {
		t.Fatalf("offline skills after installing 1.1.0: %q %q", r.stdout, r.stderr)
	}

	srv, srvLog := startServer(t, op, "--no-container")
	defer stopServer(t, srv, srvLog)
	r = run("skills")
	if r.code != 0 || !strings.Contains(r.stdout, want) || strings.Contains(r.stderr, "offline") {
		t.Fatalf("skills from the server: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	var list []struct {
		Name, Version, PendingVersion string
	}
	if err := json.Unmarshal([]byte(op.must("skills", "--json")), &list); err != nil || len(list) != 1 ||
		list[0].Version != "1.0.0" || list[0].PendingVersion != "1.1.0" {
		t.Fatalf("skills --json: %+v %v", list, err)
	}
	op.must("approve", "echo", "--yes", "--by", "test")
	if out := op.must("skills"); strings.Contains(out, "waits for approval") || !strings.Contains(out, "1.1.0") {
		t.Fatalf("after approving 1.1.0: %q", out)
	}
}
