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
	// The head is what an operator finds in the file: the last record's hash field.
	last, err := parseLine([]byte(strings.TrimSuffix(lines[3], "\n")))
	if err != nil || head != last.Hash {
		t.Fatalf("head %s is not the last record's hash %s (%v)", head, last.Hash, err)
	}
	all := strings.Join(lines, "")
	if err := check(all, head); err != nil {
		t.Fatalf("current head: %v", err)
	}
	older, _ := parseLine([]byte(strings.TrimSuffix(lines[1], "\n")))
	if err := check(all, older.Hash); err != nil {
		t.Fatalf("an older head of a log that grew: %v", err)
	}
	// The sha256 of a whole line, the head earlier versions printed, still matches.
	if err := check(all, hashHex([]byte(strings.TrimSuffix(lines[1], "\n")))); err != nil {
		t.Fatalf("an older head in the earlier form: %v", err)
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

// A head is accepted as an operator may paste it, and nothing else is.
func TestParseHead(t *testing.T) {
	const h = "3f1c0a6be1d6f3b4c0a7e4b2d1f0e9c8b7a6f5e4d3c2b1a09f8e7d6c5b4a39e9"
	for _, in := range []string{h, strings.ToUpper(h), "sha256:" + h, "SHA256:" + strings.ToUpper(h), " " + h + "\n"} {
		if got, err := ParseHead(in); err != nil || got != h {
			t.Errorf("ParseHead(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "sha256:", h[:63], h + "0", "z" + h[1:], "3f1c...e9"} {
		if got, err := ParseHead(in); err == nil {
			t.Errorf("ParseHead(%q) = %q, want an error", in, got)
		}
	}
}
