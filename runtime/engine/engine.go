// Package engine is skillbox's call path, one way through: resolve the skill in the
// store, verify it (cached by digest), check the approval and the caller, validate the
// input, compute the budget min(manifest, approval, caller), run it in a sandbox,
// validate the output, record it in the audit log and the metrics. It also owns the
// operator's actions that change what may run: install, approve, disable, enable,
// reload. The CLI and the gRPC service drive it; it knows no flag and no terminal.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/metrics"
	"github.com/skillbox-dev/skillbox/runtime/runner"
	"github.com/skillbox-dev/skillbox/runtime/store"
	"github.com/skillbox-dev/skillbox/signing"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxConcurrent = 64
	DefaultQueueWait     = 2 * time.Second
)

// Config is what an Engine is opened with.
type Config struct {
	// Home is $SKILLBOX_HOME: trust.yaml, skills/, approvals/, audit/, disabled/.
	Home string
	// Sandboxes run the calls, by kind (manifest.KindWasm, manifest.KindContainer): a
	// skill runs in the sandbox registered under its manifest's sandbox kind, and one
	// whose kind has none is refused with UNAVAILABLE. A sandbox may also implement
	// isolation.Preparer (run at install on the staged package) and isolation.Drainer
	// (run when a skill is disabled or re-approved). The engine never switches on the
	// kind: a new sandbox is one more entry here.
	Sandboxes map[string]isolation.Sandbox
	// Metrics receives call, egress, budget and verification counts; nil makes one.
	Metrics *metrics.Metrics
	// MaxConcurrent bounds the calls in flight per skill; a call waits at most
	// QueueWait for a slot, then fails with BUSY.
	MaxConcurrent int
	QueueWait     time.Duration
	// NoApprovers says that no approver can reach this engine (`skillbox run NAME`
	// opens one for a single call, with no door an approver could decide through): a
	// call of a skill under oversight is refused at once with UNAVAILABLE rather than
	// waiting out its wait for a decision nobody can make.
	NoApprovers bool
	// AuditCommitDelay bounds how long a batch of audit records may wait for more
	// concurrent calls' records before one fsync makes them all durable (see
	// audit.WithCommitDelay: a lone call never waits). Zero means
	// DefaultAuditCommitDelay; negative means never wait.
	AuditCommitDelay time.Duration
}

// DefaultAuditCommitDelay is Config.AuditCommitDelay's default, and
// MaxAuditCommitDelay the longest allowed: past it a batch's wait would be felt as
// latency by every call in it, for no fewer fsyncs.
const (
	DefaultAuditCommitDelay = 5 * time.Millisecond
	MaxAuditCommitDelay     = 100 * time.Millisecond
)

// Engine is safe for concurrent use.
type Engine struct {
	core
	home      string
	store     *store.Store
	audit     *audit.Log
	maxConc   int
	queueWait time.Duration

	// state is what calls read, once each; see state. It is replaced whole, under mu.
	state atomic.Pointer[state]
	slots sync.Map // skill name → chan struct{}: its concurrency slots

	// mu serializes the changes of state and guards calls: a call registers under it
	// and a Disable swaps the state and cancels calls under it (see invoke).
	mu      sync.Mutex
	calls   map[string]*inflight
	closing bool // Shutdown was called: new calls are refused
	// watchers are told of every published state (Watch); guarded by mu.
	watchers map[chan struct{}]struct{}
	// pending are the calls waiting for a person's decision, by request id, and
	// pendingWatchers those told of their changes (see oversight.go); guarded by mu.
	pending          map[string]*pendingCall
	pendingWatchers  map[chan struct{}]struct{}
	approvalsStopped bool         // StopApprovals was called: no new request is parked
	noApprovers      bool         // Config.NoApprovers
	peers            PendingPeers // other replicas' pending requests (peers.go); guarded by mu

}

type inflight struct {
	id, skill, version, caller string
	started                    time.Time
	cancel                     context.CancelCauseFunc
	done                       chan struct{}
}

// errDisabled is the cancellation cause of calls ended by the kill switch: a
// *disabledCause, which carries the operator's reason, is one.
var errDisabled = errors.New("skill disabled by the operator")

