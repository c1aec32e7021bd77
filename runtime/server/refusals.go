package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/reasons"
	"github.com/skillbox-dev/skillbox/runtime/engine"
)

// Refusals at the door (an unauthenticated peer, a caller who is not an admin) are
// recorded, but coalesced so that a peer cannot flood the audit log: per peer, the
// first refusal of a minute is written at once (count 1), and the rest of that minute
// become one more record with their count, written when the minute ends. At most
// maxRefusalPeers peers are tracked at a time; refusals from further peers share one
// "(other peers)" entry. So refusals cost at most 2×(maxRefusalPeers+1) records a
// minute, however many arrive.
const (
	refusalWindow   = time.Minute
	maxRefusalPeers = 16
	otherPeers      = "(other peers)"
)

// refusalLog coalesces and records refusals; see above.
type refusalLog struct {
	eng    *engine.Engine
	window time.Duration

	mu    sync.Mutex
	peers map[string]*peerRefusals
	timer *time.Timer
}

type peerRefusals struct {
	since      time.Time      // start of this peer's window
	suppressed int            // refusals in the window not yet recorded
	firstHeld  time.Time      // the first of those
	reason     reasons.Reason // of the last one held
	method     string
	message    string
}

func newRefusalLog(eng *engine.Engine, window time.Duration) *refusalLog {
	return &refusalLog{eng: eng, window: window, peers: map[string]*peerRefusals{}}
}

// note records (or counts) one refusal of peer.
func (r *refusalLog) note(ctx context.Context, peer string, reason reasons.Reason, method, message string) {
	now := time.Now()
	var out []engine.AccessRefusal
	r.mu.Lock()
	p := r.peers[peer]
	if p == nil && len(r.peers) >= maxRefusalPeers {
		out = r.expireLocked(now, out)
	}
	if p == nil && len(r.peers) >= maxRefusalPeers {
		peer = otherPeers
		p = r.peers[peer]
	}
	switch {
	case p != nil && now.Sub(p.since) < r.window:
		if p.suppressed == 0 {
			p.firstHeld = now
		}
		p.suppressed++
		p.reason, p.method, p.message = reason, method, message
		r.armLocked(r.window - now.Sub(p.since))
	default:
		if p != nil && p.suppressed > 0 {
			out = append(out, held(peer, p))
		}
		r.peers[peer] = &peerRefusals{since: now}
		out = append(out, engine.AccessRefusal{Caller: peer, Reason: reason, Method: method, Message: message, Count: 1, Since: now})
	}
	r.mu.Unlock()
	r.write(ctx, out)
}

func held(peer string, p *peerRefusals) engine.AccessRefusal {
	return engine.AccessRefusal{Caller: peer, Reason: p.reason, Method: p.method, Count: p.suppressed, Since: p.firstHeld,
		Message: fmt.Sprintf("%d more refusals in the minute after the last record of this peer; the last: %s", p.suppressed, p.message)}
}

// armLocked makes sure a flush runs by the time a window with held refusals ends
// (in d).
func (r *refusalLog) armLocked(d time.Duration) {
	if r.timer == nil {
		r.timer = time.AfterFunc(d, r.flushExpired)
	}
}

// flushExpired writes the held counts of every window that has ended, then waits for
// the next one with held refusals.
func (r *refusalLog) flushExpired() {
	now := time.Now()
	r.mu.Lock()
	r.timer = nil
	out := r.expireLocked(now, nil)
	next := time.Duration(-1)
	for _, p := range r.peers {
		if left := r.window - now.Sub(p.since); p.suppressed > 0 && (next < 0 || left < next) {
			next = left
		}
	}
	if next >= 0 {
		r.armLocked(next)
	}
	r.mu.Unlock()
	r.write(context.Background(), out)
}

// expireLocked forgets every peer whose window has ended, adding its held count (if
// any) to out.
func (r *refusalLog) expireLocked(now time.Time, out []engine.AccessRefusal) []engine.AccessRefusal {
	for peer, p := range r.peers {
		if now.Sub(p.since) < r.window {
			continue
		}
		if p.suppressed > 0 {
			out = append(out, held(peer, p))
		}
		delete(r.peers, peer)
	}
	return out
}

// flush writes every held count now (at shutdown: the process may end before the
// windows do). Windows stay as they are.
func (r *refusalLog) flush() {
	var out []engine.AccessRefusal
	r.mu.Lock()
	for peer, p := range r.peers {
		if p.suppressed > 0 {
			out = append(out, held(peer, p))
			p.suppressed = 0
		}
	}
	r.mu.Unlock()
	r.write(context.Background(), out)
}

// write appends the records. A refusal is refused whether or not it could be
// recorded; a log that fails refuses every call anyway.
func (r *refusalLog) write(ctx context.Context, recs []engine.AccessRefusal) {
	for _, rec := range recs {
		_, _ = r.eng.RecordAccessRefused(ctx, rec)
	}
}
