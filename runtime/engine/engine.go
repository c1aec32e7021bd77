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
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/metrics"
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
	// Wasm and Container run the calls; either may be nil, and a skill needing a
	// missing one is refused with UNAVAILABLE.
	Wasm      isolation.Sandbox
	Container isolation.Sandbox
	// Metrics receives call, egress, budget and verification counts; nil makes one.
	Metrics *metrics.Metrics
	// MaxConcurrent bounds the calls in flight per skill; a call waits at most
	// QueueWait for a slot, then fails with BUSY.
	MaxConcurrent int
	QueueWait     time.Duration
}

// Engine is safe for concurrent use.
type Engine struct {
	home      string
	store     *store.Store
	audit     *audit.Log
	metrics   *metrics.Metrics
	wasm      isolation.Sandbox
	container isolation.Sandbox
	maxConc   int
	queueWait time.Duration

	mu        sync.RWMutex
	policy    *signing.Policy               // nil when trust.yaml is missing: nothing verifies
	policyErr error                         // why policy is nil
	approvals map[string]*approval.Approval // by skill name
	disabled  map[string]bool
	verified  map[string]string // manifest digest → signer, for packages that verified
	slots     map[string]chan struct{}
	calls     map[string]*inflight
	closing   bool // Shutdown was called: new calls are refused
}

type inflight struct {
	id, skill, version, caller string
	started                    time.Time
	cancel                     context.CancelCauseFunc
	done                       chan struct{}
}

// errDisabled is the cancellation cause of calls ended by the kill switch.
var errDisabled = errors.New("skill disabled by the operator")

// Open opens the skill home, its store and audit log, and loads trust.yaml, the
// approvals and the kill-switch state.
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Home == "" {
		return nil, errors.New("engine: no skill home")
	}
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	st, err := store.Open(cfg.Home)
	if err != nil {
		return nil, err
	}
	log, err := audit.Open(filepath.Join(cfg.Home, "audit"))
	if err != nil {
		return nil, fmt.Errorf("engine: audit log: %w", err)
	}
	e := &Engine{
		home:      cfg.Home,
		store:     st,
		audit:     log,
		metrics:   cfg.Metrics,
		wasm:      cfg.Wasm,
		container: cfg.Container,
		maxConc:   cfg.MaxConcurrent,
		queueWait: cfg.QueueWait,
		slots:     map[string]chan struct{}{},
		calls:     map[string]*inflight{},
	}
	if e.metrics == nil {
		e.metrics = metrics.New()
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
	return e, nil
}

// Home is the skill home the engine was opened on.
func (e *Engine) Home() string { return e.home }

// Metrics is the engine's metrics, for serving.
func (e *Engine) Metrics() *metrics.Metrics { return e.metrics }

// AuditPath is the audit log file.
func (e *Engine) AuditPath() string { return e.audit.Path() }

// TrustPath is the trust policy file.
func (e *Engine) TrustPath() string { return filepath.Join(e.home, "trust.yaml") }

// state is what load reads from the skill home; it replaces the engine's only whole.
type state struct {
	policy    *signing.Policy
	policyErr error
	approvals map[string]*approval.Approval
	disabled  map[string]bool
}

// load reads trust.yaml, the approvals and the disabled set and, only if all of them
// are good, makes them the engine's state (see readState).
func (e *Engine) load() error {
	st, err := e.readState()
	if err != nil {
		return err
	}
	e.apply(st)
	return nil
}

// apply makes st the engine's state, all at once.
func (e *Engine) apply(st *state) {
	e.mu.Lock()
	e.policy, e.policyErr = st.policy, st.policyErr
	e.approvals = st.approvals
	e.disabled = st.disabled
	e.verified = map[string]string{} // trust may have changed: verify again
	e.mu.Unlock()
}

// readState reads and validates everything the engine takes from the skill home,
// changing nothing. A trust.yaml that is present but cannot be used, and a bad approval
// file, are errors that name the file and what is wrong: serving with half the
// operator's decisions (or with none of its signers, so that every call fails
// verification while the skills look enabled) is worse than not starting, or than
// keeping the state a reload would replace. A missing trust.yaml is not an error: the
// engine then trusts no signer, and nothing installs or runs until there is one.
func (e *Engine) readState() (*state, error) {
	st := &state{}
	if _, err := os.Stat(e.TrustPath()); errors.Is(err, os.ErrNotExist) {
		st.policyErr = errors.New("the file does not exist")
	} else if st.policy, err = signing.LoadPolicy(e.TrustPath()); err != nil {
		return nil, fmt.Errorf("trust policy: %w", err)
	}
	st.approvals = map[string]*approval.Approval{}
	dir := filepath.Join(e.home, "approvals")
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
	disabled, err := e.store.DisabledSet()
	if err != nil {
		return nil, err
	}
	st.disabled = make(map[string]bool, len(disabled))
	for n := range disabled {
		st.disabled[n] = true
	}
	return st, nil
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
	e.apply(st)
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
