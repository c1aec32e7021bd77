package engine

import (
	"errors"
	"fmt"

	"github.com/skillbox-dev/skillbox/isolation"
)

// Reasons a call can fail for, beyond the sandbox's own (isolation.Reason*). They are
// the machine-readable reason of the wire API's ErrorDetail.
const (
	ReasonInvalidInput     = "INVALID_INPUT"      // the input does not match the input schema
	ReasonInvalidOutput    = "INVALID_OUTPUT"     // the skill's output does not match its output schema
	ReasonNotFound         = "NOT_FOUND"          // no installed skill by that name, version or digest
	ReasonNotApproved      = "NOT_APPROVED"       // no approval, or one for another version or signer
	ReasonCallerNotAllowed = "CALLER_NOT_ALLOWED" // the approval does not list this caller
	ReasonDisabled         = "DISABLED"           // the kill switch is on
	ReasonVerifyFailed     = "VERIFY_FAILED"      // the package no longer verifies against trust.yaml
	ReasonBusy             = "BUSY"               // the skill's concurrency limit stayed full
	ReasonUnavailable      = "UNAVAILABLE"        // the sandbox this skill needs is not available
	ReasonAuditFailed      = "AUDIT_FAILED"       // the call could not be recorded, so it is failed
	ReasonCallsRunning     = "CALLS_RUNNING"      // the kill switch is on, but cancelled calls had not ended within its bound
)

// Error is a refused or failed call. Reason is machine-readable; Error() is one line of
// at most MaxMessageBytes (it goes into audit records and replies).
type Error struct {
	Reason  string
	Msg     string
	Field   string // for INVALID_INPUT and INVALID_OUTPUT: the offending field's path
	AuditID string // the audit record of the failed call, when it was recorded
	Err     error
}

func (e *Error) Error() string {
	switch {
	case e.Err != nil && e.Msg == "":
		return oneLine(e.Err.Error())
	case e.Err != nil:
		return oneLine(e.Msg + ": " + e.Err.Error())
	}
	return oneLine(e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// CallerMessage is err's message for the caller who made the call, one line of at
// most MaxMessageBytes: Error() and, for a skill that failed, the skill's own last
// words (the end of its stderr). Those may echo the caller's input, so they go only
// into the reply, never into the audit log (which gets Error()).
func CallerMessage(err error) string {
	msg := err.Error()
	if words := isolation.SkillMessage(err); words != "" {
		msg += ": " + words
	}
	return oneLine(msg)
}

func errorf(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the machine-readable reason of err: an engine reason, a sandbox
// reason, or INTERNAL.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return string(isolation.ReasonOf(err))
}

// budgetKind names the budget a sandbox reason exhausted, or "" when it is not a
// budget.
func budgetKind(r isolation.Reason) string {
	switch r {
	case isolation.ReasonTimeout:
		return "time"
	case isolation.ReasonMemory:
		return "memory"
	case isolation.ReasonOutput:
		return "output"
	case isolation.ReasonLogs:
		return "logs"
	case isolation.ReasonRequests:
		return "requests"
	}
	return ""
}

// EventInvokeRefused is the audit event of a call refused before it started.
const EventInvokeRefused = "invoke.refused"

// unknownSkill is the metrics label of calls naming no installed skill.
const unknownSkill = "(unknown)"
