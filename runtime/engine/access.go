package engine

import (
	"context"
	"time"

	"github.com/skillbox-dev/skillbox/reasons"
	"github.com/skillbox-dev/skillbox/runtime/audit"
)

// EventAccessRefused is the audit event of calls refused at the door, before any skill
// or Admin action: an unauthenticated peer, or a caller who is not an admin.
const EventAccessRefused = "access.refused"

// AccessRefusal is one access.refused record. A door coalesces a peer's refusals, so
// one record may stand for Count of them, from Since on.
type AccessRefusal struct {
	Caller  string         // the peer as far as known: "unix:uid=N", "tcp:IP", or the caller refused
	Reason  reasons.Reason // e.g. UNAUTHENTICATED, NOT_ADMIN
	Method  string         // the RPC of the first refusal
	Message string
	Count   int
	Since   time.Time
}

// RecordAccessRefused writes an access.refused record. Every free-text field is bounded
// here: the peer chose most of them.
func (e *Engine) RecordAccessRefused(ctx context.Context, r AccessRefusal) (string, error) {
	return e.audit.Append(context.WithoutCancel(ctx), audit.Record{
		Event: EventAccessRefused, Caller: bounded(r.Caller, maxFieldBytes), Outcome: "refused",
		Reason: bounded(string(r.Reason), maxFieldBytes),
		Details: map[string]any{"method": bounded(r.Method, maxFieldBytes), "message": oneLine(r.Message),
			"count": r.Count, "since": r.Since.UTC().Format(time.RFC3339Nano)},
	})
}
