package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/review"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/metrics"
)

// Per-call oversight: a call of a skill whose grant has an oversight section is checked
// as any other (signature, approval, caller, input, limits) and then parked as a
// pending request, bound to exactly that call: the skill's digests, the input bytes
// (copied), the caller and the effective limits. It runs only if one of the grant's
// approvers, not its own caller, allows that request before it expires. Everything
// else ends it refused, nothing run: a denial (APPROVAL_DENIED), the wait running out
// (APPROVAL_EXPIRED), the kill switch (DISABLED), a changed approval (APPROVAL_CHANGED),
// a shutdown (UNAVAILABLE), the caller gone (CANCELED).

// Audit events of per-call oversight. Each pending request has one requested record
// and exactly one of allowed, denied, expired or ended (with the reason); an allowed
// request then has the invoke records of its run, under the same call id.
const (
	EventApprovalRequested = "approval.requested"
	EventApprovalAllowed   = "approval.allowed"
	EventApprovalDenied    = "approval.denied"
	EventApprovalExpired   = "approval.expired"
	EventApprovalEnded     = "approval.ended"
	// EventApprovalRefused is a decision that was refused (not an approver, the
	// caller's own call, no such request): the request, if any, still waits.
	EventApprovalRefused = "approval.refused"
)

// PendingRequest is one call waiting for a decision, as an approver sees it. Every
// field is fixed when the call is parked; what runs, if allowed, is exactly this.
type PendingRequest struct {
	ID             string // also the call id of its run and of its audit records
	Skill          string
	Version        string
	ManifestDigest string
	CodeDigest     string
	Signer         string
	Caller         string
	Door           string // the way the call came in ("grpc", "mcp"; empty in-process)
	// Input is the exact input that runs if the request is allowed (a copy: never
	// change it), InputSHA256 its hex sha256.
	Input       []byte
	InputSHA256 string
	Limits      isolation.Limits // the call's effective limits
	Approvers   []string
	Reason      string // the operator's note from the grant, shown to approvers
	// Review is the grant in plain words: what the skill can reach, touch and receive
	// under this approval, its limits, risk notes and oversight.
	Review    string
	Requested time.Time
	Expires   time.Time
	// Digest binds everything above: sha256 over the id, the digests, the caller, the
	// input's sha256, the limits and the expiry. A decision may name it, so that what
	// an approver saw is what is decided.
	Digest string
	// Replica is the server holding the request when another replica does (see
	// SetPendingPeers); "" for a request parked on this one.
	Replica string
}

// TimeLeft is how long the request may still wait at now.
func (p PendingRequest) TimeLeft(now time.Time) time.Duration {
	return max(p.Expires.Sub(now), 0)
}

// Decision is an approver's answer to one pending request.
type Decision struct {
	ID    string
	By    string // the approver's authenticated identity
	Allow bool
	// Reason is why: shown to the caller on a denial (required then) and recorded.
	Reason string
	// Digest, when set, must be the request's Digest: the decision is about the
	// request the approver was shown, not another under the same id.
	Digest string
	// Via is the replica that took the decision and relayed it here (runtime/replica);
	// recorded with it. "" when taken on this server.
	Via string
}

// pendingCall is a parked call. view and the fields before ended never change after
// it is made; outcome is written once, under e.mu, before ended is closed.
type pendingCall struct {
	view     PendingRequest
	approval *approval.Approval // the approval the call was admitted under
	listed   bool               // recorded and visible to approvers; guarded by e.mu
	ended    chan struct{}
	outcome  outcome
	recorded chan error    // the waiter's record of the outcome, for Decide; buffered
	settled  chan struct{} // closed once the waiter is done with the request
}

// outcome is how a pending request ended.
type outcome struct {
	allow  bool
	by     string // the approver, for a decision
	reason string // the approver's words, for a decision
	door   string // the way the decision came in (WithDoor), for a decision
	via    string // the replica that relayed the decision, if another took it
	event  string
	label  string // metrics.Approval*
	err    *Error // the refusal, when not allowed
}

