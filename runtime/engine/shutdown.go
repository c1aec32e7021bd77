package engine

import (
	"context"
	"errors"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
)

// ShutdownWait is a sensible bound for Shutdown's wait: a cancelled call ends within
// milliseconds (host calls end with the call), and its record is one fsync away.
const ShutdownWait = 5 * time.Second

// errShutdown is the cancellation cause of calls ended by Shutdown.
var errShutdown = errors.New("the server shut down during the call")

// Shutdown ends the engine's service before Close: new calls are refused (UNAVAILABLE),
// calls waiting for a decision end UNAVAILABLE (see StopApprovals), the calls in
// flight are cancelled, each ending CANCELED, "the server shut down during the call",
// with its invoke.end recorded, and Shutdown waits until they have ended and been
// recorded, or ctx ends. It returns how many calls it cancelled, and an error
// if any of them had not ended by then. Without it, closing the engine under calls in
// flight loses their records. Close is still the caller's, after.
func (e *Engine) Shutdown(ctx context.Context) (int, error) {
	e.mu.Lock()
	e.closing = true
	waiting := make([]*pendingCall, 0, len(e.pending))
	for _, p := range e.pending {
		waiting = append(waiting, p)
	}
	e.stopApprovalsLocked() // pending requests end UNAVAILABLE, nothing run
	ending := make([]*inflight, 0, len(e.calls))
	for _, c := range e.calls {
		c.cancel(errShutdown)
		ending = append(ending, c)
	}
	e.mu.Unlock()
	start := time.Now()
	running := awaitEnded(ctx, ending)
	for _, p := range waiting { // their ends recorded before the log closes
		select {
		case <-p.settled:
		case <-ctx.Done():
		}
	}
	if running > 0 {
		return len(ending), errorf(ReasonCallsRunning, "shutdown: %d of %d cancelled calls had not ended after %s; their records may be missing",
			running, len(ending), time.Since(start).Round(time.Millisecond))
	}
	return len(ending), nil
}

// shutdownError is the error of a call ended by Shutdown, or nil if Shutdown did not
// end it.
func shutdownError(callCtx context.Context) error {
	if errors.Is(context.Cause(callCtx), errShutdown) {
		return &Error{Reason: isolation.ReasonCanceled, Msg: errShutdown.Error()}
	}
	return nil
}

// awaitEnded waits until every call in calls has ended (its record written) or ctx
// ends, and returns how many had not ended by then. The kill switch and Shutdown both
// confirm the calls they cancelled this way.
func awaitEnded(ctx context.Context, calls []*inflight) (running int) {
	for _, c := range calls {
		select {
		case <-c.done:
			continue
		case <-ctx.Done():
		}
		select {
		case <-c.done:
		default:
			running++
		}
	}
	return running
}
