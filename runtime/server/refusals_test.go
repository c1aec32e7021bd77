package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

func refusalEntries(t *testing.T, eng *engine.Engine) []audit.Entry {
	t.Helper()
	raw, err := os.ReadFile(eng.AuditPath())
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Entry
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var e audit.Entry
		if line == "" || json.Unmarshal([]byte(line), &e) != nil || e.Event != engine.EventAccessRefused {
			continue
		}
		out = append(out, e)
	}
	return out
}

// A window's held refusals are written when it ends, without waiting for another
// refusal or a shutdown; the next refusal starts a new window.
func TestRefusalWindowFlushes(t *testing.T) {
	eng := testkit.NewHome(t).Engine(t, engine.Config{})
	r := newRefusalLog(eng, 200*time.Millisecond)
	ctx := context.Background()
	for range 5 {
		r.note(ctx, "tcp:192.0.2.1", ReasonUnauthenticated, "/m", "invalid bearer token")
	}
	if n := len(refusalEntries(t, eng)); n != 1 {
		t.Fatalf("%d records at once, want 1", n)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(refusalEntries(t, eng)) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the held count was never written")
		}
		time.Sleep(20 * time.Millisecond)
	}
	recs := refusalEntries(t, eng)
	if len(recs) != 2 || recs[1].Details["count"] != float64(4) {
		t.Fatalf("records %+v, want a second one counting 4", recs)
	}
	time.Sleep(250 * time.Millisecond) // the window is surely over
	r.note(ctx, "tcp:192.0.2.1", ReasonUnauthenticated, "/m", "invalid bearer token")
	if recs := refusalEntries(t, eng); len(recs) != 3 || recs[2].Details["count"] != float64(1) {
		t.Fatalf("a refusal in a new window: %+v", recs)
	}
	if err := audit.Verify(eng.AuditPath()); err != nil {
		t.Fatal(err)
	}
}

// Many peers cannot multiply the records without bound: past maxRefusalPeers they share
// one entry.
func TestRefusalPeersBounded(t *testing.T) {
	eng := testkit.NewHome(t).Engine(t, engine.Config{})
	r := newRefusalLog(eng, time.Hour)
	ctx := context.Background()
	for round := range 3 {
		for i := range 100 {
			r.note(ctx, fmt.Sprintf("tcp:10.0.%d.%d", round, i), ReasonUnauthenticated, "/m", "x")
		}
	}
	recs := refusalEntries(t, eng)
	if len(recs) != maxRefusalPeers+1 || recs[len(recs)-1].Caller != otherPeers {
		t.Fatalf("%d records for 300 peers, want %d ending with %q", len(recs), maxRefusalPeers+1, otherPeers)
	}
	r.flush()
	recs = refusalEntries(t, eng)
	if len(recs) != maxRefusalPeers+2 || recs[len(recs)-1].Details["count"] != float64(300-maxRefusalPeers-1) {
		t.Fatalf("after flush: %d records, last %+v", len(recs), recs[len(recs)-1])
	}
}
