package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/metrics"
	"github.com/skillbox-dev/skillbox/runtime/store"
	"github.com/skillbox-dev/skillbox/signing"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

// Request is one call.
type Request struct {
	Skill  string
	Pin    string          // optional version or manifest digest
	Input  []byte          // JSON
	Caller string          // the authenticated identity, written to the audit log
	Limits manifest.Limits // lower limits the caller asks for; zero fields do not lower
}

// Result is a successful call.
type Result struct {
	CallID         string
	AuditID        string
	Version        string
	ManifestDigest string
	Output         []byte
	Logs           []byte
	Usage          isolation.Usage
	Egress         []isolation.EgressRecord
	Limits         isolation.Limits
}

// resolved is a skill ready to run: installed, verified, approved.
type resolved struct {
	entry    store.Entry
	approval *approval.Approval
	signer   string
}

// Invoke runs one call through the whole path. A refused or failed call is an *Error
// (or an *isolation.Error from the sandbox) carrying its reason; every call that got
// as far as the sandbox is in the audit log, and if its record cannot be written the
// call fails.
func (e *Engine) Invoke(ctx context.Context, req Request) (*Result, error) {
	// Metrics are labelled by installed skill names only, so a caller cannot mint
	// label values (series) by calling names that do not exist.
	// An approved name is known without asking the store (which lists and parses the
	// store's index: 3-4 % of a wasm call's CPU at 32 callers).
	label := req.Skill
	e.mu.RLock()
	approved := e.approvals[req.Skill] != nil
	e.mu.RUnlock()
	if !approved {
		if _, err := e.store.Lookup(req.Skill, ""); err != nil {
			label = unknownSkill
		}
	}
	done := e.metrics.CallStarted(label)
	res, err := e.invoke(ctx, req)
	outcome := metrics.OutcomeOK
	if err != nil {
		outcome = ReasonOf(err)
		err = e.recordRefusal(ctx, req, err)
	}
	done(outcome)
	return res, err
}

// recordRefusal writes an invoke.refused record for a call refused before it started
// (not installed, not approved, caller not allowed, invalid input, disabled, busy):
// refusals are what an operator looks for after an incident. Calls that started are
// already recorded by their invoke.end.
func (e *Engine) recordRefusal(ctx context.Context, req Request, err error) error {
	var ee *Error
	if errors.As(err, &ee) && (ee.AuditID != "" || ee.Reason == ReasonAuditFailed) {
		return err
	}
	if !errors.As(err, &ee) {
		return err // a sandbox error: the call started and has its invoke.end
	}
	skill := req.Skill
	if manifest.CheckName(skill) != nil {
		skill = "" // not a name: keep arbitrary caller bytes out of the record's fields
	}
	id, aerr := e.audit.Append(context.WithoutCancel(ctx), audit.Record{
		Event: EventInvokeRefused, Caller: req.Caller, Skill: skill, Outcome: "refused",
		Reason: ee.Reason, Details: map[string]any{"message": oneLine(ee.Error()), "pin": bounded(req.Pin, maxFieldBytes)},
	})
	if aerr != nil {
		return &Error{Reason: ReasonAuditFailed, Msg: "refusal not recorded", Err: aerr}
	}
	ee.AuditID = id
	return ee
}

