package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNameIndex: a lookup of a name that is not installed is answered from the name
// index, without scanning the skills directory, while the directory is unchanged; a
// package another process installs (the directory changes) is seen at the next lookup.
func TestNameIndex(t *testing.T) {
	home := newHome(t)
	ctx := context.Background()
	s, _ := Open(home)
	if _, err := s.Install(ctx, wasmPkg(t, "echo", "1.0.0")); err != nil {
		t.Fatal(err)
	}
	skills := filepath.Join(home, "skills")
	old := time.Now().Add(-time.Hour) // past the racy window: the index may be trusted
	if err := os.Chtimes(skills, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup("nope", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown name: %v", err)
	}
	// A damaged package directory that a scan would report (and fail on), slipped in
	// without changing the directory's time: lookups still answer from the index.
	junk := filepath.Join(skills, strings.Repeat("a", 64))
	if err := os.Mkdir(junk, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(skills, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup("nope", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown name with the directory unchanged: %v (the store scanned it)", err)
	}
	if _, err := s.Lookup("echo", ""); err != nil {
		t.Fatalf("installed name with the directory unchanged: %v", err)
	}
	if err := os.Remove(junk); err != nil {
		t.Fatal(err)
	}

	// Another process (another Store on the same home) installs: seen at once.
	other, _ := Open(home)
	if _, err := other.Install(ctx, wasmPkg(t, "late", "1.0.0")); err != nil {
		t.Fatal(err)
	}
	if e, err := s.Lookup("late", ""); err != nil || e.Version != "1.0.0" {
		t.Fatalf("a package another process installed: %v %v", e, err)
	}
}
