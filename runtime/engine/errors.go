package engine

import (
	"errors"
	"fmt"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/reasons"
	"github.com/skillbox-dev/skillbox/runtime/runner"
)

// Reasons a call can fail for, beyond the sandbox's own (isolation.Reason*), each with
// its category in CategoryOf. They are the machine-readable reason of the wire API's
// ErrorDetail.
const (
	ReasonInvalidInput                    = runner.ReasonInvalidInput  // the input does not match the input schema
	ReasonInvalidOutput                   = runner.ReasonInvalidOutput // the skill's output does not match its output schema
	ReasonNotFound         reasons.Reason = "NOT_FOUND"                // no installed skill by that name, version or digest
	ReasonNotApproved      reasons.Reason = "NOT_APPROVED"             // no approval, or one for another version or signer
	ReasonCallerNotAllowed reasons.Reason = "CALLER_NOT_ALLOWED"       // the approval does not list this caller
	ReasonDisabled         reasons.Reason = "DISABLED"                 // the kill switch is on
	ReasonVerifyFailed     reasons.Reason = "VERIFY_FAILED"            // the package no longer verifies against trust.yaml
	ReasonBusy             reasons.Reason = "BUSY"                     // the skill's concurrency limit stayed full
	ReasonUnavailable                     = runner.ReasonUnavailable   // the sandbox this skill needs is not available
	ReasonAuditFailed      reasons.Reason = "AUDIT_FAILED"             // the call could not be recorded, so it is failed
	ReasonCallsRunning     reasons.Reason = "CALLS_RUNNING"            // the kill switch is on, but cancelled calls had not ended within its bound

	// Per-call oversight (see Decide).
	ReasonApprovalDenied  reasons.Reason = "APPROVAL_DENIED"  // an approver denied this call
	ReasonApprovalExpired reasons.Reason = "APPROVAL_EXPIRED" // no approver decided within the grant's wait
	ReasonApprovalChanged reasons.Reason = "APPROVAL_CHANGED" // the skill's approval changed while the call waited for a decision
	ReasonNotApprover     reasons.Reason = "NOT_APPROVER"     // a decision by someone who may not decide this call (not an approver, or its own caller)
	ReasonNotPending      reasons.Reason = "NOT_PENDING"      // a decision about no pending request: decided, expired, ended, or never made
)

// CategoryOf is the category of a call reason: the engine's own here, the sandbox's
// from isolation.CategoryOf, Internal for anything undeclared.
func CategoryOf(r reasons.Reason) reasons.Category {
	switch r {
	case ReasonInvalidInput:
		return reasons.InvalidArgument
	case ReasonNotApproved, ReasonCallerNotAllowed, ReasonVerifyFailed,
		ReasonApprovalDenied, ReasonApprovalChanged, ReasonNotApprover:
		return reasons.PermissionDenied
	case ReasonApprovalExpired:
		// The wait for a person is the call's time budget before it runs.
		return reasons.DeadlineExceeded
	case ReasonNotFound, ReasonNotPending:
		return reasons.NotFound
	case ReasonBusy:
		return reasons.ResourceExhausted
	case ReasonCallsRunning:
		// The operator's bound on the kill switch ran out; the switch itself is on.
		return reasons.DeadlineExceeded
	case ReasonDisabled:
		return reasons.FailedPrecondition
	case ReasonInvalidOutput:
		return reasons.Aborted
	case ReasonUnavailable:
		return reasons.Unavailable
	case ReasonAuditFailed:
		// skillbox broke its own rule that every call is recorded: not the caller's to
		// fix, and not a retryable Unavailable either, since the skill may already have
		// run (its result withheld) and an automatic retry would run it again.
		return reasons.Internal
	}
	return isolation.CategoryOf(r)
}

// Error is a refused or failed call (runner.Error). Reason is machine-readable;
// Error() is one line of at most MaxMessageBytes (it goes into audit records and
// replies).
type Error = runner.Error

// CallerMessage is err's message for the caller who made the call, one line of at
// most MaxMessageBytes: Error() and, for a skill that failed, the skill's own last
// words (the end of its stderr). Those may echo the caller's input, so they go only
// into the reply, never into the audit log (which gets Error()).
func CallerMessage(err error) string { return runner.CallerMessage(err) }

// ErrNoApprovers is the cause of a call under oversight refused by an engine opened
// with Config.NoApprovers.
var ErrNoApprovers = errors.New("no approver can reach this engine")

func errorf(reason reasons.Reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the machine-readable reason of err: an engine reason, a sandbox
// reason, or INTERNAL.
func ReasonOf(err error) reasons.Reason { return runner.ReasonOf(err) }

// EventInvokeRefused is the audit event of a call refused before it started.
const EventInvokeRefused = "invoke.refused"

// unknownSkill is the metrics label of calls naming no installed skill.
const unknownSkill = "(unknown)"
