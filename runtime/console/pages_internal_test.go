package console

import (
	"testing"
	"time"
	"unicode/utf8"

	"github.com/skillbox-dev/skillbox/runtime/engine"
)

// A pending call's time left reads as people write it (5m, 1m30s), as everywhere
// else skillbox prints a duration, not Go's 5m0s.
func TestPendingTimeLeftWords(t *testing.T) {
	now := time.Now()
	for left, want := range map[time.Duration]string{5 * time.Minute: "5m", 90 * time.Second: "1m30s", time.Hour: "1h", 0: "0s"} {
		row := pendingRowOf(engine.PendingRequest{ID: "x", Input: []byte(`{}`), Expires: now.Add(left)}, actor{}, now)
		if row.Left != want {
			t.Errorf("%v left: %q, want %q", left, row.Left, want)
		}
	}
}

// A cut never leaves part of a character: the overview's view of an input cut in the
// middle of "é" ends before it, still UTF-8.
func TestCutAtCharacter(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{{"aé", 2, "a…"}, {"aé", 3, "aé"}, {"aéb", 3, "aé…"}, {"abc", 2, "ab…"}} {
		if got := cut(tc.in, tc.n); got != tc.want || !utf8.ValidString(got) {
			t.Errorf("cut(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