// awaitDecision parks a checked call of a skill under oversight until it is decided or
// ends, and returns its request (whose id the run takes) if an approver allowed it.
func (e *Engine) awaitDecision(ctx context.Context, req Request, r *resolved, limits isolation.Limits) (*pendingCall, error) {
	m := r.entry.Manifest
	o := r.approval.Grant.Oversight
	now := time.Now()
	input := bytes.Clone(req.Input) // the caller's slice may change; this may not
	sum := sha256.Sum256(input)
	p := &pendingCall{
		view: PendingRequest{
			ID: newCallID(), Skill: m.Name, Version: m.Version,
			ManifestDigest: r.entry.ManifestDigest, CodeDigest: r.entry.CodeDigest, Signer: r.signer,
			Caller: req.Caller, Door: doorName(req.Door),
			Input: input, InputSHA256: hex.EncodeToString(sum[:]), Limits: limits,
			Approvers: slices.Clone(o.Approvers), Reason: o.Reason,
			Review:    grantWords(r, limits),
			Requested: now, Expires: now.Add(o.WaitBound()),
		},
		approval: r.approval,
		ended:    make(chan struct{}),
		recorded: make(chan error, 1),
		settled:  make(chan struct{}),
	}
	defer close(p.settled)
	p.view.Digest = bindingDigest(&p.view)

	e.mu.Lock()
	st := e.state.Load()
	var refusal *Error
	switch {
	case e.closing || e.approvalsStopped:
		refusal = errorf(ReasonUnavailable, "the server is shutting down")
	case e.noApprovers:
		refusal = &Error{Reason: ReasonUnavailable, Msg: m.Name + " needs an approver's decision for each call", Err: ErrNoApprovers}
	case !o.DecidableFor(req.Caller):
		// No one could ever allow it: refused now, not after the whole wait.
		refusal = errorf(ReasonCallerNotAllowed, "%s is the only approver of %s, and no caller may decide its own call: the operator must name another approver", req.Caller, m.Name)
	case isDisabled(st, m.Name):
		refusal = &Error{Reason: ReasonDisabled, Msg: disabledWords(m.Name+" is disabled by the operator", st.disabled[m.Name])}
	case !sameApproval(st.approvals[m.Name], r.approval):
		refusal = errorf(ReasonApprovalChanged, "the approval of %s changed while the call was checked; call again", m.Name)
	case e.pendingOf(m.Name) >= e.maxConc:
		refusal = errorf(ReasonBusy, "%s is busy: %d calls already wait for a decision", m.Name, e.maxConc)
	}
	if refusal != nil {
		e.mu.Unlock()
		return nil, refusal
	}
	e.pending[p.view.ID] = p
	e.mu.Unlock()

	base := audit.Record{Caller: req.Caller, Skill: m.Name, Version: m.Version, ManifestDigest: r.entry.ManifestDigest,
		CodeDigest: r.entry.CodeDigest, CallID: p.view.ID}
	rec := base
	rec.Event, rec.Outcome = EventApprovalRequested, "pending"
	rec.Details = map[string]any{"inputSha256": p.view.InputSHA256, "approvers": p.view.Approvers,
		"expires": p.view.Expires.UTC().Format(time.RFC3339Nano), "digest": p.view.Digest}
	if p.view.Door != "" {
		rec.Details["door"] = p.view.Door
	}
	// Durable before any approver sees it: a decision is never about an unrecorded call.
	if _, err := e.audit.Append(context.WithoutCancel(ctx), rec); err != nil {
		e.end(p, outcome{})
		return nil, &Error{Reason: ReasonAuditFailed, Msg: "the request for a decision could not be recorded", Err: err}
	}
	ended := e.metrics.ApprovalRequested(m.Name)
	e.mu.Lock()
	_, listed := e.pending[p.view.ID]
	if listed {
		p.listed = true
		e.notifyPending()
	}
	e.mu.Unlock()
	if listed && req.Waiting != nil {
		req.Waiting(p.view) // a copy; its Input must not be changed
	}

	timer := time.NewTimer(time.Until(p.view.Expires))
	defer timer.Stop()
	select {
	case <-p.ended:
	case <-timer.C:
		e.end(p, outcome{event: EventApprovalExpired, label: metrics.ApprovalExpired,
			err: errorf(ReasonApprovalExpired, "no approver decided the call of %s within %s", m.Name, manifest.Duration(o.WaitBound()))})
	case <-ctx.Done():
		e.end(p, outcome{event: EventApprovalEnded, label: metrics.ApprovalEnded,
			err: &Error{Reason: isolation.ReasonCanceled, Msg: "the caller went away while the call waited for a decision", Err: ctx.Err()}})
	}
	oc := p.outcome // set before ended was closed
	ended(oc.label)

	rec = base
	rec.Event = oc.event
	waited := time.Since(p.view.Requested)
	rec.Details = map[string]any{"waitedMs": waited.Milliseconds()}
	if oc.by != "" {
		rec.Caller = oc.by // who decided; the call's caller is in the requested record
		rec.Details["caller"] = req.Caller
		rec.Details["reason"] = oc.reason
		if oc.door != "" {
			rec.Details["door"] = oc.door // the decision's; the call's is in the requested record
		}
		if oc.via != "" {
			rec.Details["via"] = oc.via
		}
	}
	if oc.allow {
		rec.Outcome = "allowed"
	} else {
		rec.Outcome, rec.Reason = "refused", string(oc.err.Reason)
		rec.Details["message"] = oneLine(oc.err.Error())
	}
	id, err := e.audit.Append(context.WithoutCancel(ctx), rec)
	p.recorded <- err
	if err != nil {
		return nil, &Error{Reason: ReasonAuditFailed, Msg: "the decision could not be recorded, so the call does not run", Err: err}
	}
	if !oc.allow {
		oc.err.AuditID = id
		return nil, oc.err
	}
	return p, nil
}

