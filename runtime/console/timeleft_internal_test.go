package console

import (
	"testing"
	"time"

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
