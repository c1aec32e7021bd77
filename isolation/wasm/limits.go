package wasm

import (
	"context"
	"errors"

	"github.com/skillbox-dev/skillbox/isolation"
)

// budgetError is the cause a call's context is cancelled with when a budget runs out
// while the guest is running.
type budgetError struct{ reason isolation.Reason }

func (e *budgetError) Error() string { return "budget exceeded: " + string(e.reason) }

// The causes are compared by identity; they are never modified.
var (
	causeTimeout = &budgetError{reason: isolation.ReasonTimeout}
	causeOutput  = &budgetError{reason: isolation.ReasonOutput}
	causeLogs    = &budgetError{reason: isolation.ReasonLogs}
)

// callState is one call's mutable state, allocated once.
type callState struct {
	mem            callMemory
	stdout, stderr cappedWriter
}

var errWriteBudget = errors.New("write budget exceeded")

// cappedWriter keeps at most limit bytes. The first write past the budget records the
// overflow and cancels the call, so a flood ends the module while it writes, not
// after.
type cappedWriter struct {
	buf    []byte
	limit  int64
	total  int64 // bytes the guest tried to write
	cause  error
	cancel context.CancelCauseFunc
	over   bool
}

func (w *cappedWriter) Write(p []byte) (int, error) {
	w.total += int64(len(p))
	if w.over {
		return 0, errWriteBudget
	}
	room := w.limit - int64(len(w.buf))
	if int64(len(p)) <= room {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	w.buf = append(w.buf, p[:max(room, 0)]...)
	w.over = true
	w.cancel(w.cause)
	return int(max(room, 0)), errWriteBudget
}