// end ends p with oc unless it has ended already; it reports whether this call ended it.
func (e *Engine) end(p *pendingCall, oc outcome) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.endLocked(p, oc)
}

// endLocked is end for a caller holding e.mu.
func (e *Engine) endLocked(p *pendingCall, oc outcome) bool {
	if e.pending[p.view.ID] != p {
		return false
	}
	delete(e.pending, p.view.ID)
	p.outcome = oc
	close(p.ended)
	if p.listed {
		e.notifyPending()
	}
	return true
}

// pendingOf counts the requests of skill; the caller holds e.mu.
func (e *Engine) pendingOf(skill string) int {
	n := 0
	for _, p := range e.pending {
		if p.view.Skill == skill {
			n++
		}
	}
	return n
}

// endChangedPending ends the requests that st no longer admits: their skill disabled,
// or its approval changed (another version, grant, signer or approver list: a new
// decision by the operator that the request was not made under). The caller holds e.mu.
func (e *Engine) endChangedPending(st *state) {
	for _, p := range e.pending {
		switch {
		case isDisabled(st, p.view.Skill):
			e.endLocked(p, outcome{event: EventApprovalEnded, label: metrics.ApprovalEnded,
				err: &Error{Reason: ReasonDisabled, Msg: disabledWords(p.view.Skill+" was disabled while the call waited for a decision", st.disabled[p.view.Skill])}})
		case !sameApproval(st.approvals[p.view.Skill], p.approval):
			e.endLocked(p, outcome{event: EventApprovalEnded, label: metrics.ApprovalEnded,
				err: errorf(ReasonApprovalChanged, "the approval of %s changed while the call waited for a decision; call again", p.view.Skill)})
		}
	}
}

// StopApprovals ends every pending request (UNAVAILABLE: the server is shutting down),
// refuses new ones, and ends every WatchPending subscription. A server calls it when
// it starts to drain, so no call waits on a decision that nobody can make any more;
// Shutdown calls it too.
func (e *Engine) StopApprovals() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopApprovalsLocked()
}

func (e *Engine) stopApprovalsLocked() {
	e.approvalsStopped = true
	for _, p := range e.pending {
		e.endLocked(p, outcome{event: EventApprovalEnded, label: metrics.ApprovalEnded,
			err: errorf(ReasonUnavailable, "the server shut down before the call was decided")})
	}
	for ch := range e.pendingWatchers {
		close(ch)
		delete(e.pendingWatchers, ch)
	}
}

