// Package metrics exposes skillbox's Prometheus metrics on a private registry (never the
// process-global default one, so two engines in one process, or tests, do not collide).
// The engine reports through the methods here; Handler serves the exposition format.
package metrics

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/skillbox-dev/skillbox/internal/buildinfo"
)

// Egress decisions, the values of the decision label.
const (
	DecisionAllowed = "allowed"
	DecisionDenied  = "denied"
)

// OutcomeOK is the outcome label of a successful call; failed calls use their reason
// (isolation.Reason or an engine reason such as INVALID_INPUT) in lower case
// (Outcome), so every value of the label is one convention and the set is small and
// fixed: ok, timeout, invalid_input, not_approved, …
const OutcomeOK = "ok"

// Outcome is the outcome label of a call that ended with reason ("" or OutcomeOK for
// success): the reason in lower case.
func Outcome(reason string) string {
	if reason == "" {
		return OutcomeOK
	}
	return strings.ToLower(reason)
}

// budgetKinds are the values of the kind label of skillbox_budget_exhausted_total.
var budgetKinds = [...]string{"time", "memory", "output", "logs", "requests"}

// Skill states, the values of the state label of skillbox_skills.
const (
	SkillsInstalled   = "installed"
	SkillsApproved    = "approved"
	SkillsDisabled    = "disabled"
	SkillsUnavailable = "unavailable"
)

// Status is what the engine reports at each scrape: the skills by state and the idle
// warm instances by sandbox kind.
type Status struct {
	Installed, Approved, Disabled int
	// Unavailable counts approvals this server cannot serve: the package they pin is
	// not installed here (a replica that could not fetch it) or no longer matches.
	Unavailable int
	Warm        map[string]int // by sandbox kind (wasm, container)
}

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

	auditAppend   prometheus.Histogram
	auditFailures prometheus.Counter

	// status reports the state gauges (see Watch); guarded by mu.
	mu     sync.Mutex
	status func() Status

	// The call series of each skill and door, resolved once: a label lookup hashes
	// its values under the vector's lock, three times a call otherwise. Bounded as
	// the series are (installed skills, named doors); guarded by seriesMu.
	seriesMu sync.RWMutex
	series   map[seriesKey]*callSeries
}

type seriesKey struct{ skill, door string }

// callSeries are the series every call of one skill through one door touches.
type callSeries struct {
	inFlight prometheus.Gauge
	duration prometheus.Observer
	ok       prometheus.Counter // calls with OutcomeOK; other outcomes are looked up
}

// callSeriesOf returns the resolved series of skill through door.
func (m *Metrics) callSeriesOf(skill, door string) *callSeries {
	k := seriesKey{skill, door}
	m.seriesMu.RLock()
	cs := m.series[k]
	m.seriesMu.RUnlock()
	if cs != nil {
		return cs
	}
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()
	if cs = m.series[k]; cs == nil {
		cs = &callSeries{
			inFlight: m.inFlight.WithLabelValues(skill),
			duration: m.duration.WithLabelValues(skill, door),
			ok:       m.calls.WithLabelValues(skill, door, OutcomeOK),
		}
		if m.series == nil {
			m.series = map[seriesKey]*callSeries{}
		}
		m.series[k] = cs
	}
	return cs
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
			Help: "Calls stopped for going over a budget, by skill and kind (time, memory, output, logs, requests).",
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
	m.auditAppend = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: ns, Name: "audit_append_seconds",
		Help: "How long durable audit appends took (queue, write and fsync).",
		// From a lone fsync on a fast disk to a stalled one.
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
	m.auditFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Name: "audit_append_failures_total",
		Help: "Audit appends that failed: the action they recorded was refused or failed.",
	})
	bi := buildinfo.Read()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: ns, Name: "build_info",
		Help:        "Always 1; the labels say which skillbox is running.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "commit": bi.Commit, "goversion": bi.GoVersion},
	})
	build.Set(1)
	m.reg.MustRegister(m.calls, m.duration, m.egress, m.inFlight, m.budget, m.verifyFail,
		m.approvalRequests, m.approvalOutcomes, m.approvalWait, m.approvalsPending,
		m.auditAppend, m.auditFailures, build, newStatusCollector(m),
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
	cs := m.callSeriesOf(skill, door)
	start := time.Now()
	cs.inFlight.Inc()
	return func(outcome string) {
		cs.inFlight.Dec()
		cs.duration.Observe(time.Since(start).Seconds())
		if o := Outcome(outcome); o == OutcomeOK {
			cs.ok.Inc()
		} else {
			m.calls.WithLabelValues(skill, door, o).Inc()
		}
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

// PrepareSkill makes the per-skill series of skill exist at zero (egress decisions,
// budgets), so that an alert sees 0 rather than "absent" before the first event. The
// engine calls it for every approved skill when it loads or changes its state, which
// bounds the series by the operator's approvals.
func (m *Metrics) PrepareSkill(skill string) {
	m.egress.WithLabelValues(skill, DecisionAllowed)
	m.egress.WithLabelValues(skill, DecisionDenied)
	for _, k := range budgetKinds {
		m.budget.WithLabelValues(skill, k)
	}
}

// PrepareVerification makes skillbox_verification_failures_total exist at zero for
// each reason (the checks a verification can fail).
func (m *Metrics) PrepareVerification(reasons ...string) {
	for _, r := range reasons {
		m.verifyFail.WithLabelValues(r)
	}
}

// AuditAppended observes one durable audit append: how long it took and whether it
// failed.
func (m *Metrics) AuditAppended(d time.Duration, err error) {
	m.auditAppend.Observe(d.Seconds())
	if err != nil {
		m.auditFailures.Inc()
	}
}

// Watch sets what reports the state gauges at each scrape (the engine, once opened);
// a later call replaces it. Until then they are 0.
func (m *Metrics) Watch(status func() Status) {
	m.mu.Lock()
	m.status = status
	m.mu.Unlock()
}

// statusCollector reports Status at scrape time.
type statusCollector struct {
	m            *Metrics
	skills, warm *prometheus.Desc
}

func newStatusCollector(m *Metrics) statusCollector {
	return statusCollector{m: m,
		skills: prometheus.NewDesc("skillbox_skills",
			"Skills by state: installed (distinct names in the store), approved (an approval pins an installed version), disabled (the kill switch is on), unavailable (an approval this server cannot serve: its package is not installed here or does not match it).",
			[]string{"state"}, nil),
		warm: prometheus.NewDesc("skillbox_warm_instances",
			"Idle warm instances by sandbox: started containers (container) and reset reactor instances (wasm).",
			[]string{"sandbox"}, nil),
	}
}

func (c statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.skills
	ch <- c.warm
}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	fn := c.m.status
	c.m.mu.Unlock()
	var st Status
	if fn != nil {
		st = fn()
	}
	ch <- prometheus.MustNewConstMetric(c.skills, prometheus.GaugeValue, float64(st.Installed), SkillsInstalled)
	ch <- prometheus.MustNewConstMetric(c.skills, prometheus.GaugeValue, float64(st.Approved), SkillsApproved)
	ch <- prometheus.MustNewConstMetric(c.skills, prometheus.GaugeValue, float64(st.Disabled), SkillsDisabled)
	ch <- prometheus.MustNewConstMetric(c.skills, prometheus.GaugeValue, float64(st.Unavailable), SkillsUnavailable)
	for kind, n := range st.Warm {
		ch <- prometheus.MustNewConstMetric(c.warm, prometheus.GaugeValue, float64(n), kind)
	}
}
