package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/reasons"
)

// The reasons the runner itself gives, beyond the sandbox's own (isolation.Reason*).
// The engine adds its own and gives each its category.
const (
	ReasonInvalidInput  reasons.Reason = "INVALID_INPUT"  // the input does not match the input schema
	ReasonInvalidOutput reasons.Reason = "INVALID_OUTPUT" // the skill's output does not match its output schema
	ReasonUnavailable   reasons.Reason = "UNAVAILABLE"    // the sandbox this skill needs is not available
)

// Result is a call's outcome: a successful call's, or what a call that ran and failed
// left (Output nil) beside its error.
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

// Error is a refused or failed call. Reason is machine-readable; Error() is one line of
// at most MaxMessageBytes (it goes into audit records and replies).
type Error struct {
	Reason  reasons.Reason
	Msg     string
	Field   string // for INVALID_INPUT and INVALID_OUTPUT: the offending field's path
	AuditID string // the audit record of the failed call, when it was recorded
	Err     error
}

func (e *Error) Error() string {
	switch {
	case e.Err != nil && e.Msg == "":
		return OneLine(e.Err.Error())
	case e.Err != nil:
		return OneLine(e.Msg + ": " + e.Err.Error())
	}
	return OneLine(e.Msg)
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
	return OneLine(msg)
}

func errorf(reason reasons.Reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the machine-readable reason of err: a runner or engine reason, a
// sandbox reason, or INTERNAL.
func ReasonOf(err error) reasons.Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return isolation.ReasonOf(err)
}

// MaxMessageBytes bounds every free-text message written to an audit record or put
// in an error: a caller, a skill or a file cannot make a record or a reply big with
// it, or break it over lines.
const MaxMessageBytes = 512

// MaxFieldBytes bounds a field path or a pin taken from a caller's request.
const MaxFieldBytes = 128

// OneLine returns s as one bounded line: control characters (newlines, escapes)
// become spaces, invalid UTF-8 becomes U+FFFD, and anything past MaxMessageBytes is
// cut at a character boundary and marked with "…".
func OneLine(s string) string { return Bounded(s, MaxMessageBytes) }

// Bounded is OneLine with a limit of its own.
func Bounded(s string, limit int) string {
	clean := len(s) <= limit
	for i := 0; clean && i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c >= 0x80 {
			clean = false
		}
	}
	if clean {
		return s // the common case, without a copy
	}
	const ellipsis = "…"
	var b strings.Builder
	cut := -1 // where the text stops if it does not fit whole
	for _, r := range strings.ToValidUTF8(s[:min(len(s), limit+utf8.UTFMax)], "\uFFFD") {
		if unicode.IsControl(r) {
			r = ' '
		}
		if cut < 0 && b.Len()+utf8.RuneLen(r) > limit-len(ellipsis) {
			cut = b.Len()
		}
		if b.Len()+utf8.RuneLen(r) > limit {
			return b.String()[:cut] + ellipsis
		}
		b.WriteRune(r)
	}
	if len(s) > limit+utf8.UTFMax {
		if cut < 0 { // invalid bytes collapsed into fewer replacement characters
			cut = b.Len()
		}
		return b.String()[:cut] + ellipsis
	}
	return b.String()
}

// maxRuleBytes bounds the schema rule a refusal quotes (manifest bounds it too).
const maxRuleBytes = 256

// SchemaRefusal is the error of input or output its schema refuses. It names the field
// and the rule it breaks ("input.text: want a string, got a number"), taken from
// manifest.SchemaError's Path and Rule, which never hold the value; never the
// validator's text nor err.Error(). It goes to the audit log and to the caller, and
// neither may hold the data. The schema error is not kept in the chain, so nothing can
// print it later.
func SchemaRefusal(reason reasons.Reason, which string, data []byte, err error) *Error {
	field, rule := which, "does not match the "+which+" schema"
	var se *manifest.SchemaError
	if errors.As(err, &se) {
		if se.Path != "" {
			field = Bounded(se.Path, MaxFieldBytes)
		}
		if se.Rule != "" {
			rule = Bounded(se.Rule, maxRuleBytes)
		}
	}
	if !json.Valid(data) {
		field, rule = which, "not valid JSON"
	}
	if reason == ReasonInvalidOutput {
		return &Error{Reason: reason, Field: field, Msg: "the skill's output was withheld: " + field + ": " + rule}
	}
	return &Error{Reason: reason, Field: field, Msg: "invalid input: " + field + ": " + rule}
}
