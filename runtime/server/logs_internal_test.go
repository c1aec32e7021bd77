package server

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// logsTail keeps the end of the logs within its limit, starts after a line break when
// one is near the cut, and always returns UTF-8 (a protobuf string must be).
func TestLogsTail(t *testing.T) {
	if got, cut := logsTail([]byte("short\n"), 16); got != "short\n" || cut {
		t.Errorf("short logs: %q %v", got, cut)
	}
	logs := []byte(strings.Repeat("a", 100) + "\nline two\nlast line\n")
	got, cut := logsTail(logs, 24)
	if !cut || got != "line two\nlast line\n" {
		t.Errorf("cut logs: %q %v, want them from the line break near the cut", got, cut)
	}
	got, cut = logsTail([]byte(strings.Repeat("b", 40)), 16)
	if !cut || got != strings.Repeat("b", 16) {
		t.Errorf("one long line: %q %v, want its last 16 bytes", got, cut)
	}
	got, _ = logsTail([]byte("ok \xff\xfe bytes \xe2\x82"), 64)
	if !utf8.ValidString(got) || !strings.HasPrefix(got, "ok ") {
		t.Errorf("invalid UTF-8 kept: %q", got)
	}
	// A cut inside a multi-byte character starts at the next one, and replaced bytes
	// do not push the tail past the limit.
	got, _ = logsTail([]byte("€€€€"), 5)
	if got != "€" {
		t.Errorf("a cut character: %q, want the last whole one", got)
	}
	got, cut = logsTail([]byte(strings.Repeat("\xffa", 40)), 16)
	if !cut || len(got) > 16 || !utf8.ValidString(got) {
		t.Errorf("replaced bytes: %q (%d bytes): want at most 16 bytes of U+FFFD", got, len(got))
	}
}
