package engine

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/metrics"
	"github.com/skillbox-dev/skillbox/runtime/runner"
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
	// Door names the way in ("grpc", "mcp", "cli"; empty for in-process calls),
	// recorded in the call's audit records as details.door and in the call metrics'
	// door label (metrics.DoorLocal when empty). Lowercase letters only, at most 16.
	Door string
	// Waiting, if set, is told once that the call waits for a person's decision (the
	// skill is under oversight), when its request is recorded and listed for approvers:
	// a door uses it to tell its caller why no answer comes yet. It must not block.
	Waiting func(PendingRequest)
}

// Result is a call's outcome (see runner.Result).
type Result = runner.Result

// resolved is a skill ready to run: installed, verified, approved.
type resolved struct {
	entry    store.Entry
	approval *approval.Approval
	signer   string
}

// Invoke runs one call through the whole path. A refused or failed call is an *Error
// (or an *isolation.Error from the sandbox) carrying its reason; every call that got
// as far as the sandbox is in the audit log, and if its record cannot be written the
// call fails. A call that ran and failed returns its Result too, without output: its
// call id, logs, usage and egress decisions; a refused call returns nil.
func (e *Engine) Invoke(ctx context.Context, req Request) (*Result, error) {
	// Metrics are labelled by installed skill names only, so a caller cannot mint
	// label values (series) by calling names that do not exist.
	// An approved name is known without asking the store.
	st := e.state.Load() // the operator's decisions, read once for the whole call
	label := req.Skill
	if st.approvals[req.Skill] == nil {
		if _, err := e.store.Lookup(req.Skill, ""); err != nil {
			label = unknownSkill
		}
	}
	done := e.metrics.CallStarted(label, doorName(req.Door))
	res, err := e.invoke(ctx, st, req)
	outcome := metrics.OutcomeOK
	if err != nil {
		outcome = string(ReasonOf(err))
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
	details := map[string]any{"message": oneLine(ee.Error()), "pin": bounded(req.Pin, maxFieldBytes)}
	if door := doorName(req.Door); door != "" {
		details["door"] = door
	}
	id, aerr := e.audit.Append(context.WithoutCancel(ctx), audit.Record{
		Event: EventInvokeRefused, Caller: req.Caller, Skill: skill, Outcome: "refused",
		Reason: string(ee.Reason), Details: details,
	})
	if aerr != nil {
		return &Error{Reason: ReasonAuditFailed, Msg: "refusal not recorded", Err: aerr}
	}
	ee.AuditID = id
	return ee
}

// checkRequest refuses what no skill could accept, whichever door the call came
// through: a missing or malformed name, and lower limits that are negative or below
// a floor (which a sandbox could read as "no limit"). The caller's bytes are not
// quoted back: the refusal goes to the audit log.
func checkRequest(req Request) error {
	if req.Skill == "" {
		return &Error{Reason: ReasonInvalidInput, Field: "name", Msg: "no skill name"}
	}
	if manifest.CheckName(req.Skill) != nil {
		return &Error{Reason: ReasonInvalidInput, Field: "name",
			Msg: "not a skill name: want lowercase letters, digits and hyphens, starting with a letter, at most 63"}
	}
	if err := manifest.CheckLowering(req.Limits, false, "limits"); err != nil {
		return &Error{Reason: ReasonInvalidInput, Field: "limits", Msg: "invalid limits", Err: &approval.LimitsError{Err: err}}
	}
	return nil
}

func (e *Engine) invoke(ctx context.Context, st *state, req Request) (*Result, error) {
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	if isDisabled(st, req.Skill) {
		return nil, e.disabledError(req.Skill)
	}
	r, err := e.resolve(ctx, st, req.Skill, req.Pin)
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
	// A grant of a directory holding skillbox's own state is refused at approval; one
	// written by hand, or whose host path has since become a link to it, is refused here.
	if err := approval.CheckHome(r.approval.Grant.Files, e.home, "grant"); err != nil {
		return nil, &Error{Reason: ReasonNotApproved, Msg: "grant cannot be applied", Err: err}
	}
	limits, grant, err := approval.Effective(m, r.approval, req.Limits)
	if err != nil {
		// The caller's own limits (below a floor, negative) are bad input; anything else
		// is the operator's grant that no longer applies (a granted directory is gone).
		if le := (*approval.LimitsError)(nil); errors.As(err, &le) {
			return nil, &Error{Reason: ReasonInvalidInput, Field: "limits", Msg: "invalid limits", Err: err}
		}
		return nil, &Error{Reason: ReasonNotApproved, Msg: "grant cannot be applied", Err: err}
	}
	sb, err := e.sandboxFor(m)
	if err != nil {
		return nil, err
	}
	callID := ""
	if r.approval.Grant.Oversight != nil {
		// Checked as any call; now a person decides. What runs, if allowed, is exactly
		// what was parked: the input bytes copied then, the limits computed then.
		p, err := e.awaitDecision(ctx, req, r, limits)
		if err != nil {
			return nil, err
		}
		req.Input, callID = p.view.Input, p.view.ID
		// Under the state of now: the package still verifies under today's trust.yaml
		// and the approval is the one decided under (checked again below, under the
		// lock a change is published under).
		if r2, err := e.resolve(ctx, e.state.Load(), req.Skill, req.Pin); err != nil {
			return nil, err
		} else if r2.entry.ManifestDigest != r.entry.ManifestDigest || !sameApproval(r2.approval, r.approval) {
			return nil, errorf(ReasonApprovalChanged, "the approval of %s changed after the call was allowed; call again", m.Name)
		}
	}
	release, err := e.acquire(ctx, req.Skill)
	if err != nil {
		return nil, err
	}
	defer release()
	if callID == "" {
		callID = newCallID()
	}

	call := isolation.Call{
		ID:     callID,
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
	rt := runtimeOf(sb)
	base.Details = callDetails(doorName(req.Door), rt)
	callCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fl := &inflight{id: call.ID, skill: m.Name, version: m.Version, caller: req.Caller,
		started: time.Now(), cancel: cancel, done: make(chan struct{})}
	// Registered before the disabled and shutdown re-checks so that a Disable or a
	// Shutdown racing with this call either refuses it here or cancels it below: never
	// neither. The state is read again here, not taken from st: a Disable since the
	// call began has published a new one.
	e.mu.Lock()
	e.calls[call.ID] = fl
	now := e.state.Load()
	disabled, closing := isDisabled(now, m.Name), e.closing
	changed := r.approval.Grant.Oversight != nil && !sameApproval(now.approvals[m.Name], r.approval)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.calls, call.ID)
		e.mu.Unlock()
		close(fl.done)
	}()
	if disabled {
		return nil, e.disabledError(m.Name)
	}
	if closing {
		return nil, errorf(ReasonUnavailable, "the server is shutting down")
	}
	if changed {
		return nil, errorf(ReasonApprovalChanged, "the approval of %s changed after the call was allowed; call again", m.Name)
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

	out, runErr := e.execute(callCtx, sb, call, false)
	if len(out.Egress) > 0 || out.Usage.DeniedRequests > 0 {
		if err := e.recordEgress(ctx, &base, &out); err != nil {
			return nil, err
		}
	}
	end := endRecord(&base, &out, runErr, doorName(req.Door), rt)
	// The record is written with a context the caller cannot cancel: a call that ran
	// is recorded even if the caller has gone.
	id, err := e.audit.Append(context.WithoutCancel(ctx), end)
	if err != nil {
		return nil, &Error{Reason: ReasonAuditFailed, Msg: "call not recorded, so its result is withheld", Err: err}
	}
	res := &Result{
		CallID:         call.ID,
		AuditID:        id,
		Version:        m.Version,
		ManifestDigest: r.entry.ManifestDigest,
		Output:         out.Output,
		Logs:           out.Logs,
		Usage:          out.Usage,
		Egress:         out.Egress,
		Limits:         limits,
	}
	if runErr != nil {
		// What the call left (its logs, usage and egress decisions) goes back with the
		// error: it is what the caller needs to see why. The output does not.
		res.Output = nil
		if ReasonOf(runErr) == ReasonDisabled {
			// The operator switched the skill off mid-call: nothing more of what it
			// wrote or fetched goes to the caller, only that it ran and for how long.
			res.Logs, res.Egress = nil, nil
		}
		var ee *Error
		if errors.As(runErr, &ee) {
			ee.AuditID = id
			return res, ee
		}
		return res, &Error{Reason: isolation.ReasonOf(runErr), Err: runErr, AuditID: id}
	}
	return res, nil
}

// recordEgress writes the egress records of a call that made requests. It is kept
// out of invoke, whose frame is on every call's stack: most calls make none.
func (e *Engine) recordEgress(ctx context.Context, base *audit.Record, out *isolation.Result) error {
	// The sandbox's guard keeps a bounded set of records (at most requests+1, never more
	// than egress.MaxRecords, each with bounded text); refusals beyond it are only
	// counted, and one summary record says how many.
	recordedDenials := 0
	for _, rec := range out.Egress {
		if !rec.Allowed {
			recordedDenials++
			denied := *base
			denied.Event = audit.EventEgressDenied
			denied.Outcome = "denied"
			denied.Reason = string(denialReason(rec))
			denied.Details = map[string]any{"method": rec.Method, "url": rec.URL, "why": rec.Reason}
			// Written even if the caller has gone: the denial happened.
			if _, err := e.audit.Append(context.WithoutCancel(ctx), denied); err != nil {
				return &Error{Reason: ReasonAuditFailed, Msg: "call not recorded", Err: err}
			}
		}
	}
	// Which brokered secret went with which request: by name, never the value.
	for _, rec := range out.Egress {
		if !rec.Allowed || len(rec.Secrets) == 0 {
			continue
		}
		sent := *base
		sent.Event = audit.EventEgressSecret
		sent.Outcome = "ok"
		sent.Details = map[string]any{"method": rec.Method, "url": rec.URL, "secrets": rec.Secrets, "status": rec.Status}
		if _, err := e.audit.Append(context.WithoutCancel(ctx), sent); err != nil {
			return &Error{Reason: ReasonAuditFailed, Msg: "call not recorded", Err: err}
		}
	}
	if more := out.Usage.DeniedRequests - recordedDenials; more > 0 {
		summary := *base
		summary.Event = audit.EventEgressDenied
		summary.Outcome = "denied"
		summary.Reason = string(isolation.ReasonEgressDenied)
		if hitRequestLimit(out.Egress) {
			summary.Reason = string(isolation.ReasonRequests)
		}
		summary.Details = map[string]any{"count": more, "why": "further refused attempts, counted and not recorded one by one"}
		if _, err := e.audit.Append(context.WithoutCancel(ctx), summary); err != nil {
			return &Error{Reason: ReasonAuditFailed, Msg: "call not recorded", Err: err}
		}
	}
	return nil
}

// endRecord is the invoke.end record of a call that ran.
func endRecord(base *audit.Record, out *isolation.Result, runErr error, door, rt string) audit.Record {
	end := *base
	end.Event = audit.EventInvokeEnd
	end.Usage = audit.UsageOf(out.Usage)
	end.Outcome = "ok"
	if runErr != nil {
		end.Outcome = "error"
		end.Reason = string(ReasonOf(runErr))
		end.Details = map[string]any{"message": oneLine(runErr.Error())}
		if door != "" {
			end.Details["door"] = door
		}
		if rt != "" {
			end.Details["runtime"] = rt
		}
	}
	if c := out.Usage.Compile; c > 0 {
		// The wait for the module's compilation, apart from usage.wallMs. A new map:
		// base's is shared with the start record.
		d := make(map[string]any, len(end.Details)+1)
		maps.Copy(d, end.Details)
		d["compileMs"] = c.Milliseconds()
		end.Details = d
	}
	return end
}

// resolve finds the approved version of name in st, checks that the pin (if any)
// names it, and verifies it (once per manifest digest and trust policy).
func (e *Engine) resolve(ctx context.Context, st *state, name, pin string) (*resolved, error) {
	a := st.approvals[name]
	if a == nil {
		if _, err := e.store.Lookup(name, pin); errors.Is(err, store.ErrNotFound) {
			return nil, &Error{Reason: ReasonNotFound, Err: err}
		}
		return nil, errorf(ReasonNotApproved, "%s is not approved (skillbox approve %s)", name, name)
	}
	p := st.pinned[name]
	if p.err != nil && p.entry.Manifest == nil {
		// Not in the store when the state was built: another process (skillbox install
		// beside a running server) may have installed it since, so look once more.
		if p = e.pin(a); p.err != nil && p.entry.Manifest == nil {
			return nil, p.err
		}
	}
	entry := p.entry
	if pin != "" && pin != entry.Version && pin != entry.ManifestDigest {
		if _, err := e.store.Lookup(name, pin); errors.Is(err, store.ErrNotFound) {
			return nil, &Error{Reason: ReasonNotFound, Err: err}
		}
		return nil, errorf(ReasonNotApproved, "%s@%s is not the approved version (%s); review and approve it first", name, pin, entry.Version)
	}
	if p.err != nil {
		return nil, p.err // approval.Check refused it when the state was built
	}
	signer, err := e.verify(ctx, st, entry)
	if err != nil {
		return nil, err
	}
	if err := approval.CheckSigner(a, signer); err != nil {
		return nil, &Error{Reason: ReasonNotApproved, Err: err}
	}
	return &resolved{entry: entry, approval: a, signer: signer}, nil
}

// verify checks an installed package against st's trust policy, recomputing both
// digests from the files in the store. A success is cached by manifest digest in st
// (until trust.yaml is reloaded); the store never edits a package in place.
func (e *Engine) verify(ctx context.Context, st *state, entry store.Entry) (string, error) {
	if signer, ok := st.verified.Load(entry.ManifestDigest); ok {
		return signer.(string), nil
	}
	if st.policy == nil {
		return "", &Error{Reason: ReasonVerifyFailed, Msg: "no trust policy", Err: st.policyErr}
	}
	id, err := verifyPackage(ctx, entry.Dir, entry.Manifest, st.policy)
	if err != nil {
		e.metrics.VerificationFailed(signing.CheckOf(err))
		return "", &Error{Reason: ReasonVerifyFailed, Msg: "verify " + entry.Name, Err: err}
	}
	// Into st's cache: if trust.yaml was reloaded meanwhile, the new state has its own
	// and never sees this result.
	st.verified.Store(entry.ManifestDigest, id.Signer)
	return id.Signer, nil
}

// verifyPackage verifies the bundle in dir over the skill.yaml and code in dir.
func verifyPackage(ctx context.Context, dir string, m *manifest.Manifest, policy *signing.Policy) (*signing.Identity, error) {
	manifestSubj, code, err := skillpkg.Subjects(dir, m)
	if err != nil {
		return nil, err
	}
	bundle, err := os.ReadFile(filepath.Join(dir, skillpkg.BundleFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return signing.VerifySkill(ctx, bundle, manifestSubj, code, policy)
}

// execute is the path every call shares, the operator's and the author's
// (runner.Runner.Execute).
func (c *core) execute(ctx context.Context, sb isolation.Sandbox, call isolation.Call, author bool) (isolation.Result, error) {
	return c.run.Execute(ctx, sb, call, author)
}

// sandboxFor is the sandbox registered for the skill's kind.
func (c *core) sandboxFor(m *manifest.Manifest) (isolation.Sandbox, error) {
	return c.run.SandboxFor(m)
}

// cutShort is why a call the engine cancelled failed: a shutdown, or the kill switch.
func cutShort(ctx context.Context, m *manifest.Manifest) error {
	if err := shutdownError(ctx); err != nil {
		return err
	}
	if cause := context.Cause(ctx); errors.Is(cause, errDisabled) {
		var dc *disabledCause
		errors.As(cause, &dc)
		return &Error{Reason: ReasonDisabled, Msg: disabledWords(m.Name+" was disabled during the call", dc.reasonOrNone())}
	}
	return nil
}

// acquire takes one of the skill's concurrency slots, waiting at most queueWait.
func (e *Engine) acquire(ctx context.Context, skill string) (func(), error) {
	v, ok := e.slots.Load(skill)
	if !ok {
		v, _ = e.slots.LoadOrStore(skill, make(chan struct{}, e.maxConc))
	}
	ch := v.(chan struct{})
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
		return nil, &Error{Reason: isolation.ReasonCanceled, Err: ctx.Err()}
	}
}

func hitRequestLimit(records []isolation.EgressRecord) bool { return runner.HitRequestLimit(records) }

func denialReason(rec isolation.EgressRecord) isolation.Reason { return runner.DenialReason(rec) }

// callDetails are the details of a call's records: its door and the sandbox's OCI
// runtime, if any (nil for neither). A fresh map per call: records that add to their
// details never share one.
func callDetails(door, rt string) map[string]any {
	if door == "" && rt == "" {
		return nil
	}
	d := make(map[string]any, 2)
	if door != "" {
		d["door"] = door
	}
	if rt != "" {
		d["runtime"] = rt
	}
	return d
}

// doorName is a door's name as recorded: a short word of lowercase letters, else
// nothing (a door names itself; this only keeps the record's field well-formed).
func doorName(d string) string {
	if len(d) == 0 || len(d) > 16 {
		return ""
	}
	for _, c := range d {
		if c < 'a' || c > 'z' {
			return ""
		}
	}
	return d
}

// runtimeOf is the OCI runtime a sandbox runs its calls under (the container
// sandbox's, e.g. runsc), recorded with each call; "" for a sandbox without one.
func runtimeOf(sb isolation.Sandbox) string {
	if r, ok := sb.(interface{ Runtime() string }); ok {
		return r.Runtime()
	}
	return ""
}