// Pending lists the requests waiting for a decision, oldest first. The requests are
// copies; their Input must not be changed.
func (e *Engine) Pending() []PendingRequest {
	e.mu.Lock()
	out := make([]PendingRequest, 0, len(e.pending))
	for _, p := range e.pending {
		if p.listed {
			out = append(out, p.view)
		}
	}
	e.mu.Unlock()
	for _, r := range e.peerPending() {
		if !slices.ContainsFunc(out, func(p PendingRequest) bool { return p.ID == r.ID }) {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Requested.Equal(out[j].Requested) {
			return out[i].Requested.Before(out[j].Requested)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// WatchPending tells the caller when the pending requests change (one is parked or
// ends): the channel receives after each change, changes coalescing while one is
// pending, so a watcher re-reads Pending and never falls behind. The channel is closed
// when approvals stop (StopApprovals, Shutdown). stop ends the watch.
func (e *Engine) WatchPending() (changed <-chan struct{}, stop func()) {
	ch := make(chan struct{}, 1)
	e.mu.Lock()
	if e.approvalsStopped {
		close(ch)
	} else {
		e.pendingWatchers[ch] = struct{}{}
	}
	e.mu.Unlock()
	return ch, func() {
		e.mu.Lock()
		delete(e.pendingWatchers, ch)
		e.mu.Unlock()
	}
}

// notifyPending tells the pending watchers; the caller holds e.mu.
func (e *Engine) notifyPending() {
	for ch := range e.pendingWatchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Decide is an approver's answer to one pending request: d.By must be one of the
// request's approvers and not its caller, and a denial needs a reason. An allowed
// request runs exactly as parked; a denied one ends APPROVAL_DENIED with the reason
// in its message. Decide returns once the decision is recorded in the audit log. A
// refused decision (NOT_APPROVER, NOT_PENDING, INVALID_INPUT) changes nothing and is
// recorded too.
func (e *Engine) Decide(ctx context.Context, d Decision) error {
	d.Reason = strings.TrimSpace(oneLine(d.Reason))
	p, err := e.decide(d, doorOf(ctx))
	if err != nil && err.Reason == ReasonNotPending {
		// Not parked here: perhaps on another replica, which applies it.
		if r, found, perr := e.decidePeer(ctx, d, doorOf(ctx)); found {
			if perr == nil {
				return e.recordRelayed(ctx, d, r)
			}
			err = perr
		}
	}
	if err != nil {
		_, aerr := e.audit.Append(context.WithoutCancel(ctx), audit.Record{
			Event: EventApprovalRefused, Caller: bounded(d.By, maxFieldBytes), CallID: bounded(d.ID, maxFieldBytes),
			Outcome: "refused", Reason: string(err.Reason), Details: withDoor(ctx, map[string]any{"message": oneLine(err.Error())})})
		if aerr != nil {
			return &Error{Reason: ReasonAuditFailed, Msg: "refused decision not recorded", Err: aerr}
		}
		return err
	}
	if err := awaitRecorded(ctx, p); err != nil {
		return fmt.Errorf("the decision stands, but its record: %w", err)
	}
	return nil
}

// decide claims the request for d, made through door (WithDoor; "" in-process), or
// says why not.
func (e *Engine) decide(d Decision, door string) (*pendingCall, *Error) {
	if !d.Allow && d.Reason == "" {
		return nil, &Error{Reason: ReasonInvalidInput, Field: "reason", Msg: "a denial needs a reason: the caller is shown it"}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.pending[d.ID]
	switch {
	case p == nil || !p.listed:
		return nil, errorf(ReasonNotPending, "no call waits for a decision under id %q: it was decided, expired or ended, or never made", bounded(d.ID, maxFieldBytes))
	case d.Digest != "" && d.Digest != p.view.Digest:
		return nil, &Error{Reason: ReasonInvalidInput, Field: "digest", Msg: "the request under this id is not the one decided on (digest differs)"}
	case d.By == "" || d.By == p.view.Caller:
		return nil, errorf(ReasonNotApprover, "%s may not decide its own call", d.By)
	case !slices.Contains(p.view.Approvers, d.By):
		return nil, errorf(ReasonNotApprover, "%s is not an approver of %s", d.By, p.view.Skill)
	}
	oc := outcome{allow: d.Allow, by: d.By, reason: d.Reason, door: door, via: bounded(d.Via, maxFieldBytes),
		event: EventApprovalAllowed, label: metrics.ApprovalAllowed}
	if !d.Allow {
		oc.event, oc.label = EventApprovalDenied, metrics.ApprovalDenied
		oc.err = errorf(ReasonApprovalDenied, "%s denied the call of %s: %s", d.By, p.view.Skill, d.Reason)
	}
	e.endLocked(p, oc)
	return p, nil
}

// awaitRecorded waits for the waiter's record of a decided request.
func awaitRecorded(ctx context.Context, p *pendingCall) error {
	select {
	case err := <-p.recorded:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sameApproval reports whether b is the approval a was: the same version, signer,
// approver of record and grant (oversight included). A reload that reads the same file
// again is the same approval; a new `skillbox approve` is not.
func sameApproval(a, b *approval.Approval) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	if a.Skill != b.Skill || a.ManifestDigest != b.ManifestDigest || a.Signer != b.Signer ||
		a.ApprovedBy != b.ApprovedBy || !a.ApprovedAt.Equal(b.ApprovedAt) {
		return false
	}
	ga, err1 := yaml.Marshal(a.Grant)
	gb, err2 := yaml.Marshal(b.Grant)
	return err1 == nil && err2 == nil && bytes.Equal(ga, gb)
}

// bindingDigest is the sha256 of what a request binds, length-prefixed field by field:
// everything an approver is shown (a request read from another replica cannot show
// other words, signer or approvers under the same digest).
func bindingDigest(v *PendingRequest) string {
	h := sha256.New()
	for _, f := range []string{"skillbox-pending-v2", v.ID, v.Skill, v.Version, v.ManifestDigest, v.CodeDigest, v.Signer,
		v.Caller, v.Door, v.InputSHA256,
		fmt.Sprintf("%d/%d/%d/%d/%g/%d/%d", v.Limits.Timeout, v.Limits.Memory, v.Limits.Output, v.Limits.Requests, v.Limits.CPU, v.Limits.Logs, v.Limits.Response),
		strings.Join(v.Approvers, "\x00"), v.Reason, v.Review,
		v.Requested.UTC().Format(time.RFC3339Nano), v.Expires.UTC().Format(time.RFC3339Nano)} {
		fmt.Fprintf(h, "%d:%s\n", len(f), f)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// grantWords is the review text of what the call gets under its approval: the
// manifest's words with the grant's capabilities and the call's limits, then the host
// side of the grant (directories, where secrets come from: never values), the callers
// and the oversight.
func grantWords(r *resolved, lim isolation.Limits) string {
	g := r.approval.Grant
	gm := g.Granted(r.entry.Manifest) // the grant's capabilities, brokered secrets narrowed
	gm.Limits = manifest.Limits{Timeout: manifest.Duration(lim.Timeout), Memory: manifest.Size(lim.Memory),
		Output: manifest.Size(lim.Output), CPU: lim.CPU, Requests: lim.Requests}
	rep := review.Describe(gm)
	rep.Signer = r.signer
	rep.ManifestDigest = r.entry.ManifestDigest
	rep.CodeDigest = r.entry.CodeDigest
	var b strings.Builder
	b.WriteString(rep.Text())
	b.WriteString("\nGranted by " + r.approval.ApprovedBy + " at " + r.approval.ApprovedAt.UTC().Format(time.RFC3339) + ":\n")
	for _, f := range g.Files {
		fmt.Fprintf(&b, "  %s is the host directory %s (%s)\n", f.Path, f.Host, f.Access)
	}
	for _, n := range slices.Sorted(maps.Keys(g.Secrets)) {
		src, _, _ := strings.Cut(g.Secrets[n], ":")
		fmt.Fprintf(&b, "  secret %s comes from the server's %s\n", n, src)
	}
	if len(g.Callers) > 0 {
		fmt.Fprintf(&b, "  callers: %s\n", strings.Join(g.Callers, ", "))
	} else {
		b.WriteString("  callers: any caller the server admits\n")
	}
	fmt.Fprintf(&b, "  oversight: %s\n", g.Oversight.Words())
	return b.String()
}
