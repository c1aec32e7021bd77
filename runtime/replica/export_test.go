package replica

import "time"

// WithSweep sets how long past its expiry a pending request is stale and how often a
// running replica looks for such requests (in production staleAfter and staleAfter/2).
func WithSweep(stale, every time.Duration) Option {
	return func(m *Mirror) { m.stale, m.sweepEvery = stale, every }
}
