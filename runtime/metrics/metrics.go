// Package metrics exposes skillbox's Prometheus metrics on a private registry (never the
// process-global default one, so two engines in one process, or tests, do not collide).
// The engine reports through the methods here; Handler serves the exposition format.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Egress decisions, the values of the decision label.
const (
	DecisionAllowed = "allowed"
	DecisionDenied  = "denied"
)

// OutcomeOK is the outcome label of a successful call; failed calls use their reason
// (isolation.Reason or an engine reason such as INVALID_INPUT), which keeps the label's
// values a small fixed set.
const OutcomeOK = "ok"

// DoorLocal is the door label of a call made in-process, not through a door (an
// embedding program, a test). The doors name themselves: "grpc", "mcp", "cli".
const DoorLocal = "local"

// Metrics holds skillbox's collectors. It is safe for concurrent use.
type Metrics struct {
	reg        *prometheus.Registry
	calls      *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	egress     *prometheus.CounterVec
	inFlight   *prometheus.GaugeVec
	budget     *prometheus.CounterVec
	verifyFail *prometheus.CounterVec

	approvalRequests *prometheus.CounterVec
	approvalOutcomes *prometheus.CounterVec
	approvalWait     *prometheus.HistogramVec
	approvalsPending *prometheus.GaugeVec
}

// Approval outcomes, the values of the outcome label of the approval metrics: a
// person allowed or denied the call, its wait ran out, or it ended otherwise (the kill
// switch, a changed approval, a shutdown, the caller gone).
const (
	ApprovalAllowed = "allowed"
	ApprovalDenied  = "denied"
	ApprovalExpired = "expired"
	ApprovalEnded   = "ended"
)

// New builds the collectors on a fresh registry, with the Go runtime and process
// collectors alongside.
func New() *Metrics {
	const ns = "skillbox"
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "calls_total",
			Help: "Skill calls finished, by skill, door (grpc, mcp, cli, local) and outcome (ok or the failure reason).",
		}, []string{"skill", "door", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "call_duration_seconds",
			Help: "Wall-clock duration of skill calls, from admission to reply, by skill and door.",
			// From sub-millisecond wasm calls to the 15-minute timeout ceiling.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900},
		}, []string{"skill", "door"}),
		egress: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "egress_decisions_total",
			Help: "Outbound request decisions, by skill and decision (allowed, denied).",
		}, []string{"skill", "decision"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "calls_in_flight",
			Help: "Skill calls running now.",
		}, []string{"skill"}),
		budget: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "budget_exhausted_total",
			Help: "Calls stopped for going over a budget, by skill and kind (timeout, memory, output, logs, requests).",
		}, []string{"skill", "kind"}),
		verifyFail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "verification_failures_total",
			Help: "Packages that failed signature or digest verification, by reason.",
		}, []string{"reason"}),
	}
	m.approvalRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "approval_requests_total",
		Help: "Calls parked for a person's decision (per-call oversight), by skill.",
	}, []string{"skill"})
	m.approvalOutcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "approval_outcomes_total",
		Help: "Requests for a decision that ended, by skill and outcome (allowed, denied, expired, ended).",
	}, []string{"skill", "outcome"})
	m.approvalWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: ns, Name: "approval_wait_seconds",
		Help: "How long calls waited for a decision, by skill and outcome.",
		// From a quick click to the one-hour ceiling.
		Buckets: []float64{1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
	}, []string{"skill", "outcome"})
	m.approvalsPending = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: ns, Name: "approvals_pending",
		Help: "Calls waiting for a decision now, by skill.",
	}, []string{"skill"})
	m.reg.MustRegister(m.calls, m.duration, m.egress, m.inFlight, m.budget, m.verifyFail,
		m.approvalRequests, m.approvalOutcomes, m.approvalWait, m.approvalsPending,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the private registry, for adding collectors or gathering in tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:      m.reg, // counts scrape errors in promhttp_metric_handler_errors_total
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// CallStarted marks a call of skill through door (the way in: "grpc", "mcp", "cli";
// empty is DoorLocal) as in flight; call the returned function exactly once when it
// ends, with its outcome.
func (m *Metrics) CallStarted(skill, door string) (ended func(outcome string)) {
	if door == "" {
		door = DoorLocal
	}
	start := time.Now()
	g := m.inFlight.WithLabelValues(skill)
	g.Inc()
	return func(outcome string) {
		g.Dec()
		m.duration.WithLabelValues(skill, door).Observe(time.Since(start).Seconds())
		m.calls.WithLabelValues(skill, door, outcome).Inc()
	}
}

// Egress counts one call's outbound request decisions: allowed requests that went
// out and denied ones. Zero counts leave their series alone.
func (m *Metrics) Egress(skill string, allowed, denied int) {
	if allowed > 0 {
		m.egress.WithLabelValues(skill, DecisionAllowed).Add(float64(allowed))
	}
	if denied > 0 {
		m.egress.WithLabelValues(skill, DecisionDenied).Add(float64(denied))
	}
}

// BudgetExhausted counts a call stopped by a budget of the given kind.
func (m *Metrics) BudgetExhausted(skill, kind string) {
	m.budget.WithLabelValues(skill, kind).Inc()
}

// VerificationFailed counts a package that failed verification.
func (m *Metrics) VerificationFailed(reason string) {
	m.verifyFail.WithLabelValues(reason).Inc()
}

// ApprovalRequested counts a call of skill parked for a decision; call the returned
// function exactly once when the request ends, with its outcome (Approval*).
func (m *Metrics) ApprovalRequested(skill string) (ended func(outcome string)) {
	start := time.Now()
	m.approvalRequests.WithLabelValues(skill).Inc()
	g := m.approvalsPending.WithLabelValues(skill)
	g.Inc()
	return func(outcome string) {
		g.Dec()
		m.approvalWait.WithLabelValues(skill, outcome).Observe(time.Since(start).Seconds())
		m.approvalOutcomes.WithLabelValues(skill, outcome).Inc()
	}
}