// disabledCause is the cancellation cause Disable gives the calls it ends.
type disabledCause struct{ reason string }

func (c *disabledCause) Error() string        { return errDisabled.Error() }
func (c *disabledCause) Is(target error) bool { return target == errDisabled }

// reasonOrNone is c's reason; "" for a nil c.
func (c *disabledCause) reasonOrNone() string {
	if c == nil {
		return ""
	}
	return c.reason
}

// disabledWords is what a caller is told of a kill switch: what happened to the call,
// then the operator's reason, if one was given (Disable made it one bounded line).
func disabledWords(what, reason string) string {
	if reason == "" {
		return what
	}
	return what + ": " + reason
}

// Open opens the skill home, its store and audit log, and loads trust.yaml, the
// approvals and the kill-switch state.
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Home == "" {
		return nil, errors.New("engine: no skill home")
	}
	if cfg.AuditCommitDelay > MaxAuditCommitDelay {
		return nil, fmt.Errorf("engine: audit commit delay %v: at most %v", cfg.AuditCommitDelay, MaxAuditCommitDelay)
	}
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	st, err := store.Open(cfg.Home)
	if err != nil {
		return nil, err
	}
	c := newCore(cfg.Sandboxes, cfg.Metrics)
	delay := cfg.AuditCommitDelay
	switch {
	case delay == 0:
		delay = DefaultAuditCommitDelay
	case delay < 0:
		delay = 0
	}
	log, err := audit.Open(audit.Dir(cfg.Home), audit.WithObserver(c.metrics.AuditAppended), audit.WithCommitDelay(delay))
	if err != nil {
		return nil, err // "audit log PATH: …", as the operator knows it
	}
	e := &Engine{
		home:      cfg.Home,
		store:     st,
		audit:     log,
		core:      c,
		maxConc:   cfg.MaxConcurrent,
		queueWait: cfg.QueueWait,

		noApprovers: cfg.NoApprovers,
		calls:       map[string]*inflight{},
		watchers:    map[chan struct{}]struct{}{},

		pending:         map[string]*pendingCall{},
		pendingWatchers: map[chan struct{}]struct{}{},
	}
	if e.maxConc <= 0 {
		e.maxConc = DefaultMaxConcurrent
	}
	if e.queueWait <= 0 {
		e.queueWait = DefaultQueueWait
	}
	if err := e.load(); err != nil {
		log.Close()
		return nil, err
	}
	e.metrics.PrepareVerification(signing.Checks()...)
	e.metrics.Watch(e.status)
	return e, nil
}

// status is what the metrics report at each scrape: the skills by state and the idle
// warm instances of each sandbox.
func (e *Engine) status() metrics.Status {
	st := e.state.Load()
	out := metrics.Status{Disabled: len(st.disabled), Warm: map[string]int{}}
	for _, p := range st.pinned {
		if p.err == nil {
			out.Approved++
		} else {
			out.Unavailable++
		}
	}
	if entries, err := e.store.List(); err == nil {
		names := map[string]bool{}
		for _, ent := range entries {
			names[ent.Name] = true
		}
		out.Installed = len(names)
	}
	for kind, sb := range e.sandboxes {
		n := 0
		if w, ok := sb.(isolation.Warmer); ok {
			n = w.Warm()
		}
		out.Warm[kind] = n
	}
	return out
}

// core is what every call needs, verified or not: the sandboxes by kind and the
// metrics. Engine and Author share it, and with it execute.
type core struct {
	sandboxes map[string]isolation.Sandbox // by kind; never changed after it is made
	metrics   *metrics.Metrics
	run       *runner.Runner // the path every call takes once it has a sandbox
}

func newCore(sandboxes map[string]isolation.Sandbox, m *metrics.Metrics) core {
	if m == nil {
		m = metrics.New()
	}
	return core{sandboxes: maps.Clone(sandboxes), metrics: m, run: runner.New(sandboxes, m, cutShort)}
}

// Home is the skill home the engine was opened on.
func (e *Engine) Home() string { return e.home }

// Metrics is the engine's metrics, for serving.
func (e *Engine) Metrics() *metrics.Metrics { return e.metrics }

// AuditPath is the audit log file.
func (e *Engine) AuditPath() string { return e.audit.Path() }

