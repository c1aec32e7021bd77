package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/review"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

// TestAuthorWorkflow drives the real binary through an author's inner loop: init, the
// scaffold's own tests, a real wasip1 build, pack, review, and the failures an author
// meets first.
func TestAuthorWorkflow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and a wasm module")
	}
	bin := buildCLI(t)
	work := t.TempDir()

	// skillbox runs the CLI in work and returns stdout, stderr and the exit code.
	skillbox := func(t *testing.T, args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = work
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), code
	}
	// goTool runs the go command in dir with extra env; no module may be fetched.
	goTool := func(t *testing.T, dir string, env []string, args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(append(os.Environ(), "GOPROXY=off", "GOFLAGS=-buildvcs=false"), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	failsWith := func(t *testing.T, want string, args ...string) {
		t.Helper()
		stdout, stderr, code := skillbox(t, args...)
		if code == 0 {
			t.Fatalf("skillbox %v succeeded:\n%s", args, stdout)
		}
		if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
			t.Errorf("skillbox %v: want one line on stderr, got %q", args, stderr)
		}
		if !strings.Contains(stderr, want) {
			t.Errorf("skillbox %v: stderr %q lacks %q", args, stderr, want)
		}
	}

	t.Run("wasm", func(t *testing.T) {
		if _, stderr, code := skillbox(t, "init", "demo"); code != 0 {
			t.Fatalf("init: %s", stderr)
		}
		dir := filepath.Join(work, "demo")
		for _, f := range []string{"skill.yaml", "main.go", "main_test.go", "go.mod", "Makefile", "README.md"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("scaffold lacks %s", f)
			}
		}
		mk, _ := os.ReadFile(filepath.Join(dir, "Makefile"))
		if !strings.Contains(string(mk), "GOOS=wasip1 GOARCH=wasm go build -o module.wasm .") {
			t.Errorf("Makefile:\n%s", mk)
		}
		// Before pack, the only problem is the digest pack fills in.
		_, err := manifest.Parse(authorRead(t, filepath.Join(dir, "skill.yaml")))
		if err == nil || err.Error() != "sandbox.wasm.sha256: empty (run skillbox pack to fill it in)" {
			t.Errorf("fresh manifest: %v", err)
		}
		failsWith(t, "skill.yaml: sandbox.wasm.sha256: empty (run skillbox pack to fill it in)", "review", "demo")

		goTool(t, dir, nil, "test", "./...")
		goTool(t, dir, []string{"GOOS=wasip1", "GOARCH=wasm"}, "build", "-o", "module.wasm", ".")

		archive := filepath.Join(work, "demo.tar.gz")
		stdout, stderr, code := skillbox(t, "pack", "demo", "-o", archive)
		if code != 0 {
			t.Fatalf("pack: %s", stderr)
		}
		sum := sha256.Sum256(authorRead(t, filepath.Join(dir, "module.wasm")))
		wantSum := hex.EncodeToString(sum[:])
		m, data, err := manifest.LoadFile(filepath.Join(dir, "skill.yaml"))
		if err != nil {
			t.Fatalf("packed manifest: %v", err)
		}
		if m.Sandbox.Wasm.SHA256 != wantSum {
			t.Errorf("pack wrote %s, module.wasm is %s", m.Sandbox.Wasm.SHA256, wantSum)
		}
		if !strings.Contains(string(data), "# filled in by: skillbox pack .") {
			t.Error("pack dropped the author's comments")
		}
		wantOut := "skill.yaml " + skillpkg.ManifestDigest(data) + "\nmodule.wasm sha256:" + wantSum + "\nwrote " + archive + "\n"
		if stdout != wantOut {
			t.Errorf("pack printed %q, want %q", stdout, wantOut)
		}
		extracted := filepath.Join(work, "extracted")
		if err := skillpkg.Extract(archive, extracted); err != nil {
			t.Fatal(err)
		}
		if p, err := skillpkg.Load(extracted); err != nil || p.Code.SHA256 != wantSum {
			t.Errorf("archive does not hold the package: %v", err)
		}

		stdout, stderr, code = skillbox(t, "review", "demo")
		if code != 0 {
			t.Fatalf("review: %s", stderr)
		}
		for _, want := range []string{
			"demo 0.1.0: Greets someone by name.",
			"signer:   unsigned",
			"manifest: " + skillpkg.ManifestDigest(data),
			"code:     wasm module module.wasm sha256:" + wantSum,
			"no network, files, environment or secrets",
			"Limits per call: timeout 5s, memory 32MiB, output 64KiB",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("review lacks %q:\n%s", want, stdout)
			}
		}
		stdout, stderr, code = skillbox(t, "review", "demo", "--json")
		if code != 0 {
			t.Fatalf("review --json: %s", stderr)
		}
		var r review.Report
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("review --json: %v\n%s", err, stdout)
		}
		if r.Name != "demo" || r.Signer != "unsigned" || r.CodeDigest != "sha256:"+wantSum ||
			r.ManifestDigest != skillpkg.ManifestDigest(data) || len(r.Network) != 0 || len(r.Limits) != 3 {
			t.Errorf("review --json: %+v", r)
		}

		// A changed module no longer matches: review refuses, pack fixes it.
		if err := os.WriteFile(filepath.Join(dir, "module.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
			t.Fatal(err)
		}
		failsWith(t, "does not match sandbox.wasm.sha256", "review", "demo")

		// A broken manifest: every problem, with its field path, on one line.
		broken := strings.Replace(string(authorRead(t, filepath.Join(dir, "skill.yaml"))), "timeout: 5s", "timeout: 5 s\n  disk: 1GiB", 1)
		if err := os.WriteFile(filepath.Join(dir, "skill.yaml"), []byte(broken), 0o644); err != nil {
			t.Fatal(err)
		}
		failsWith(t, `skill.yaml: limits.disk: unknown field (allowed: timeout, memory, output, cpu, requests); limits.timeout: "5 s": want a duration such as 10s, 1m30s or 500ms`, "pack", "demo")
		if got := string(authorRead(t, filepath.Join(dir, "skill.yaml"))); got != broken {
			t.Error("a failed pack rewrote skill.yaml")
		}
	})

	t.Run("errors", func(t *testing.T) {
		failsWith(t, `init: "Bad_Name": a skill name must match`, "init", "Bad_Name")
		failsWith(t, "init: want exactly one NAME", "init")
		if _, _, code := skillbox(t, "init", "twice"); code != 0 {
			t.Fatal("init twice")
		}
		failsWith(t, "init: twice already exists", "init", "twice")
		failsWith(t, "review: nowhere: no such package directory, and no installed skill by that name", "review", "nowhere")
		failsWith(t, "pack: unknown flag --bogus (see skillbox pack --help)", "pack", "twice", "--bogus")
	})

	t.Run("container", func(t *testing.T) {
		parent := filepath.Join(work, "skills")
		if err := os.Mkdir(parent, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, stderr, code := skillbox(t, "init", "tool", "--container", "--dir", parent); code != 0 {
			t.Fatalf("init --container: %s", stderr)
		}
		dir := filepath.Join(parent, "tool")
		df := string(authorRead(t, filepath.Join(dir, "Dockerfile")))
		for _, want := range []string{"FROM scratch", "USER 65534:65534", `ENTRYPOINT ["/skill"]`} {
			if !strings.Contains(df, want) {
				t.Errorf("Dockerfile lacks %q:\n%s", want, df)
			}
		}
		mk := string(authorRead(t, filepath.Join(dir, "Makefile")))
		for _, want := range []string{"CGO_ENABLED=0 GOOS=linux go build -o skill .", "docker save -o image.tar tool:dev"} {
			if !strings.Contains(mk, want) {
				t.Errorf("Makefile lacks %q:\n%s", want, mk)
			}
		}
		_, err := manifest.Parse(authorRead(t, filepath.Join(dir, "skill.yaml")))
		if err == nil || err.Error() != "sandbox.container.id: empty (run skillbox pack to fill it in)" {
			t.Errorf("fresh container manifest: %v", err)
		}
		goTool(t, dir, nil, "test", "./...")
		goTool(t, dir, []string{"CGO_ENABLED=0", "GOOS=linux"}, "build", "-o", "skill", ".")
		cmd := exec.Command(filepath.Join(dir, "skill"))
		cmd.Stdin = strings.NewReader(`{"name":"Ada"}`)
		out, err := cmd.Output()
		if err != nil || string(out) != `{"greeting":"Hello, Ada!"}`+"\n" {
			t.Errorf("built skill: %q, %v", out, err)
		}
		failsWith(t, "image.tar", "pack", dir)
	})

	t.Run("reactor", func(t *testing.T) {
		if _, stderr, code := skillbox(t, "init", "rx", "--reactor"); code != 0 {
			t.Fatalf("init --reactor: %s", stderr)
		}
		failsWith(t, "--reactor is a kind of wasm skill", "init", "rx2", "--reactor", "--container")
		dir := filepath.Join(work, "rx")
		mk := string(authorRead(t, filepath.Join(dir, "Makefile")))
		if !strings.Contains(mk, "GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o module.wasm .") {
			t.Errorf("Makefile:\n%s", mk)
		}
		goTool(t, dir, nil, "test", "./...")
		goTool(t, dir, []string{"GOOS=wasip1", "GOARCH=wasm"}, "build", "-buildmode=c-shared", "-o", "module.wasm", ".")
		if _, stderr, code := skillbox(t, "pack", "rx"); code != 0 {
			t.Fatalf("pack: %s", stderr)
		}
		stdout, stderr, code := skillbox(t, "review", "rx")
		if code != 0 || !strings.Contains(stdout, "kind:     reactor: initialised once, reset to that state after every call") {
			t.Errorf("review: %s%s", stdout, stderr)
		}
		stdout, stderr, code = skillbox(t, "run", "rx", "--input", `{"name":"Ada"}`, "--json")
		if code != 0 || !strings.Contains(stdout, `"greeting":"Hello, Ada!"`) {
			t.Fatalf("run: %s%s", stdout, stderr)
		}
		stdout, _, code = skillbox(t, "run", "rx", "--input", `{"name":""}`)
		if code == 0 {
			t.Errorf("a failing reactor call succeeded: %s", stdout)
		}
	})
}

func authorRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
