package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recoveryRecord reads the log's last line as an EventRecovered record.
func recoveryRecord(t *testing.T, path string) Entry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	e, err := parseLine([]byte(strings.TrimSuffix(lines[len(lines)-2], "\n")))
	if err != nil || e.Event != EventRecovered {
		t.Fatalf("last line %q is not a recovery record (%v)", lines[len(lines)-2], err)
	}
	return e
}

// A bad last line, torn or whole, after lines that chain stops Open and Verify with the
// line and the fix named in the user's words; Recover moves its bytes aside, records
// their length and hash as the next event of the chain, and the log opens and
// verifies again. (A bad last line ending in a newline was once a dead end: Open and
// Verify refused it and Recover said there was nothing to recover.)
func TestRecoverBadLastLine(t *testing.T) {
	for name, tc := range map[string]struct {
		damage func(lines []string) string
		reason string
	}{
		"torn line":                  {func(l []string) string { return l[3][:50] }, ReasonTornTail},
		"cut record with a newline":  {func([]string) string { return `{"seq":99,"event":"invo` + "\n" }, ReasonBadLastLine},
		"empty line":                 {func([]string) string { return "\n" }, ReasonBadLastLine},
		"edited last record":         {func(l []string) string { return strings.Replace(l[3], `"ok"`, `"no"`, 1) }, ReasonBadLastLine},
		"record that does not chain": {func(l []string) string { return l[1] }, ReasonBadLastLine},
	} {
		t.Run(name, func(t *testing.T) {
			path, lines := newLog(t, 4)
			dir := filepath.Dir(path)
			whole := strings.Join(lines[:3], "")
			damage := tc.damage(lines)
			if err := os.WriteFile(path, []byte(whole+damage), 0o600); err != nil {
				t.Fatal(err)
			}
			_, openErr := Open(dir)
			verifyErr := Verify(path)
			for what, err := range map[string]error{"Open": openErr, "Verify": verifyErr} {
				var ce *ChainError
				if !errors.As(err, &ce) || !ce.Last || ce.Line != 4 {
					t.Fatalf("%s: %v, want line 4 as a bad last line", what, err)
				}
				msg := err.Error()
				if !strings.Contains(msg, "line 4 ") || !strings.Contains(msg, "run `skillbox audit recover`") {
					t.Fatalf("%s does not name the line and the fix: %s", what, msg)
				}
				for _, raw := range []string{"unexpected EOF", "invalid character", "json:", "cannot unmarshal", "looking for"} {
					if strings.Contains(msg, raw) {
						t.Fatalf("%s speaks the decoder's words (%q): %s", what, raw, msg)
					}
				}
			}

			rec, err := Recover(dir, "ops")
			if err != nil {
				t.Fatal(err)
			}
			if rec.Reason != tc.reason || rec.Line != 4 || rec.Seq != 4 || rec.Bytes != int64(len(damage)) {
				t.Fatalf("recovery %+v", rec)
			}
			if side, err := os.ReadFile(rec.SideFile); err != nil || string(side) != damage {
				t.Fatalf("side file holds %q (%v), want the line's bytes %q", side, err, damage)
			}
			b, _ := os.ReadFile(path)
			if !strings.HasPrefix(string(b), whole) {
				t.Fatal("recover changed the lines before the bad one")
			}
			e := recoveryRecord(t, path)
			if e.Reason != tc.reason || e.Caller != "ops" || e.Details["sha256"] != rec.SHA256 ||
				e.Details["bytes"] != float64(len(damage)) || e.Details["line"] != float64(4) ||
				e.Details["sideFile"] != filepath.Base(rec.SideFile) || e.Details["why"] == "" {
				t.Fatalf("recovery record %+v", e)
			}
			f, _ := os.Open(path)
			n, head, err := VerifyReader(f)
			f.Close()
			if err != nil || n != 4 || head != rec.Head || head != e.Hash {
				t.Fatalf("after recover: %d records, head %s (recovery says %s), %v", n, head, rec.Head, err)
			}
			l, err := Open(dir)
			if err != nil {
				t.Fatalf("Open after recover: %v", err)
			}
			if id, err := l.Append(context.Background(), Record{Event: EventReload}); err != nil || id != "5" {
				t.Fatalf("append after recover: %q %v", id, err)
			}
			l.Close()
			if _, err := Recover(dir, ""); !errors.Is(err, ErrNothingToRecover) {
				t.Fatalf("Recover of a sound log: %v", err)
			}
		})
	}
}

