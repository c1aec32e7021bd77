package cli

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// `invoke --json` prints what `run --json` prints: one compact JSON line for a call
// that answered, and for one that failed its reason, message and audit id (the ones
// the stderr line names), with stderr and the exit code as without --json. `run NAME
// --json` says why a call failed the same way.
func TestInvokeAndRunNameJSON(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	run := func(args ...string) signCLIResult { t.Helper(); return signRunCLI(t, bin, op.env, args...) }
	// failed runs args with and without --json and returns the parsed line, after
	// checking that --json changed nothing but stdout.
	failed := func(reason string, args ...string) (jsonFailure, string) {
		t.Helper()
		plain, r := run(args...), run(append(args, "--json")...)
		// Each call is recorded anew: only the audit id may differ.
		audit := regexp.MustCompile(`audit [0-9a-zA-Z]+`)
		if r.code == 0 || r.code != plain.code || audit.ReplaceAllString(r.stderr, "audit N") != audit.ReplaceAllString(plain.stderr, "audit N") {
			t.Fatalf("%s --json: exit %d, stderr %q; without --json exit %d, stderr %q: want a failure, alike",
				strings.Join(args, " "), r.code, r.stderr, plain.code, plain.stderr)
		}
		f := parseFailure(t, r.stdout)
		if f.Error.Reason != reason {
			t.Errorf("%s --json: reason %q, want %s: %s", strings.Join(args, " "), f.Error.Reason, reason, r.stdout)
		}
		if f.Error.AuditID != "" && !strings.Contains(r.stderr, "audit "+f.Error.AuditID) {
			t.Errorf("%s --json: auditId %s is not the one the stderr line names: %q", strings.Join(args, " "), f.Error.AuditID, r.stderr)
		}
		checkCallLine(t, r.stderr, args[0], args[1], f)
		return f, r.stderr
	}

	// run NAME: refused by the engine, recorded in the audit log.
	if f, _ := failed("INVALID_INPUT", "run", "echo", "--input", "[]"); f.Error.AuditID == "" || f.Usage != nil {
		t.Errorf("run NAME --json of invalid input: %+v: want an audit id and no usage (it never ran)", f)
	}
	// A skill that ran and failed: its logs and usage come with the reason, with and
	// without --json, for run NAME and (below) invoke alike.
	pkg := writeWasmSkill(t, op.work, "errecho", filepath.Join("..", "..", "runtime", "engine", "testdata", "stdinerr.wasm"), "")
	op.must("pack", pkg)
	op.must("sign", pkg, "--key", filepath.Join(op.work, "release.key"))
	op.must("install", pkg)
	op.must("approve", "errecho", "--yes", "--by", "test")
	const badInput = `{"in":"bad input: no name"}`
	ran := func(args ...string) {
		t.Helper()
		f, _ := failed("SKILL_FAILED", args...)
		if f.Logs == nil || *f.Logs != badInput || f.Usage == nil || f.Output == nil || string(f.Output) != "null" {
			t.Errorf("%s --json: %+v: want the skill's stderr as logs, its usage and output null", strings.Join(args, " "), f)
		}
		if plain := run(args...); !strings.Contains(plain.stdout, `"logs": "{\"in\":\"bad input: no name\"}"`) {
			t.Errorf("%s: stdout %q: want the call's logs before the failure line", strings.Join(args, " "), plain.stdout)
		}
	}
	ran("run", "errecho", "--input", badInput)

	// No server: the reason is the status code's.
	if f, _ := failed("UNAVAILABLE", "invoke", "echo", "--input", "{}"); !strings.Contains(f.Error.Message, "no server answers") {
		t.Errorf("invoke --json without a server: message %q", f.Error.Message)
	}

	srv, srvLog := startServer(t, op, "--no-container")
	defer stopServer(t, srv, srvLog)

	r := run("invoke", "echo", "--input", `{"a":1}`, "--json")
	var ok map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &ok); r.code != 0 || err != nil || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("invoke --json: exit %d (%v), want one JSON line:\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if string(ok["output"]) != `{"a":1}` || string(ok["version"]) != `"1.0.0"` || len(ok["callId"]) < 3 || len(ok["auditId"]) < 3 || ok["usage"] == nil || ok["error"] != nil {
		t.Errorf("invoke --json: %s: want output, version, callId, auditId, usage and no error", r.stdout)
	}

	if f, _ := failed("INVALID_INPUT", "invoke", "echo", "--input", "[]"); f.Error.AuditID == "" {
		t.Errorf("invoke --json of invalid input: no audit id: %+v", f.Error)
	}
	failed("NOT_FOUND", "invoke", "nosuch", "--input", "{}")
	// Input that is not UTF-8 cannot go over the wire (a protobuf string): said as such.
	if r := run("invoke", "echo", "--input", "{\"a\":\"\xff\"}"); r.code == 0 || !strings.Contains(r.stderr, "--input: not valid JSON (not UTF-8 text)") {
		t.Errorf("invoke of input that is not UTF-8: exit %d, stderr %q", r.code, r.stderr)
	}
	ran("invoke", "errecho", "--input", badInput)
	if f, _ := failed("SKILL_FAILED", "invoke", "errecho", "--input", badInput); f.Error.CallID == "" {
		t.Errorf("invoke --json of a call that ran: no call id in the error: %+v", f.Error)
	}
	op.must("disable", "echo", "--reason", "leaks tokens, see ticket 42")
	if f, _ := failed("DISABLED", "invoke", "echo", "--input", "{}"); !strings.Contains(f.Error.Message, "leaks tokens, see ticket 42") {
		t.Errorf("invoke --json of a disabled skill: message %q lacks the operator's reason", f.Error.Message)
	}
	op.must("enable", "echo")
}

// callLine is the one shape of a failed call's stderr line in run DIR, run NAME and
// invoke: "skillbox: CMD NAME: MESSAGE (REASON)", then " audit N" where it was recorded.
var callLine = regexp.MustCompile(`^skillbox: (run|invoke) ([a-z0-9-]+): (.+) \(([A-Z_]+)\)( audit ([0-9]+))?$`)

// checkCallLine checks that stderr ends with a failed call's line of that shape, for
// cmd and name, naming f's reason, message and audit record (--json's error).
func checkCallLine(t *testing.T, stderr, cmd, name string, f jsonFailure) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	m := callLine.FindStringSubmatch(last)
	if m == nil || m[1] != cmd || m[2] != name {
		t.Errorf("stderr line %q: want %q", last, "skillbox: "+cmd+" "+name+": MESSAGE (REASON) [audit N]")
		return
	}
	if m[3] != f.Error.Message || m[4] != f.Error.Reason || m[6] != f.Error.AuditID {
		t.Errorf("stderr line %q: message %q, reason %s, audit %q; --json says %q, %s, %q", last, m[3], m[4], m[6], f.Error.Message, f.Error.Reason, f.Error.AuditID)
	}
}
