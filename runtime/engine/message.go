package engine

import (
	"github.com/skillbox-dev/skillbox/reasons"
	"github.com/skillbox-dev/skillbox/runtime/runner"
)

// MaxMessageBytes bounds every free-text message the engine writes to an audit record
// or puts in an error: a caller, a skill or a file cannot make a record or a reply big
// with it, or break it over lines.
const MaxMessageBytes = runner.MaxMessageBytes

// maxFieldBytes bounds a field path or a pin taken from a caller's request.
const maxFieldBytes = runner.MaxFieldBytes

// OneLine returns s as one bounded line: control characters (newlines, escapes)
// become spaces, invalid UTF-8 becomes U+FFFD, and anything past MaxMessageBytes is
// cut at a character boundary and marked with "…".
func OneLine(s string) string { return runner.OneLine(s) }

// oneLine is OneLine, the name the engine's own call sites use.
func oneLine(s string) string { return runner.OneLine(s) }

func bounded(s string, limit int) string { return runner.Bounded(s, limit) }

// schemaRefusal is the error of input or output its schema refuses
// (runner.SchemaRefusal): the field and the rule, never the value.
func schemaRefusal(reason reasons.Reason, which string, data []byte, err error) *Error {
	return runner.SchemaRefusal(reason, which, data, err)
}
