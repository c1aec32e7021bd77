package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

// A skill with requests: 1 that makes 5,000 refused attempts with a 30 KB URL leaves
// at most requests+1 egress.denied records plus one summary counting the rest, each
// bounded, and a bounded reply; the audit log still verifies. Before, each attempt
// wrote its own fsync'd record with the whole URL (5,000 records, 153 MB).
func TestDeniedFloodIsBounded(t *testing.T) {
	var hits atomic.Int32
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer b.Close()
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "flood", Version: "1.0.0", Module: "testdata/denyflood.wasm",
		Body: "input: {type: object}\noutput: {type: object}\ncapabilities:\n  network: [\"http://127.0.0.1:1\"]\nlimits: {requests: 1, timeout: 5m}\n"}, nil) // the budget is not under test: -race on a loaded machine is slow
	const attempts, requests = 5000, 1
	long := b.URL + "/" + strings.Repeat("a", 30<<10)
	before := auditSize(t, f.eng)

	res, err := f.eng.Invoke(context.Background(), engine.Request{Skill: "flood",
		Input: []byte(fmt.Sprintf(`{"method":"GET","url":%q}`, long)), Caller: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 0 {
		t.Fatal("the denied server was reached")
	}
	if res.Usage.Requests != 0 || res.Usage.DeniedRequests != attempts {
		t.Fatalf("usage %+v, want %d refused attempts", res.Usage, attempts)
	}
	if len(res.Egress) > requests+1 {
		t.Fatalf("reply carries %d egress records, want at most %d", len(res.Egress), requests+1)
	}
	replyBytes := 0
	for _, r := range res.Egress {
		replyBytes += len(r.Method) + len(r.URL) + len(r.Reason)
	}
	if replyBytes > (requests+1)*2048 {
		t.Fatalf("reply egress text is %d bytes", replyBytes)
	}
	if got := res.Egress[len(res.Egress)-1].Denial; got != isolation.DenialRequestLimit {
		t.Fatalf("last record's denial %q, want the request limit", got)
	}

	var records, summarised int
	for _, e := range auditEvents(t, f.eng) {
		if e.Event != audit.EventEgressDenied || e.CallID != res.CallID {
			continue
		}
		if n, ok := e.Details["count"].(float64); ok {
			summarised += int(n)
			continue
		}
		records++
		if u, _ := e.Details["url"].(string); len(u) > 1024 {
			t.Fatalf("recorded URL is %d bytes", len(u))
		}
	}
	if records > requests+1 || records+summarised != attempts {
		t.Fatalf("%d egress.denied records and %d summarised, want at most %d and %d in all", records, summarised, requests+1, attempts)
	}
	// The whole call (start, denials, summary, end) stays a few KB.
	if grew := auditSize(t, f.eng) - before; grew > 16<<10 {
		t.Fatalf("the audit log grew by %d bytes for one call", grew)
	}
}

func auditSize(t *testing.T, eng *engine.Engine) int64 {
	t.Helper()
	fi, err := os.Stat(eng.AuditPath())
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