// TrustPath is the trust policy file.
func (e *Engine) TrustPath() string { return TrustFile(e.home) }

// TrustFile is the trust policy file of home, the one the engine loads.
func TrustFile(home string) string { return filepath.Join(home, "trust.yaml") }

// state is the operator's decisions as a call needs them, immutable once published:
// built at open, install, approve, disable, enable and reload, and swapped whole, so
// that a call reads it once, without a lock, and never sees half of a change.
type state struct {
	policy    *signing.Policy               // nil when trust.yaml is missing: nothing verifies
	policyErr error                         // why policy is nil
	approvals map[string]*approval.Approval // by skill name, as loaded
	// pinned is, by skill name, the store entry its approval pins, already checked
	// against it (approval.Check), or the refusal a call gets.
	pinned map[string]pinned
	// disabled is, by skill name, the kill switches on, each with the operator's
	// reason (one bounded line, "" for none): callers are told it.
	disabled map[string]string
	// verified caches manifest digest → signer for packages that verified under this
	// policy. It is shared by the states that keep the policy and replaced with it, so a
	// result under an old trust.yaml never serves a call under a new one.
	verified *sync.Map
}

// pinned is an approval resolved against the store.
type pinned struct {
	entry store.Entry
	err   error // *Error: NOT_FOUND, NOT_APPROVED or INTERNAL
}

// with returns a copy of st to change: the maps that callers change are copied, the
// rest is shared (never written after publishing).
func (st *state) with() *state {
	c := *st
	c.approvals = maps.Clone(st.approvals)
	c.disabled = maps.Clone(st.disabled)
	return &c
}

// load reads trust.yaml, the approvals and the disabled set and, only if all of them
// are good, makes them the engine's state (see readState).
func (e *Engine) load() error {
	st, err := e.readState()
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.readDisabled(st); err != nil {
		return err
	}
	e.publish(st)
	return nil
}

// publish resolves st's approvals against the store and makes st the state calls read.
// The caller holds e.mu, so that changes do not overwrite each other.
func (e *Engine) publish(st *state) {
	st.pinned = make(map[string]pinned, len(st.approvals))
	for name, a := range st.approvals {
		st.pinned[name] = e.pin(a)
		// Series at zero for what an operator alerts on; approvals bound them.
		e.metrics.PrepareSkill(name)
	}
	e.state.Store(st)
	if len(e.pending) > 0 {
		e.endChangedPending(st)
	}
	for ch := range e.watchers {
		select {
		case ch <- struct{}{}:
		default: // a change is already pending: the watcher reads the newest state
		}
	}
}

// Watch tells the caller when what may run has changed (install, approve, disable,
// enable, reload): the channel receives after each change, changes coalescing while
// one is pending, so a watcher re-reads the state (List) and never falls behind. A
// door keeps its list of skills in step this way; the engine knows nothing of doors.
// stop ends the watch.
func (e *Engine) Watch() (changed <-chan struct{}, stop func()) {
	ch := make(chan struct{}, 1)
	e.mu.Lock()
	e.watchers[ch] = struct{}{}
	e.mu.Unlock()
	return ch, func() {
		e.mu.Lock()
		delete(e.watchers, ch)
		e.mu.Unlock()
	}
}

// pin finds the store entry an approval pins and checks the approval against it.
func (e *Engine) pin(a *approval.Approval) pinned {
	entry, err := e.store.Lookup(a.Skill, a.ManifestDigest)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return pinned{err: errorf(ReasonNotFound, "%s: the approved version %s is not installed", a.Skill, a.ManifestDigest)}
		}
		return pinned{err: &Error{Reason: isolation.ReasonInternal, Err: err}}
	}
	if err := approval.Check(entry.Manifest, entry.ManifestDigest, a); err != nil {
		return pinned{entry: entry, err: &Error{Reason: ReasonNotApproved, Err: err}}
	}
	return pinned{entry: entry}
}

