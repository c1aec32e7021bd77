package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
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

// The skills table fits 80 columns ($COLUMNS when set) for a name of 27 characters: one
// STATE column (approved, unapproved, disabled) and a long description cut with "…"
// (skills --json has it whole); names are never cut.
func TestSkillsTableFitsTheTerminal(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	const name = "quarterly-report-summariser"
	const desc = "Summarise the quarterly financial report of a company into a short briefing for the accounting team, with the key figures."
	pkg := writeWasmSkill(t, op.work, name, filepath.Join("..", "..", "runtime", "engine", "testdata", "echo.wasm"), "")
	y := filepath.Join(pkg, "skill.yaml")
	b, _ := os.ReadFile(y)
	if err := os.WriteFile(y, []byte(strings.Replace(string(b), "description: A test skill.", "description: "+desc, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	op.must("pack", pkg)
	op.must("sign", pkg, "--key", filepath.Join(op.work, "release.key"))
	op.must("install", pkg)

	for _, width := range []int{80, 100} {
		r := signRunCLI(t, bin, append(append([]string{}, op.env...), "COLUMNS="+strconv.Itoa(width)), "skills")
		if r.code != 0 {
			t.Fatalf("skills: exit %d %q", r.code, r.stderr)
		}
		for _, line := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
			if n := utf8.RuneCountInString(line); n > width {
				t.Errorf("COLUMNS=%d: a line of %d columns:\n%s", width, n, r.stdout)
			}
		}
		if !regexp.MustCompile(`(?m)^` + name + `\s+1\.0\.0\s+wasm\s+unapproved\s+Summarise the quart[^\n]*…$`).MatchString(r.stdout) {
			t.Errorf("COLUMNS=%d: the row does not show the name whole and the description cut:\n%s", width, r.stdout)
		}
	}
	if out := op.must("skills", "--json"); !strings.Contains(out, desc) {
		t.Errorf("skills --json does not have the whole description:\n%s", out)
	}
}
