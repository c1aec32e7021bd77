package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// scrape serves the handler on 127.0.0.1 and fetches it once over real HTTP.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("content type %q", ct)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestScrape(t *testing.T) {
	m := New()
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			door := "grpc"
			if i >= 5 {
				door = "mcp"
			}
			end := m.CallStarted("echo", door)
			if i < 7 {
				end(OutcomeOK)
			} else {
				end("TIMEOUT")
			}
		})
	}
	wg.Wait()
	m.CallStarted("echo", "")(OutcomeOK)    // in-process: the local door
	running := m.CallStarted("slow", "cli") // still in flight at scrape time
	defer running(OutcomeOK)
	m.Egress("fetch", 1, 2)
	m.BudgetExhausted("echo", "timeout")
	m.VerificationFailed("signature")

	body := scrape(t, m)
	for _, want := range []string{
		`skillbox_calls_total{door="grpc",outcome="ok",skill="echo"} 5`,
		`skillbox_calls_total{door="mcp",outcome="ok",skill="echo"} 2`,
		`skillbox_calls_total{door="mcp",outcome="timeout",skill="echo"} 3`,
		`skillbox_calls_total{door="local",outcome="ok",skill="echo"} 1`,
		`skillbox_call_duration_seconds_count{door="grpc",skill="echo"} 5`,
		`skillbox_call_duration_seconds_count{door="mcp",skill="echo"} 5`,
		`skillbox_calls_in_flight{skill="echo"} 0`,
		`skillbox_calls_in_flight{skill="slow"} 1`,
		`skillbox_egress_decisions_total{decision="allowed",skill="fetch"} 1`,
		`skillbox_egress_decisions_total{decision="denied",skill="fetch"} 2`,
		`skillbox_budget_exhausted_total{kind="timeout",skill="echo"} 1`,
		`skillbox_verification_failures_total{reason="signature"} 1`,
		`# HELP skillbox_calls_total `,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

// Two instances in one process must not collide (no global registry).
func TestIndependentRegistries(t *testing.T) {
	a, b := New(), New()
	a.VerificationFailed("digest")
	if body := scrape(t, b); strings.Contains(body, "skillbox_verification_failures_total{") {
		t.Fatal("a metric recorded on one instance shows up on another")
	}
}

// Requests for a decision are counted when parked and when ended, by outcome, with
// their wait; the pending gauge goes back to zero.
func TestApprovalMetrics(t *testing.T) {
	m := New()
	for _, o := range []string{ApprovalAllowed, ApprovalDenied, ApprovalDenied, ApprovalExpired} {
		m.ApprovalRequested("pay")(o)
	}
	still := m.ApprovalRequested("pay")
	out := scrape(t, m)
	for _, want := range []string{
		`skillbox_approval_requests_total{skill="pay"} 5`,
		`skillbox_approval_outcomes_total{outcome="denied",skill="pay"} 2`,
		`skillbox_approval_outcomes_total{outcome="allowed",skill="pay"} 1`,
		`skillbox_approval_wait_seconds_count{outcome="expired",skill="pay"} 1`,
		`skillbox_approvals_pending{skill="pay"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	still(ApprovalEnded)
	if out := scrape(t, m); !strings.Contains(out, `skillbox_approvals_pending{skill="pay"} 0`) {
		t.Error("the pending gauge did not go back to zero")
	}
}

// Series an alert watches exist at zero before their first event; the state gauges
// come from the engine's report; outcomes are lower case; the build is described.
func TestSeriesAtZeroAndStatus(t *testing.T) {
	m := New()
	m.PrepareSkill("fetch")
	m.PrepareVerification("signature", "code-digest")
	body := scrape(t, m)
	for _, want := range []string{
		`skillbox_egress_decisions_total{decision="denied",skill="fetch"} 0`,
		`skillbox_budget_exhausted_total{kind="requests",skill="fetch"} 0`,
		`skillbox_verification_failures_total{reason="code-digest"} 0`,
		`skillbox_skills{state="installed"} 0`,
		`skillbox_skills{state="unavailable"} 0`,
		`skillbox_audit_append_failures_total 0`,
		`skillbox_build_info{`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	m.Watch(func() Status {
		return Status{Installed: 3, Approved: 2, Disabled: 1, Unavailable: 1, Warm: map[string]int{"wasm": 4, "container": 0}}
	})
	m.AuditAppended(2*time.Millisecond, nil)
	m.AuditAppended(time.Millisecond, io.ErrShortWrite)
	m.CallStarted("fetch", "grpc")("EGRESS_DENIED")
	body = scrape(t, m)
	for _, want := range []string{
		`skillbox_skills{state="installed"} 3`,
		`skillbox_skills{state="approved"} 2`,
		`skillbox_skills{state="disabled"} 1`,
		`skillbox_skills{state="unavailable"} 1`,
		`skillbox_warm_instances{sandbox="wasm"} 4`,
		`skillbox_warm_instances{sandbox="container"} 0`,
		`skillbox_audit_append_seconds_count 2`,
		`skillbox_audit_append_failures_total 1`,
		`skillbox_calls_total{door="grpc",outcome="egress_denied",skill="fetch"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}