// readState reads and validates trust.yaml and the approvals (the kill-switch set is
// read under the lock, by readDisabled), changing nothing. A trust.yaml that is present
// but cannot be used, and a bad approval file, are errors that name the file and what
// is wrong: serving with half the operator's decisions (or with none of its signers, so
// that every call fails verification while the skills look enabled) is worse than not
// starting, or than keeping the state a reload would replace. A missing trust.yaml is not an error: the
// engine then trusts no signer, and nothing installs or runs until there is one.
func (e *Engine) readState() (*state, error) {
	st := &state{verified: &sync.Map{}} // trust may have changed: verify again
	if _, err := os.Stat(e.TrustPath()); errors.Is(err, os.ErrNotExist) {
		st.policyErr = errors.New("the file does not exist")
	} else if st.policy, err = signing.LoadPolicy(e.TrustPath()); err != nil {
		return nil, fmt.Errorf("trust policy: %w", err)
	}
	st.approvals = map[string]*approval.Approval{}
	dir := approval.Dir(e.home)
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("approvals: %w", err)
	}
	for _, ent := range ents {
		name, ok := strings.CutSuffix(ent.Name(), ".yaml")
		if !ok || name == "" || ent.IsDir() {
			continue
		}
		a, err := approval.Load(filepath.Join(dir, ent.Name()))
		if err != nil {
			return nil, fmt.Errorf("approvals: %w", err)
		}
		if a.Skill != name {
			return nil, fmt.Errorf("approvals: %s approves %q, not %q", ent.Name(), a.Skill, name)
		}
		st.approvals[name] = a
	}
	return st, nil
}

// readDisabled fills in st's kill-switch set from the store. The caller holds e.mu, the
// lock Disable and Enable write under: a set read before it could undo a switch
// thrown while the rest of the state was being read.
func (e *Engine) readDisabled(st *state) error {
	disabled, err := e.store.DisabledSet()
	if err != nil {
		return err
	}
	st.disabled = make(map[string]string, len(disabled))
	for n, d := range disabled {
		st.disabled[n] = oneLine(d.Reason) // a marker's file may have been edited by hand
	}
	return nil
}

// Reload re-reads trust.yaml, the approvals and the disabled set, and records it. If
// anything it reads is wrong (a broken trust.yaml, a bad approval, an unreadable store)
// it changes nothing, records the failure and returns an error saying what is wrong.
func (e *Engine) Reload(ctx context.Context, by string) (int, error) {
	n, err := e.reload(ctx)
	if err != nil {
		_, _ = e.audit.Append(context.WithoutCancel(ctx), audit.Record{Event: audit.EventReload, Caller: by, Outcome: "failed",
			Details: map[string]any{"message": oneLine(err.Error())}})
		return 0, fmt.Errorf("reload (the previous state is kept): %w", err)
	}
	if _, err := e.audit.Append(ctx, audit.Record{Event: audit.EventReload, Caller: by, Outcome: "ok"}); err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	return n, nil
}

func (e *Engine) reload(ctx context.Context) (int, error) {
	st, err := e.readState()
	if err != nil {
		return 0, err
	}
	entries, err := e.store.List()
	if err != nil {
		return 0, err
	}
	e.mu.Lock()
	if err := e.readDisabled(st); err != nil {
		e.mu.Unlock()
		return 0, err
	}
	e.publish(st)
	e.mu.Unlock()
	// Approvals may have changed (a narrowed grant, a new version): warm instances made
	// for the old ones must not serve another call.
	drained := map[string]bool{}
	for _, ent := range entries {
		if !drained[ent.Name] {
			drained[ent.Name] = true
			e.drain(ctx, ent.Name)
		}
	}
	return len(entries), nil
}

// Close ends the engine: the audit log is closed. Sandboxes belong to the caller.
func (e *Engine) Close() error { return e.audit.Close() }

func newCallID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// DisabledReason reports whether name's kill switch is on now, and the reason it was
// switched on with: what a disable is about to replace, or an enable to lift.
// A switch written to the skill home that this engine has not read yet (an offline
// disable while it ran, before a reload) counts too.
func (e *Engine) DisabledReason(name string) (reason string, disabled bool) {
	if reason, disabled = e.state.Load().disabled[name]; disabled {
		return reason, true
	}
	if d, _ := e.store.IsDisabled(name); d != nil {
		return oneLine(d.Reason), true
	}
	return "", false
}

// isDisabled reports whether st has name's kill switch on.
func isDisabled(st *state, name string) bool {
	_, off := st.disabled[name]
	return off
}
