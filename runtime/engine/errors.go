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
)

// Error is a refused or failed call. Reason is machine-readable; Error() is one line.
type Error struct {
	Reason  string
	Msg     string
	Field   string // for INVALID_INPUT: the offending field
	AuditID string // the audit record of the failed call, when it was recorded
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Msg == "" {
		return e.Err.Error()
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Msg, e.Err)
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

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
