package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/engine"
)

// Shutdown ends a call asleep in a host call with its 15-minute budget, and the call's
// invoke.end is on disk, with why it ended, by the time Shutdown returns; later calls
// are refused. (A server stopping after its drain once closed the engine under such a
// call: the log had its invoke.start and no invoke.end.)
func TestShutdownEndsAndRecordsCallsInFlight(t *testing.T) {
	f := newFixture(t)
	b := blockers(t)[0]
	errc := b.start(t, f, "15m")
	b.ready(t)
	// Bounded by the test, not by Shutdown's own wait: unfixed, the call runs for its
	// whole 15m budget.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	n, err := f.eng.Shutdown(ctx)
	if took := time.Since(start); err != nil || n != 1 || took > 2*time.Second {
		t.Fatalf("shutdown after %v: %d calls, %v", took, n, err)
	}
	// Recorded before Shutdown returned: read now, before Invoke has even returned.
	var ends []audit.Entry
	for _, e := range auditEvents(t, f.eng) {
		if e.Skill == "blocked" && e.Event == audit.EventInvokeEnd {
			ends = append(ends, e)
		}
	}
	if len(ends) != 1 || ends[0].Reason != "CANCELED" || ends[0].Details["message"] != "the server shut down during the call" {
		t.Fatalf("invoke.end records after shutdown: %+v", ends)
	}
	select {
	case err := <-errc:
		if got := reasonOf(t, err); got != "CANCELED" || !strings.Contains(err.Error(), "the server shut down during the call") {
			t.Fatalf("call ended with %s: %v", got, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call had not returned 10s after shutdown confirmed it ended")
	}
	_, err = f.eng.Invoke(context.Background(), engine.Request{Skill: "blocked", Input: []byte(`{}`), Caller: "t"})
	if got := reasonOf(t, err); got != engine.ReasonUnavailable || !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("a call after shutdown: %s: %v", got, err)
	}
}
