package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/runtime/audit"
)

// TestAuditTornTailThroughTheCLI: a crash left the audit log's last line torn. The
// server refuses to start and names the fix; `skillbox audit recover` moves the torn
// bytes aside and records them; the chain verifies, the head printed can be kept and
// checked with --head (which sees whole lines cut from the end), and the server starts.
func TestAuditTornTailThroughTheCLI(t *testing.T) {
	bin := signBuildCLI(t)
	home, err := os.MkdirTemp("", "sb") // short: the socket path must fit in 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	env := []string{"SKILLBOX_HOME=" + home}
	dir := filepath.Join(home, "audit")
	l, err := audit.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := l.Append(context.Background(), audit.Record{Event: audit.EventReload, Caller: "test", Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	path := filepath.Join(dir, audit.FileName)
	whole, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(whole), "\n")
	if err := os.WriteFile(path, []byte(strings.Join(lines[:2], "")+lines[2][:60]), 0o600); err != nil {
		t.Fatal(err)
	}

	r := signRunCLI(t, bin, env, "serve", "--no-container")
	if r.code == 0 || !strings.Contains(r.stderr, "line 3 is torn") || !strings.Contains(r.stderr, "skillbox audit recover") {
		t.Fatalf("serve on a torn log: exit %d: %s", r.code, r.stderr)
	}
	if r := signRunCLI(t, bin, env, "audit", "verify"); r.code == 0 || !strings.Contains(r.stderr, "line 3 is torn") {
		t.Fatalf("verify of a torn log: exit %d: %s", r.code, r.stderr)
	}
	if r := signRunCLI(t, bin, env, "audit", "tail"); r.code == 0 || strings.Count(r.stderr, "audit tail:") != 1 ||
		!strings.Contains(r.stderr, "line 3 is torn") || !strings.Contains(r.stderr, "skillbox audit recover") {
		t.Fatalf("tail of a torn log: exit %d: %s", r.code, r.stderr)
	}
	if r := signRunCLI(t, bin, env, "audit", "recover", "extra"); r.code == 0 || !strings.Contains(r.stderr, "takes no arguments") {
		t.Fatalf("verify of a torn log: exit %d: %s", r.code, r.stderr)
	}

	r = signRunCLI(t, bin, env, "audit", "recover", "--by", "ops")
	if r.code != 0 || !strings.Contains(r.stdout, "line 3 is torn") || !strings.Contains(r.stdout, "length 60") ||
		!strings.Contains(r.stdout, "recorded as record 3") {
		t.Fatalf("audit recover: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	sides, _ := filepath.Glob(filepath.Join(dir, audit.FileName+".torn-*"))
	if len(sides) != 1 {
		t.Fatalf("side files: %v", sides)
	}
	if b, _ := os.ReadFile(sides[0]); string(b) != lines[2][:60] {
		t.Fatalf("side file holds %q", b)
	}
	r = signRunCLI(t, bin, env, "audit", "verify")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ok: 3 records") {
		t.Fatalf("verify after recover: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	head := strings.TrimSpace(r.stdout[strings.LastIndex(r.stdout, "head ")+len("head "):])
	if len(head) != 64 {
		t.Fatalf("verify prints no head: %q", r.stdout)
	}
	if r := signRunCLI(t, bin, env, "audit", "verify", "--head", head); r.code != 0 {
		t.Fatalf("verify --head of the current head: exit %d: %s", r.code, r.stderr)
	}

	// The server starts on the recovered log.
	srv, srvErr := startServerWith(t, bin, env, "--no-container")
	stopServer(t, srv, srvErr)

	// Whole lines cut from the end: the chain still verifies, the kept head does not.
	b, _ := os.ReadFile(path)
	lines = strings.SplitAfter(string(b), "\n")
	if err := os.WriteFile(path, []byte(strings.Join(lines[:2], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := signRunCLI(t, bin, env, "audit", "verify"); r.code != 0 {
		t.Fatalf("plain verify of a cut log: exit %d: %s", r.code, r.stderr)
	}
	r = signRunCLI(t, bin, env, "audit", "verify", "--head", head)
	if r.code == 0 || !strings.Contains(r.stderr, "removed from its end") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("verify --head of a cut log: exit %d: %q", r.code, r.stderr)
	}
}

// auditHome is a skill home whose audit log holds n records, and the log's lines.
func auditHome(t *testing.T, n int) (home string, env []string, lines []string) {
	t.Helper()
	home, err := os.MkdirTemp("", "sb") // short: the socket path must fit in 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	l, err := audit.Open(filepath.Join(home, "audit"))
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := l.Append(context.Background(), audit.Record{Event: audit.EventReload, Caller: "test", Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	b, _ := os.ReadFile(filepath.Join(home, "audit", audit.FileName))
	return home, []string{"SKILLBOX_HOME=" + home}, strings.SplitAfter(string(b), "\n")[:n]
}

// TestAuditBadLastLineThroughTheCLI: the last line ends in a newline but is not a
// record (what the UX review appended). It used to be a dead end: serve and verify
// refused in the decoder's words, and recover said there was nothing to recover. Now
// both name the line and `skillbox audit recover`, which moves it aside, and the
// server starts.
func TestAuditBadLastLineThroughTheCLI(t *testing.T) {
	bin := signBuildCLI(t)
	home, env, lines := auditHome(t, 45)
	path := filepath.Join(home, "audit", audit.FileName)
	bad := `{"seq":99,"event":"invo` + "\n"
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")+bad), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"serve", "--no-container"}, {"audit", "verify"}} {
		r := signRunCLI(t, bin, env, args...)
		if r.code == 0 || !strings.Contains(r.stderr, "line 46 is not a valid record") ||
			!strings.Contains(r.stderr, "run `skillbox audit recover`") || strings.Contains(r.stderr, "unexpected EOF") {
			t.Fatalf("%v on a bad last line: exit %d: %s", args, r.code, r.stderr)
		}
	}
	r := signRunCLI(t, bin, env, "audit", "verify", "--json")
	var v struct {
		OK          bool   `json:"ok"`
		Lines       int    `json:"lines"`
		Head        string `json:"head"`
		BadLine     int    `json:"badLine"`
		Recoverable bool   `json:"recoverable"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code == 0 || v.OK || v.Lines != 45 || v.BadLine != 46 || !v.Recoverable {
		t.Fatalf("verify --json on a bad last line: exit %d: %s (%v)", r.code, r.stdout, err)
	}

	r = signRunCLI(t, bin, env, "audit", "recover", "--by", "ops")
	if r.code != 0 || !strings.Contains(r.stdout, "line 46 is not a valid record") || !strings.Contains(r.stdout, "recorded as record 46") {
		t.Fatalf("audit recover: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	sides, _ := filepath.Glob(path + ".bad-46-*")
	if len(sides) != 1 {
		t.Fatalf("side files: %v", sides)
	}
	if b, _ := os.ReadFile(sides[0]); string(b) != bad {
		t.Fatalf("side file holds %q", b)
	}
	r = signRunCLI(t, bin, env, "audit", "verify", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 0 || !v.OK || v.Lines != 46 || len(v.Head) != 64 {
		t.Fatalf("verify --json after recover: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	// The head is the last line's hash field: an operator can find it in the file.
	b, _ := os.ReadFile(path)
	var last struct{ Event, Hash string }
	all := strings.SplitAfter(string(b), "\n")
	if err := json.Unmarshal([]byte(all[len(all)-2]), &last); err != nil || last.Event != audit.EventRecovered || last.Hash != v.Head {
		t.Fatalf("last line %s (%v): the head %s is not its hash", all[len(all)-2], err, v.Head)
	}
	if r := signRunCLI(t, bin, env, "audit", "recover"); r.code != 0 || !strings.Contains(r.stdout, "nothing to recover") {
		t.Fatalf("recover of a sound log: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}

	// The server starts; while it runs, recover refuses (it would rewrite the end of a
	// log the server appends to) and says to stop it.
	op := &operatorHome{bin: bin, home: home, env: env}
	srv, srvLog := startServer(t, op, "--no-container")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	r = signRunCLI(t, bin, env, "audit", "recover")
	if r.code == 0 || !strings.Contains(r.stderr, "stop it") {
		t.Fatalf("recover while the server runs: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if after, _ := os.ReadFile(path); string(after) != string(b)+"\n" {
		t.Fatal("recover changed the log of a running server")
	}
	stopServer(t, srv, srvLog)
	if r := signRunCLI(t, bin, env, "audit", "recover"); r.code != 0 || !strings.Contains(r.stdout, "line 47 is empty") {
		t.Fatalf("recover after the server stopped: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
}

// --head takes the head as an operator may paste it, refuses what is not one (rather
// than report tampering), and an empty --head is an error, not ignored.
func TestAuditVerifyHeadFlag(t *testing.T) {
	bin := signBuildCLI(t)
	home, env, _ := auditHome(t, 3)
	r := signRunCLI(t, bin, env, "audit", "verify")
	head := strings.TrimSpace(r.stdout[strings.LastIndex(r.stdout, "head ")+len("head "):])
	if r.code != 0 || len(head) != 64 {
		t.Fatalf("verify: exit %d: %s", r.code, r.stdout)
	}
	for _, kept := range []string{head, strings.ToUpper(head), "sha256:" + head, "SHA256:" + strings.ToUpper(head)} {
		if r := signRunCLI(t, bin, env, "audit", "verify", "--head", kept); r.code != 0 || !strings.Contains(r.stdout, "is in the chain") {
			t.Fatalf("verify --head %s: exit %d: %s %s", kept, r.code, r.stdout, r.stderr)
		}
	}
	// An empty log's head is in every log: verify says it proves nothing rather than
	// that it is in the chain.
	r = signRunCLI(t, bin, env, "audit", "verify", "--head", audit.Genesis)
	if r.code != 0 || strings.Contains(r.stdout, "is in the chain") ||
		!strings.Contains(r.stdout, "the kept head is an empty log's: every log holds it, so it proves nothing about this log's end\n") {
		t.Fatalf("verify --head of an empty log: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	for _, kept := range []string{"", "3f1c...e9", head[:63], head + "00"} {
		r := signRunCLI(t, bin, env, "audit", "verify", "--head", kept)
		if r.code == 0 || !strings.Contains(r.stderr, "--head: want the 64-hex head printed by `skillbox audit verify`") ||
			strings.Contains(r.stderr, "removed") {
			t.Fatalf("verify --head %q: exit %d: %s %s", kept, r.code, r.stdout, r.stderr)
		}
	}
	if r := signRunCLI(t, bin, env, "audit", "recover", "--home", filepath.Join(home, "nowhere")); r.code == 0 ||
		!strings.Contains(r.stderr, "there is no audit log at "+filepath.Join(home, "nowhere", "audit", audit.FileName)) {
		t.Fatalf("recover without a log: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
}

// A last record complete but for its newline is a real record: recover keeps it and
// adds the newline (it used to move the record out of the chain into a side file).
func TestAuditRecoverKeepsARecordWithoutItsNewline(t *testing.T) {
	bin := signBuildCLI(t)
	home, env, lines := auditHome(t, 3)
	path := filepath.Join(home, "audit", audit.FileName)
	all := strings.Join(lines, "")
	if err := os.WriteFile(path, []byte(strings.TrimSuffix(all, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := signRunCLI(t, bin, env, "audit", "verify"); r.code == 0 || !strings.Contains(r.stderr, "line 3 is a whole record without its final newline") {
		t.Fatalf("verify: exit %d: %s", r.code, r.stderr)
	}
	r := signRunCLI(t, bin, env, "audit", "recover")
	if r.code != 0 || !strings.Contains(r.stdout, "added it") || !strings.Contains(r.stdout, "recorded as record 4") {
		t.Fatalf("recover: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), all) {
		t.Fatal("the record without its newline left the chain")
	}
	if sides, _ := filepath.Glob(path + ".*"); len(sides) != 0 {
		t.Fatalf("side files: %v", sides)
	}
	if r := signRunCLI(t, bin, env, "audit", "verify"); r.code != 0 || !strings.HasPrefix(r.stdout, "ok: 4 records") {
		t.Fatalf("verify after recover: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
}

// A negative or too long --audit-commit-delay is refused in one line that says what is
// allowed, before the server opens anything.
func TestServeRefusesBadCommitDelay(t *testing.T) {
	bin := signBuildCLI(t)
	home := t.TempDir()
	for _, v := range []string{"-1ms", "1s"} {
		r := signRunCLI(t, bin, []string{"SKILLBOX_HOME=" + home}, "serve", "--no-container", "--audit-commit-delay", v)
		if r.code == 0 || !strings.Contains(r.stderr, "--audit-commit-delay "+v+": want 0 (never wait) or a duration up to 100ms") ||
			strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Fatalf("serve --audit-commit-delay %s: exit %d: %q", v, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(home, "audit")); !os.IsNotExist(err) {
		t.Fatalf("the refused server opened its audit log: %v", err)
	}
}

// UX review B1–B3. A home without an audit log is a failure said in words (it may be
// a removed one); a torn log read with --file or --home is told to give recover the
// same, and recover --file repairs that file; tail -n prints the last N records.
func TestAuditCommandsNameTheirLog(t *testing.T) {
	bin := signBuildCLI(t)
	work := t.TempDir()
	empty := filepath.Join(work, "empty")
	for _, sub := range []string{"verify", "tail", "recover"} {
		r := signRunCLI(t, bin, []string{"SKILLBOX_HOME=" + empty}, "audit", sub)
		want := "skillbox: audit " + sub + ": there is no audit log at " + filepath.Join(empty, "audit", audit.FileName) +
			": nothing has been recorded in this home, or the log was removed (is --home or SKILLBOX_HOME right?)\n"
		if r.code != 1 || r.stderr != want {
			t.Errorf("audit %s without a log: exit %d, stderr %q, want %q", sub, r.code, r.stderr, want)
		}
		if r := signRunCLI(t, bin, nil, "audit", sub, "--file", filepath.Join(work, "nosuch")); r.code != 1 ||
			r.stderr != "skillbox: audit "+sub+": --file "+filepath.Join(work, "nosuch")+" does not exist\n" {
			t.Errorf("audit %s --file of a missing file: exit %d, stderr %q", sub, r.code, r.stderr)
		}
	}

	home, env, lines := auditHome(t, 5)
	if r := signRunCLI(t, bin, env, "audit", "tail", "-n", "2"); r.code != 0 || r.stdout != lines[3]+lines[4] {
		t.Errorf("tail -n 2: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if r := signRunCLI(t, bin, env, "audit", "tail", "--lines", "9"); r.code != 0 || r.stdout != strings.Join(lines, "") {
		t.Errorf("tail --lines 9: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if r := signRunCLI(t, bin, env, "audit", "tail", "-n", "0"); r.code != 0 || r.stdout != "" {
		t.Errorf("tail -n 0: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if r := signRunCLI(t, bin, env, "audit", "tail", "-n", "-1"); r.code != 2 || r.stderr != "skillbox: audit tail: -n -1: want a number of records, 0 or more\n" {
		t.Errorf("tail -n -1: exit %d, %q", r.code, r.stderr)
	}

	// A torn copy: the advice names the copy, and recover --file repairs it (its side
	// file next to it), leaving the home's log as it was.
	cp := filepath.Join(work, "copy of audit.jsonl")
	torn := strings.Join(lines[:4], "") + lines[4][:50]
	if err := os.WriteFile(cp, []byte(torn), 0o600); err != nil {
		t.Fatal(err)
	}
	advice := "run `skillbox audit recover --file '" + cp + "'` to move it aside"
	for _, args := range [][]string{{"audit", "verify", "--file", cp}, {"audit", "tail", "--file", cp}} {
		if r := signRunCLI(t, bin, env, args...); r.code != 1 || !strings.HasSuffix(r.stderr, advice+"\n") {
			t.Errorf("%q of a torn copy: exit %d, stderr %q, want it to end %q", args, r.code, r.stderr, advice)
		}
	}
	r := signRunCLI(t, bin, env, "audit", "verify", "--file", cp, "--json")
	var res struct {
		Error       string
		Recoverable bool
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || !res.Recoverable || !strings.HasSuffix(res.Error, advice) {
		t.Errorf("verify --json of a torn copy: %v %+v", err, res)
	}
	if r := signRunCLI(t, bin, env, "audit", "recover", "--file", cp, "--by", "ops"); r.code != 0 || !strings.Contains(r.stdout, "line 5 is torn") {
		t.Fatalf("recover --file: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if sides, _ := filepath.Glob(cp + ".torn-5-*"); len(sides) != 1 {
		t.Errorf("side files next to the copy: %v", sides)
	}
	if r := signRunCLI(t, bin, env, "audit", "verify", "--file", cp); r.code != 0 || !strings.HasPrefix(r.stdout, "ok: 5 records") {
		t.Errorf("verify --file after recover --file: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(home, "audit", audit.FileName)); string(b) != strings.Join(lines, "") {
		t.Error("recover --file changed the home's log")
	}

	// A torn log named with --home: the advice keeps --home (not from the environment).
	other := filepath.Join(work, "other")
	if err := os.MkdirAll(filepath.Join(other, "audit"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "audit", audit.FileName), []byte(torn), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"audit", "verify", "--home", other}, {"serve", "--no-container", "--home", other}} {
		r := signRunCLI(t, bin, []string{"SKILLBOX_HOME="}, args...)
		if want := "run `skillbox audit recover --home " + other + "` to move it aside"; r.code != 1 || !strings.HasSuffix(r.stderr, want+"\n") {
			t.Errorf("%q of a torn log: exit %d, stderr %q, want it to end %q", args, r.code, r.stderr, want)
		}
	}
	if r := signRunCLI(t, bin, []string{"SKILLBOX_HOME=" + other}, "audit", "verify"); !strings.HasSuffix(r.stderr, "run `skillbox audit recover` to move it aside\n") {
		t.Errorf("verify of SKILLBOX_HOME's torn log: %q", r.stderr)
	}
}