func (e *Engine) invoke(ctx context.Context, req Request) (*Result, error) {
	if e.isDisabled(req.Skill) {
		return nil, errorf(ReasonDisabled, "%s is disabled", req.Skill)
	}
	r, err := e.resolve(ctx, req.Skill, req.Pin)
	if err != nil {
		return nil, err
	}
	if err := approval.CheckCaller(r.approval, req.Caller); err != nil {
		return nil, &Error{Reason: ReasonCallerNotAllowed, Err: err}
	}
	m := r.entry.Manifest
	if err := m.ValidateInput(req.Input); err != nil {
		return nil, schemaRefusal(ReasonInvalidInput, "input", req.Input, err)
	}
	limits, grant, err := approval.Effective(m, r.approval, req.Limits)
	if err != nil {
		// The caller's own limits (below a floor, negative) are bad input; anything else
		// is the operator's grant that no longer applies (a granted directory is gone).
		if le := (*approval.LimitsError)(nil); errors.As(err, &le) {
			return nil, &Error{Reason: ReasonInvalidInput, Msg: "invalid limits", Err: err}
		}
		return nil, &Error{Reason: ReasonNotApproved, Msg: "grant cannot be applied", Err: err}
	}
	sb, err := e.sandboxFor(m)
	if err != nil {
		return nil, err
	}
	release, err := e.acquire(ctx, req.Skill)
	if err != nil {
		return nil, err
	}
	defer release()

	call := isolation.Call{
		ID:     newCallID(),
		Skill:  isolation.Skill{Manifest: m, Dir: r.entry.Dir, Digest: r.entry.CodeDigest},
		Input:  req.Input,
		Grant:  grant,
		Limits: limits,
		// What the operator granted, for warm pools: a caller's lower limits must not
		// shape them.
		Granted: approval.EffectiveLimits(m.Limits, r.approval.Grant.Limits, manifest.Limits{}),
	}
	base := audit.Record{
		Caller:         req.Caller,
		Skill:          m.Name,
		Version:        m.Version,
		ManifestDigest: r.entry.ManifestDigest,
		CodeDigest:     r.entry.CodeDigest,
		CallID:         call.ID,
	}
	callCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fl := &inflight{id: call.ID, skill: m.Name, version: m.Version, caller: req.Caller,
		started: time.Now(), cancel: cancel, done: make(chan struct{})}
	// Registered before the disabled and shutdown re-checks so that a Disable or a
	// Shutdown racing with this call either refuses it here or cancels it below: never
	// neither.
	e.mu.Lock()
	e.calls[call.ID] = fl
	disabled, closing := e.disabled[m.Name], e.closing
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.calls, call.ID)
		e.mu.Unlock()
		close(fl.done)
	}()
	if disabled {
		return nil, errorf(ReasonDisabled, "%s is disabled", m.Name)
	}
	if closing {
		return nil, errorf(ReasonUnavailable, "the server is shutting down")
	}

	// invoke.start is queued, not synced: the invoke.end below is a durable append that
	// writes it first, so a call still costs one fsync wait, shared with its peers.
	// A crash mid-call can lose the start; the call's result is never returned
	// unrecorded.
	start := base
	start.Event = audit.EventInvokeStart
	if err := e.audit.Enqueue(ctx, start); err != nil {
		return nil, &Error{Reason: ReasonAuditFailed, Msg: "call not started: audit log", Err: err}
	}

	out, runErr := sb.Run(callCtx, call)
	if runErr == nil {
		if err := m.ValidateOutput(out.Output); err != nil {
			runErr = schemaRefusal(ReasonInvalidOutput, "output", out.Output, err)
		}
	}
	if runErr != nil && errors.Is(context.Cause(callCtx), errDisabled) {
		runErr = &Error{Reason: ReasonDisabled, Msg: fmt.Sprintf("%s was disabled during the call", m.Name)}
	}
	if err := shutdownError(callCtx); runErr != nil && err != nil {
		runErr = err
	}
	// The sandbox's guard keeps a bounded set of records (at most requests+1, never more
	// than egress.MaxRecords, each with bounded text); refusals beyond it are only
	// counted, and one summary record says how many. Metrics count every attempt.
	for range out.Usage.Requests {
		e.metrics.Egress(m.Name, true)
	}
	for range out.Usage.DeniedRequests {
		e.metrics.Egress(m.Name, false)
	}
	recordedDenials := 0
	for _, rec := range out.Egress {
		if !rec.Allowed {
			recordedDenials++
			denied := base
			denied.Event = audit.EventEgressDenied
			denied.Outcome = "denied"
			denied.Reason = string(denialReason(rec))
			denied.Details = map[string]any{"method": rec.Method, "url": rec.URL, "why": rec.Reason}
			// Written even if the caller has gone: the denial happened.
			if _, err := e.audit.Append(context.WithoutCancel(ctx), denied); err != nil {
				return nil, &Error{Reason: ReasonAuditFailed, Msg: "call not recorded", Err: err}
			}
		}
	}
	if more := out.Usage.DeniedRequests - recordedDenials; more > 0 {
		summary := base
		summary.Event = audit.EventEgressDenied
		summary.Outcome = "denied"
		summary.Reason = string(isolation.ReasonEgressDenied)
		if hitRequestLimit(out.Egress) {
			summary.Reason = string(isolation.ReasonRequests)
		}
		summary.Details = map[string]any{"count": more, "why": "further refused attempts, counted and not recorded one by one"}
		if _, err := e.audit.Append(context.WithoutCancel(ctx), summary); err != nil {
			return nil, &Error{Reason: ReasonAuditFailed, Msg: "call not recorded", Err: err}
		}
	}
	runErr = attributeDenial(runErr, out.Egress)
	if kind := budgetKind(isolation.ReasonOf(runErr)); runErr != nil && kind != "" {
		e.metrics.BudgetExhausted(m.Name, kind)
	} else if hitRequestLimit(out.Egress) {
		e.metrics.BudgetExhausted(m.Name, budgetKind(isolation.ReasonRequests))
	}

	end := base
	end.Event = audit.EventInvokeEnd
	end.Usage = audit.UsageOf(out.Usage)
	end.Outcome = "ok"
	if runErr != nil {
		end.Outcome = "error"
		end.Reason = ReasonOf(runErr)
		end.Details = map[string]any{"message": oneLine(runErr.Error())}
	}
	// The record is written with a context the caller cannot cancel: a call that ran
	// is recorded even if the caller has gone.
	id, err := e.audit.Append(context.WithoutCancel(ctx), end)
	if err != nil {
		return nil, &Error{Reason: ReasonAuditFailed, Msg: "call not recorded, so its result is withheld", Err: err}
	}
	if runErr != nil {
		var ee *Error
		if errors.As(runErr, &ee) {
			ee.AuditID = id
			return nil, ee
		}
		return nil, &Error{Reason: string(isolation.ReasonOf(runErr)), Err: runErr, AuditID: id}
	}
	return &Result{
		CallID:         call.ID,
		AuditID:        id,
		Version:        m.Version,
		ManifestDigest: r.entry.ManifestDigest,
		Output:         out.Output,
		Logs:           out.Logs,
		Usage:          out.Usage,
		Egress:         out.Egress,
		Limits:         limits,
	}, nil
}

