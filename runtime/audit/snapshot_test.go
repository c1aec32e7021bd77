package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The console's view of the log: the last records of the complete lines, verified; a
// line still being written is left out, an edited line is named.
func TestReadSnapshot(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if s, err := ReadSnapshot(path, 5); err != nil || s.Lines != 0 || s.Err != nil || len(s.Last) != 0 {
		t.Fatalf("missing log: %+v, %v; want an empty intact log", s, err)
	}
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if _, err := l.Append(context.Background(), Record{Event: EventReload, Caller: fmt.Sprint("op", i)}); err != nil {
			t.Fatal(err)
		}
	}
	_, head := l.Head()
	l.Close()

	// A writer half-way through a line.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"seq":8,"time":"`)
	f.Close()
	s, err := ReadSnapshot(path, 3)
	if err != nil || s.Err != nil || s.Lines != 7 || s.Head != head {
		t.Fatalf("snapshot %+v, %v; want 7 intact records, head %s", s, err, head)
	}
	if len(s.Last) != 3 || s.Last[0].Caller != "op4" || s.Last[2].Caller != "op6" {
		t.Errorf("last %+v, want op4..op6", s.Last)
	}

	// An edit of line 3.
	b, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(b, []byte(`"op2"`), []byte(`"op9"`), 1), 0o600)
	s, err = ReadSnapshot(path, 3)
	var ce *ChainError
	if err != nil || !errors.As(s.Err, &ce) || ce.Line != 3 || s.Lines != 2 {
		t.Fatalf("edited log: %+v, %v; want a chain error at line 3 after 2 good records", s, err)
	}
	if len(s.Last) != 2 || s.Last[1].Caller != "op1" {
		t.Errorf("last of an edited log %+v, want the two good records", s.Last)
	}
}
