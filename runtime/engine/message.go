package engine

import (
	"encoding/json"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/reasons"
)

// MaxMessageBytes bounds every free-text message the engine writes to an audit record
// or puts in an error: a caller, a skill or a file cannot make a record or a reply big
// with it, or break it over lines.
const MaxMessageBytes = 512

// maxFieldBytes bounds a field path or a pin taken from a caller's request.
const maxFieldBytes = 128

// OneLine returns s as one bounded line: control characters (newlines, escapes)
// become spaces, invalid UTF-8 becomes U+FFFD, and anything past MaxMessageBytes is
// cut at a character boundary and marked with "…".
func OneLine(s string) string { return bounded(s, MaxMessageBytes) }

// oneLine is OneLine, the name the engine's own call sites use.
func oneLine(s string) string { return bounded(s, MaxMessageBytes) }

func bounded(s string, limit int) string {
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

// schemaRefusal is the error of input or output its schema refuses. It names the field
// and the rule it breaks ("input.text: want a string, got a number"), taken from
// manifest.SchemaError's Path and Rule, which never hold the value; never the
// validator's text nor err.Error(). It goes to the audit log and to the caller, and
// neither may hold the data. The schema error is not kept in the chain, so nothing can
// print it later.
func schemaRefusal(reason reasons.Reason, which string, data []byte, err error) *Error {
	field, rule := which, "does not match the "+which+" schema"
	var se *manifest.SchemaError
	if errors.As(err, &se) {
		if se.Path != "" {
			field = bounded(se.Path, maxFieldBytes)
		}
		if se.Rule != "" {
			rule = bounded(se.Rule, maxRuleBytes)
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