// resolve finds the approved version of name, checks that the pin (if any) names it,
// and verifies it (once per manifest digest and trust policy).
func (e *Engine) resolve(ctx context.Context, name, pin string) (*resolved, error) {
	e.mu.RLock()
	a := e.approvals[name]
	e.mu.RUnlock()
	if a == nil {
		if _, err := e.store.Lookup(name, pin); errors.Is(err, store.ErrNotFound) {
			return nil, &Error{Reason: ReasonNotFound, Err: err}
		}
		return nil, errorf(ReasonNotApproved, "%s is not approved (skillbox approve %s)", name, name)
	}
	entry, err := e.store.Lookup(name, a.ManifestDigest)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errorf(ReasonNotFound, "%s: the approved version %s is not installed", name, a.ManifestDigest)
		}
		return nil, &Error{Reason: string(isolation.ReasonInternal), Err: err}
	}
	if pin != "" && pin != entry.Version && pin != entry.ManifestDigest {
		if _, err := e.store.Lookup(name, pin); errors.Is(err, store.ErrNotFound) {
			return nil, &Error{Reason: ReasonNotFound, Err: err}
		}
		return nil, errorf(ReasonNotApproved, "%s@%s is not the approved version (%s); review and approve it first", name, pin, entry.Version)
	}
	if err := approval.Check(entry.Manifest, entry.ManifestDigest, a); err != nil {
		return nil, &Error{Reason: ReasonNotApproved, Err: err}
	}
	signer, err := e.verify(ctx, entry)
	if err != nil {
		return nil, err
	}
	if err := approval.CheckSigner(a, signer); err != nil {
		return nil, &Error{Reason: ReasonNotApproved, Err: err}
	}
	return &resolved{entry: entry, approval: a, signer: signer}, nil
}

