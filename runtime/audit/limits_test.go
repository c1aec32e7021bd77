package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A record too big for its line to be read back is refused, alone: the log stays
// usable and verifies. (A 17 MB record once made `audit verify` fail for good.)
func TestAppendRefusesTooLarge(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, n := range []int{MaxRecordBytes, 17 << 20} {
		big := Record{Event: EventReload, Details: map[string]any{"big": strings.Repeat("x", n)}}
		if _, err := l.Append(ctx, big); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Append of a %d-byte detail: %v, want ErrTooLarge", n, err)
		}
		if err := l.Enqueue(ctx, big); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Enqueue of a %d-byte detail: %v, want ErrTooLarge", n, err)
		}
	}
	// The largest record that fits is written whole.
	fits := Record{Event: EventReload, Details: map[string]any{"big": strings.Repeat("x", MaxRecordBytes-300)}}
	if err := l.Enqueue(ctx, fits); err != nil {
		t.Fatal(err)
	}
	if id, err := l.Append(ctx, Record{Event: EventReload}); err != nil || id != "2" {
		t.Fatalf("append after refusals: id %q, %v", id, err)
	}
	path := filepath.Join(dir, FileName)
	if err := Verify(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	for i, line := range bytes.SplitAfter(b, []byte{'\n'}) {
		if len(line) > MaxRecordBytes {
			t.Fatalf("line %d is %d bytes, over the limit", i+1, len(line))
		}
	}
}

// A torn tail stops Open with the fix named; Recover moves the torn bytes aside,
// records their length and hash as the first event of the continued chain, and the
// log opens and verifies again.
func TestRecoverTornTail(t *testing.T) {
	path, lines := newLog(t, 3)
	dir := filepath.Dir(path)
	whole := strings.Join(lines[:2], "")
	torn := lines[2][:50]
	if err := os.WriteFile(path, []byte(whole+torn), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir)
	var te *TornTailError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "skillbox audit recover") {
		t.Fatalf("Open on a torn tail: %v", err)
	}

	rec, err := Recover(dir, "unix:uid=0")
	if err != nil {
		t.Fatal(err)
	}
	side, err := os.ReadFile(rec.SideFile)
	if err != nil || string(side) != torn {
		t.Fatalf("side file holds %q (%v), want the torn bytes %q", side, err, torn)
	}
	if rec.TornBytes != int64(len(torn)) || rec.Seq != 3 {
		t.Fatalf("recovery %+v", rec)
	}
	f, _ := os.Open(path)
	n, head, err := VerifyReader(f)
	f.Close()
	if err != nil || n != 3 || head != rec.Head {
		t.Fatalf("after recover: %d lines, head %s (recovery says %s), %v", n, head, rec.Head, err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), whole) {
		t.Fatal("recover changed the whole lines")
	}
	last, err := parseLine(bytes.TrimSuffix(b[len(whole):], []byte{'\n'}))
	if err != nil {
		t.Fatal(err)
	}
	if last.Event != EventRecovered || last.Reason != ReasonTornTail || last.Caller != "unix:uid=0" ||
		last.Details["tornSha256"] != rec.TornSHA256 || last.Details["tornBytes"] != float64(len(torn)) ||
		last.Details["sideFile"] != filepath.Base(rec.SideFile) {
		t.Fatalf("recovery record %+v", last)
	}
	l, err := Open(dir)
	if err != nil {
		t.Fatalf("Open after recover: %v", err)
	}
	if id, err := l.Append(context.Background(), Record{Event: EventReload}); err != nil || id != "4" {
		t.Fatalf("append after recover: %q %v", id, err)
	}
	l.Close()
	if err := Verify(path); err != nil {
		t.Fatal(err)
	}
	if _, err := Recover(dir, ""); !errors.Is(err, ErrNoTornTail) {
		t.Fatalf("Recover of a whole log: %v", err)
	}
}

// Recover repairs a torn write only: a torn tail after an edited line is left as it is.
func TestRecoverRefusesOtherDamage(t *testing.T) {
	for name, content := range map[string]func(lines []string) string{
		"edited line before a torn tail": func(lines []string) string {
			return lines[0] + strings.Replace(lines[1], `"ok"`, `"no"`, 1) + lines[2][:30]
		},
		"only a torn first line": nil,
	} {
		t.Run(name, func(t *testing.T) {
			path, lines := newLog(t, 3)
			if content == nil {
				// The only line is torn: the chain starts over after it.
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
				return
			}
			c := content(lines)
			if err := os.WriteFile(path, []byte(c), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Recover(filepath.Dir(path), ""); err == nil || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("Recover over an edited line: %v", err)
			}
			if b, _ := os.ReadFile(path); string(b) != c {
				t.Fatal("Recover changed a log it refused")
			}
		})
	}
}

// A head kept elsewhere finds whole lines cut from the end, which the chain alone
// cannot; the log may grow after the head was kept.
func TestVerifyHead(t *testing.T) {
	path, lines := newLog(t, 4)
	f, _ := os.Open(path)
	_, head, err := VerifyReader(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	check := func(content, kept string) error {
		_, _, err := VerifyReaderHead(strings.NewReader(content), kept)
		return err
	}
	all := strings.Join(lines, "")
	if err := check(all, head); err != nil {
		t.Fatalf("current head: %v", err)
	}
	if err := check(all, hashHex([]byte(strings.TrimSuffix(lines[1], "\n")))); err != nil {
		t.Fatalf("an older head of a log that grew: %v", err)
	}
	cut := strings.Join(lines[:3], "")
	if err := Verify(writeTemp(t, cut)); err != nil {
		t.Fatalf("the chain alone should not see the cut: %v", err)
	}
	err = check(cut, head)
	var he *HeadError
	if !errors.As(err, &he) || he.Lines != 3 || !strings.Contains(err.Error(), "removed from its end") {
		t.Fatalf("cut log against the kept head: %v", err)
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
