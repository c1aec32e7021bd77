package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runSkillDir makes an unsigned skill directory around a committed test module.
func runSkillDir(t *testing.T, module, extra string) string {
	t.Helper()
	dir := t.TempDir()
	code, err := os.ReadFile(filepath.Join("..", "..", "isolation", "wasm", "testdata", module))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "module.wasm"), code, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(code)
	yaml := `apiVersion: skillbox/v1
name: echo
version: 1.0.0
description: Echo the input.
sandbox:
  wasm:
    module: module.wasm
    sha256: ` + hex.EncodeToString(sum[:]) + `
input:
  type: object
  properties:
    name: {type: string}
  required: [name]
` + extra
	if err := os.WriteFile(filepath.Join(dir, "skill.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runRunCLI runs the CLI and returns exit code, stdout and stderr.
func runRunCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("SKILLBOX_HOME", t.TempDir())
	outF, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	errF, err := os.CreateTemp(t.TempDir(), "err")
	if err != nil {
		t.Fatal(err)
	}
	code := run(append([]string{"skillbox"}, args...), outF, errF)
	out, _ := os.ReadFile(outF.Name())
	errOut, _ := os.ReadFile(errF.Name())
	return code, string(out), string(errOut)
}

func TestRunCommand(t *testing.T) {
	echo := runSkillDir(t, "echo.wasm", "capabilities:\n  files:\n    - path: /data\n      access: read\n")
	loop := runSkillDir(t, "loop.wasm", "limits:\n  timeout: 100ms\n")
	fail := runSkillDir(t, "exit.wasm", "")
	host := t.TempDir()
	inFile := filepath.Join(t.TempDir(), "in.json")
	if err := os.WriteFile(inFile, []byte(`{"name":"file"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // substring
		stderr string // substring of the last stderr line
	}{
		{"echo", []string{"run", echo, "--input", `{"name":"Ada"}`, "--mount", "/data=" + host, "--json"}, 0, `"output":{"name":"Ada"}`, "UNVERIFIED"},
		{"input from file, flags first", []string{"run", "--input", "@" + inFile, "--mount=/data=" + host, echo}, 0, `"name": "file"`, "UNVERIFIED"},
		{"invalid input", []string{"run", echo, "--input", `{"nam":"x"}`, "--mount", "/data=" + host}, 1, "", "invalid input: input.name: missing property (INVALID_INPUT)"},
		{"file capability without mount", []string{"run", echo, "--input", `{"name":"x"}`}, 1, "", "bind it with --mount /data=HOSTDIR"},
		{"mount not asked for", []string{"run", echo, "--input", `{"name":"x"}`, "--mount", "/data=" + host, "--mount", "/etc=/etc"}, 1, "", "asks for no files at /etc"},
		{"no input", []string{"run", echo}, 2, "", "--input is required"}, // a usage error
		{"timeout", []string{"run", loop, "--input", `{"name":"x"}`}, 1, "", "(TIMEOUT)"},
		// The skill's last stderr line is for its caller (and kept out of the audit log).
		{"skill fails", []string{"run", fail, "--input", `{"name":"x"}`}, 1, "", "run echo: skill exited with code 3 after writing 25 bytes to stderr: bad input: no name (SKILL_FAILED)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runRunCLI(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, stderr)
			}
			if !strings.Contains(stdout, tc.stdout) {
				t.Errorf("stdout %q does not contain %q", stdout, tc.stdout)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if last := lines[len(lines)-1]; !strings.Contains(last, tc.stderr) {
				t.Errorf("stderr %q does not end with %q", stderr, tc.stderr)
			}
			if tc.code == 0 {
				var out map[string]any
				if err := json.Unmarshal([]byte(stdout), &out); err != nil {
					t.Fatalf("stdout is not one JSON object: %v", err)
				}
				if w, _ := out["warning"].(string); !strings.Contains(w, "nothing is verified or approved") {
					t.Errorf("warning %q", w)
				}
			}
		})
	}
}

// run DIR runs code changed since the last pack, as it is, and says the digest is
// stale; a name that is neither a directory nor installed writes nothing anywhere.
func TestRunDirStaleAndTypo(t *testing.T) {
	dir := runSkillDir(t, "echo.wasm", "")
	module := filepath.Join(dir, "module.wasm")
	code, err := os.ReadFile(module)
	if err != nil {
		t.Fatal(err)
	}
	// A custom section appended: another module, the same behaviour.
	code = append(code, 0x00, 0x05, 0x03, 'x', 'y', 'z', 0x01)
	if err := os.WriteFile(module, code, 0o644); err != nil {
		t.Fatal(err)
	}
	exit, stdout, stderr := runRunCLI(t, "run", dir, "--input", `{"name":"Ada"}`)
	if exit != 0 || !strings.Contains(stdout, `"name": "Ada"`) {
		t.Fatalf("stale run: exit %d stdout %q stderr %q", exit, stdout, stderr)
	}
	if !strings.Contains(stderr, "STALE: module.wasm changed since skill.yaml recorded its digest (sandbox.wasm.sha256): run skillbox pack before signing") ||
		!strings.Contains(stdout, "STALE") {
		t.Fatalf("stale run does not say so: stderr %q stdout %q", stderr, stdout)
	}

	home := t.TempDir()
	t.Chdir(t.TempDir())
	code2 := run([]string{"skillbox", "run", "helo", "--input", "{}", "--home", home}, os.Stdout, mustTemp(t))
	if code2 == 0 {
		t.Fatal("run of a typo succeeded")
	}
	if ents, _ := os.ReadDir(home); len(ents) != 0 {
		t.Fatalf("run of a typo wrote into the skill home: %v", ents)
	}
	exit, _, stderr = runRunCLI(t, "run", "helo", "--input", "{}")
	if exit == 0 || !strings.Contains(stderr, "run helo: no directory ./helo here and no installed skill helo") {
		t.Fatalf("typo: exit %d %q", exit, stderr)
	}
}

func mustTemp(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "err")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// run DIR takes env and secret values from the author's shell; one that is not set
// there is named with what the call does without it, and one that is set is not.
func TestRunDirNamesUnsetValues(t *testing.T) {
	dir := runSkillDir(t, "echo.wasm", `capabilities:
  network: [http://localhost:8765]
  env: [UXR_TEST_LANG]
  secrets:
    - UXR_TEST_PLAIN
    - name: UXR_TEST_TOKEN
      origins: [http://localhost:8765]
      format: "Bearer {}"
`)
	t.Setenv("UXR_TEST_LANG", "C")
	code, _, stderr := runRunCLI(t, "run", dir, "--input", `{"name":"Ada"}`)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"note: secret UXR_TEST_PLAIN is not set in this shell: the skill runs without it (UXR_TEST_PLAIN=… skillbox run …)",
		"note: secret UXR_TEST_TOKEN is not set in this shell: requests to http://localhost:8765 go without its Authorization header",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "UXR_TEST_LANG") {
		t.Errorf("a set env value is named:\n%s", stderr)
	}
}

// run DIR makes the code ready before the call (so compiling never eats the call's
// budget) and reports that wait as compileMs, apart from wallMs, as the author guide says:
// both in whole milliseconds, as invoke, MCP and the audit log give them (a fraction
// does not decode into an int64). base's TestResultOutputWholeMilliseconds checks the
// values; a module this small may compile in under 1 ms.
func TestRunDirReportsCompileTime(t *testing.T) {
	dir := runSkillDir(t, "echo.wasm", "")
	code, stdout, stderr := runRunCLI(t, "run", dir, "--input", `{"name":"Ada"}`, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var out struct {
		Usage struct {
			WallMs, CompileMs *int64
		}
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("usage is not whole milliseconds: %v\n%s", err, stdout)
	}
	if out.Usage.WallMs == nil || *out.Usage.WallMs < 0 || (out.Usage.CompileMs != nil && *out.Usage.CompileMs < 1) {
		t.Errorf("usage %s: want wallMs, and compileMs only when it is 1 or more", stdout)
	}
}

// jsonFailure is the line `run --json` and `invoke --json` print for a failed call.
type jsonFailure struct {
	Error struct {
		Reason, Message, Field, AuditID, CallID string
	}
	Output json.RawMessage
	Logs   *string
	Usage  *struct {
		WallMs int64 // whole milliseconds, as invoke, MCP and the audit log print it
	}
	Egress  []json.RawMessage
	Warning string
}

// parseFailure reads stdout as exactly one compact JSON line with an error.
func parseFailure(t *testing.T, stdout string) jsonFailure {
	t.Helper()
	var f jsonFailure
	if err := json.Unmarshal([]byte(stdout), &f); err != nil || strings.Count(stdout, "\n") != 1 || !strings.HasSuffix(stdout, "\n") {
		t.Fatalf("stdout is not one JSON line (%v): %q", err, stdout)
	}
	if f.Error.Reason == "" || f.Error.Message == "" {
		t.Fatalf("stdout has no error reason and message: %s", stdout)
	}
	return f
}

// A failed `run DIR --json` prints why on stdout as one JSON line (the reason the
// stderr line carries, and the call's logs and usage when it ran), while stderr and
// the exit code stay what they are without --json.
func TestRunDirJSONFailure(t *testing.T) {
	echo := runSkillDir(t, "echo.wasm", "capabilities:\n  files:\n    - path: /data\n      access: read\n")
	loop := runSkillDir(t, "loop.wasm", "limits:\n  timeout: 100ms\n")
	fail := runSkillDir(t, "exit.wasm", "")
	host := t.TempDir()
	for _, tc := range []struct {
		name, reason, field string
		args                []string
		ran                 bool
		logs                string // substring of logs, when it ran
	}{
		{"invalid input", "INVALID_INPUT", "input.name", []string{"run", echo, "--input", `{"nam":"x"}`, "--mount", "/data=" + host}, false, ""},
		{"file capability without mount", "INVALID_INPUT", "mounts", []string{"run", echo, "--input", `{"name":"x"}`}, false, ""},
		{"timeout", "TIMEOUT", "", []string{"run", loop, "--input", `{"name":"x"}`}, true, ""},
		{"skill fails", "SKILL_FAILED", "", []string{"run", fail, "--input", `{"name":"x"}`}, true, "bad input: no name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plainCode, _, plainErr := runRunCLI(t, tc.args...)
			code, stdout, stderr := runRunCLI(t, append(tc.args, "--json")...)
			if code != 1 || plainCode != 1 {
				t.Fatalf("exit %d (without --json %d), want 1; stderr %q", code, plainCode, stderr)
			}
			if stderr != plainErr {
				t.Errorf("stderr with --json %q, without %q: want the same", stderr, plainErr)
			}
			f := parseFailure(t, stdout)
			if tc.name != "file capability without mount" { // the line says how to bind it, in --mount's words
				checkCallLine(t, stderr, "run", "echo", f)
			} else if !strings.HasSuffix(strings.TrimSpace(stderr), "(INVALID_INPUT)") {
				t.Errorf("stderr %q: want it to end naming the reason (INVALID_INPUT)", stderr)
			}
			if f.Error.Reason != tc.reason || f.Error.Field != tc.field {
				t.Errorf("error %+v: want reason %s field %q", f.Error, tc.reason, tc.field)
			}
			if !strings.Contains(f.Warning, "nothing is verified or approved") {
				t.Errorf("warning %q", f.Warning)
			}
			// A call that ran has output null; one refused before it ran, none.
			if want := map[bool]string{true: "null", false: ""}[tc.ran]; string(f.Output) != want {
				t.Errorf("output %q, want %q", f.Output, want)
			}
			if ran := f.Usage != nil; ran != tc.ran || (ran && (f.Logs == nil || f.Egress == nil)) {
				t.Errorf("usage %+v logs %v egress %v: want them only for a call that ran (%v):\n%s", f.Usage, f.Logs, f.Egress, tc.ran, stdout)
			}
			if tc.logs != "" && (f.Logs == nil || !strings.Contains(*f.Logs, tc.logs)) {
				t.Errorf("logs do not contain %q:\n%s", tc.logs, stdout)
			}
			if tc.reason == "SKILL_FAILED" && !strings.Contains(f.Error.Message, "bad input: no name") {
				t.Errorf("message %q lacks the skill's own last words", f.Error.Message)
			}
		})
	}
}