// verify checks an installed package against the trust policy, recomputing both
// digests from the files in the store. A success is cached by manifest digest until
// the next reload; the store never edits a package in place.
func (e *Engine) verify(ctx context.Context, entry store.Entry) (string, error) {
	e.mu.RLock()
	signer, ok := e.verified[entry.ManifestDigest]
	policy, perr := e.policy, e.policyErr
	e.mu.RUnlock()
	if ok {
		return signer, nil
	}
	if policy == nil {
		return "", &Error{Reason: ReasonVerifyFailed, Msg: "no trust policy", Err: perr}
	}
	id, err := verifyPackage(ctx, entry.Dir, entry.Manifest, policy)
	if err != nil {
		e.metrics.VerificationFailed(signing.CheckOf(err))
		return "", &Error{Reason: ReasonVerifyFailed, Msg: "verify " + entry.Name, Err: err}
	}
	e.mu.Lock()
	// Only if trust.yaml was not reloaded meanwhile: a result under the old policy must
	// not land in the new cache.
	if e.policy == policy {
		e.verified[entry.ManifestDigest] = id.Signer
	}
	e.mu.Unlock()
	return id.Signer, nil
}

// verifyPackage verifies the bundle in dir over the skill.yaml and code in dir.
func verifyPackage(ctx context.Context, dir string, m *manifest.Manifest, policy *signing.Policy) (*signing.Identity, error) {
	raw, err := os.ReadFile(filepath.Join(dir, skillpkg.ManifestFile))
	if err != nil {
		return nil, err
	}
	codeName, codeSum, err := skillpkg.CodeSubject(dir, m)
	if err != nil {
		return nil, err
	}
	bundle, err := os.ReadFile(filepath.Join(dir, skillpkg.BundleFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	mSum := skillpkg.ManifestDigest(raw)
	return signing.VerifySkill(ctx, bundle,
		signing.Subject{Name: skillpkg.ManifestFile, SHA256: mSum[len("sha256:"):]},
		signing.Subject{Name: codeName, SHA256: codeSum}, policy)
}

func (e *Engine) sandboxFor(m *manifest.Manifest) (isolation.Sandbox, error) {
	switch {
	case m.Sandbox.Wasm != nil && e.wasm != nil:
		return e.wasm, nil
	case m.Sandbox.Container != nil && e.container != nil:
		return e.container, nil
	case m.Sandbox.Container != nil:
		return nil, errorf(ReasonUnavailable, "%s needs the container sandbox, which is not available (is a Docker engine running?)", m.Name)
	}
	return nil, errorf(ReasonUnavailable, "%s needs the wasm sandbox, which is not available", m.Name)
}

// acquire takes one of the skill's concurrency slots, waiting at most queueWait.
func (e *Engine) acquire(ctx context.Context, skill string) (func(), error) {
	e.mu.Lock()
	ch := e.slots[skill]
	if ch == nil {
		ch = make(chan struct{}, e.maxConc)
		e.slots[skill] = ch
	}
	e.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	default:
	}
	t := time.NewTimer(e.queueWait)
	defer t.Stop()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-t.C:
		return nil, errorf(ReasonBusy, "%s is busy: %d calls in flight", skill, e.maxConc)
	case <-ctx.Done():
		return nil, &Error{Reason: string(isolation.ReasonCanceled), Err: ctx.Err()}
	}
}

func (e *Engine) isDisabled(name string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.disabled[name]
}

// attributeDenial names the likely cause of a skill that failed after one of its
// requests was refused: the caller then sees EGRESS_DENIED or REQUEST_LIMIT (with the
// URL) instead of a bare SKILL_FAILED. A skill that handled the denial and succeeded is
// not failed; the denial is in its egress records and the audit log either way.
func attributeDenial(runErr error, records []isolation.EgressRecord) error {
	if runErr == nil || isolation.ReasonOf(runErr) != isolation.ReasonSkillFailed {
		return runErr
	}
	for _, rec := range records {
		if rec.Allowed {
			continue
		}
		return &isolation.Error{Reason: denialReason(rec),
			Msg: fmt.Sprintf("the skill failed after %s %s was refused (%s)", rec.Method, rec.URL, rec.Reason), Err: runErr}
	}
	return runErr
}

func hitRequestLimit(records []isolation.EgressRecord) bool {
	for _, rec := range records {
		if rec.Denial == isolation.DenialRequestLimit {
			return true
		}
	}
	return false
}

// denialReason is the call failure reason a refused egress record stands for.
func denialReason(rec isolation.EgressRecord) isolation.Reason {
	if rec.Denial == isolation.DenialRequestLimit {
		return isolation.ReasonRequests
	}
	return isolation.ReasonEgressDenied
}