// A last record complete but for its newline is a real record: Recover keeps it,
// adds the newline and records that it did, and moves nothing aside.
func TestRecoverRestoresNewline(t *testing.T) {
	path, lines := newLog(t, 4)
	dir := filepath.Dir(path)
	content := strings.TrimSuffix(strings.Join(lines, ""), "\n")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir)
	var ce *ChainError
	if !errors.As(err, &ce) || !ce.Whole || ce.Line != 4 || !strings.Contains(err.Error(), "run `skillbox audit recover` to add the newline") {
		t.Fatalf("Open on a record without its newline: %v", err)
	}
	rec, err := Recover(dir, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Reason != ReasonMissingNewline || rec.Line != 4 || rec.Seq != 5 || rec.SideFile != "" {
		t.Fatalf("recovery %+v", rec)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), strings.Join(lines, "")) {
		t.Fatal("the record was not kept as it was, with its newline")
	}
	if e := recoveryRecord(t, path); e.Reason != ReasonMissingNewline || e.Details["line"] != float64(4) {
		t.Fatalf("recovery record %+v", e)
	}
	f, _ := os.Open(path)
	n, head, err := VerifyReader(f)
	f.Close()
	if err != nil || n != 5 || head != rec.Head {
		t.Fatalf("after recover: %d records, head %s, %v", n, head, err)
	}
	if sides, _ := filepath.Glob(filepath.Join(dir, FileName+".*")); len(sides) != 0 {
		t.Fatalf("side files for a record that was kept: %v", sides)
	}
}

// Recover repairs the last line only: damage further up is tampering evidence, left as
// it is with the line named.
func TestRecoverRefusesOtherDamage(t *testing.T) {
	for name, content := range map[string]func(lines []string) string{
		"edited line before a torn tail": func(l []string) string {
			return l[0] + strings.Replace(l[1], `"ok"`, `"no"`, 1) + l[2][:30]
		},
		"garbage line before the last": func(l []string) string { return l[0] + "garbage\n" + l[2] },
		"empty line before the last":   func(l []string) string { return l[0] + l[1] + "\n" + l[2] },
		"edited line before the last":  func(l []string) string { return l[0] + strings.Replace(l[1], `"ok"`, `"no"`, 1) + l[2] },
		"orphan first line":            func(l []string) string { return l[1] },
	} {
		t.Run(name, func(t *testing.T) {
			path, lines := newLog(t, 3)
			c := content(lines)
			if err := os.WriteFile(path, []byte(c), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Recover(filepath.Dir(path), "")
			if err == nil || !strings.Contains(err.Error(), "nothing was changed") || !strings.Contains(err.Error(), "line ") {
				t.Fatalf("Recover over damage before the last line: %v", err)
			}
			if b, _ := os.ReadFile(path); string(b) != c {
				t.Fatal("Recover changed a log it refused")
			}
			if sides, _ := filepath.Glob(path + ".*"); len(sides) != 0 {
				t.Fatalf("Recover left side files: %v", sides)
			}
		})
	}
}

// The only line is torn: the chain starts over after it.
func TestRecoverTornFirstLine(t *testing.T) {
	path, lines := newLog(t, 3)
	if err := os.WriteFile(path, []byte(lines[0][:30]), 0o600); err != nil {
		t.Fatal(err)
	}
	rec, err := Recover(filepath.Dir(path), "")
	if err != nil || rec.Seq != 1 {
		t.Fatalf("recover a torn first line: %+v %v", rec, err)
	}
	if err := Verify(path); err != nil {
		t.Fatal(err)
	}
}

// No log: Recover says so and creates none.
func TestRecoverNoLog(t *testing.T) {
	dir := t.TempDir()
	_, err := Recover(dir, "")
	if err == nil || !strings.Contains(err.Error(), "there is no audit log at "+filepath.Join(dir, FileName)) {
		t.Fatalf("Recover without a log: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("Recover created %v", ents)
	}
}

// While another Log has the file open (a running server), Recover changes nothing:
// the server would continue the chain from the line Recover replaces.
func TestRecoverRefusesWhileOpen(t *testing.T) {
	path, _ := newLog(t, 3)
	dir := filepath.Dir(path)
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	before, _ := os.ReadFile(path)
	if _, err := Recover(dir, ""); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "stop it") {
		t.Fatalf("Recover while a Log is open: %v", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatal("Recover changed a log in use")
	}
	l.Close()
	if _, err := Recover(dir, ""); err != nil {
		t.Fatalf("Recover once the Log is closed: %v", err)
	}
	if err := Verify(path); err != nil {
		t.Fatal(err)
	}
}
