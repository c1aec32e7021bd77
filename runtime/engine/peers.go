package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/skillbox-dev/skillbox/runtime/audit"
)

// Pending requests of other replicas. Several servers behind one Service share one
// set of approvers: a call parked on replica a must be listed, and decidable, on
// replica b. The engine knows nothing of clusters; runtime/replica implements
// PendingPeers over the API server and registers it with SetPendingPeers. Pending
// then lists the peers' requests beside this engine's own (Replica names the holder),
// WatchPending fires when they change, and Decide checks a decision on one of them
// here (approver, own call, digest, reason) and hands it to the holder, whose engine
// checks it again against its own state and applies it: a peer's word never runs a
// call the holder's approval would not.

// PendingPeers lists and decides the pending requests other replicas hold.
type PendingPeers interface {
	// PeerPending lists the requests the other replicas hold, not yet expired, each
	// with Replica set; their Digest and InputSHA256 have been checked (Check).
	PeerPending() []PendingRequest
	// PeerDecide hands d, checked here against the listed request, to the replica
	// holding it and returns once that replica has applied it (nil) or refused it
	// (its *Error). door is the way d came in here.
	PeerDecide(ctx context.Context, d Decision, door string) error
}

// EventApprovalRelayed records a decision this replica handed to the replica holding
// the request (which records the decision itself, as allowed or denied).
const EventApprovalRelayed = "approval.relayed"

// SetPendingPeers makes p's requests part of Pending and Decide; changed tells this
// engine's pending watchers that p's list changed. Call it once, before serving.
func (e *Engine) SetPendingPeers(p PendingPeers) (changed func()) {
	e.mu.Lock()
	e.peers = p
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		e.notifyPending()
		e.mu.Unlock()
	}
}

// peerPending is the peers' requests that this engine does not hold itself.
func (e *Engine) peerPending() []PendingRequest {
	e.mu.Lock()
	p := e.peers
	e.mu.Unlock()
	if p == nil {
		return nil
	}
	now := time.Now()
	var out []PendingRequest
	for _, r := range p.PeerPending() {
		if r.Replica != "" && now.Before(r.Expires) {
			out = append(out, r)
		}
	}
	return out
}

// Check reports whether r's InputSHA256 is the sha256 of its Input and its Digest
// binds its fields: a request read from elsewhere (another replica's copy in the API
// server) is shown to approvers only if it does.
func (r PendingRequest) Check() error {
	sum := sha256.Sum256(r.Input)
	if hex.EncodeToString(sum[:]) != r.InputSHA256 {
		return errors.New("its input is not the one its sha256 names")
	}
	if bindingDigest(&r) != r.Digest {
		return errors.New("its digest does not bind its fields")
	}
	return nil
}

// decidePeer checks d against the peer's request and relays it; found is false when
// no peer lists d.ID.
func (e *Engine) decidePeer(ctx context.Context, d Decision, door string) (r PendingRequest, found bool, err *Error) {
	peers := e.peerPending()
	i := slices.IndexFunc(peers, func(r PendingRequest) bool { return r.ID == d.ID })
	if i < 0 {
		return r, false, nil
	}
	r = peers[i]
	switch {
	case d.Digest != "" && d.Digest != r.Digest:
		return r, true, &Error{Reason: ReasonInvalidInput, Field: "digest", Msg: "the request under this id is not the one decided on (digest differs)"}
	case d.By == "" || d.By == r.Caller:
		return r, true, errorf(ReasonNotApprover, "%s may not decide its own call", d.By)
	case !slices.Contains(r.Approvers, d.By):
		return r, true, errorf(ReasonNotApprover, "%s is not an approver of %s", d.By, r.Skill)
	}
	d.Digest = r.Digest // the holder checks that it holds the request shown here
	e.mu.Lock()
	p := e.peers
	e.mu.Unlock()
	if perr := p.PeerDecide(ctx, d, door); perr != nil {
		var ee *Error
		if errors.As(perr, &ee) {
			return r, true, ee
		}
		return r, true, &Error{Reason: ReasonUnavailable, Msg: "the decision could not be handed to replica " + r.Replica, Err: perr}
	}
	return r, true, nil
}

// recordRelayed records a decision taken here and applied by the replica holding r.
func (e *Engine) recordRelayed(ctx context.Context, d Decision, r PendingRequest) error {
	outcome := "allowed"
	if !d.Allow {
		outcome = "denied"
	}
	_, err := e.audit.Append(context.WithoutCancel(ctx), audit.Record{
		Event: EventApprovalRelayed, Caller: d.By, CallID: r.ID, Skill: r.Skill, Version: r.Version,
		ManifestDigest: r.ManifestDigest, CodeDigest: r.CodeDigest, Outcome: outcome,
		Details: withDoor(ctx, map[string]any{"replica": r.Replica, "caller": r.Caller, "reason": d.Reason})})
	if err != nil {
		return fmt.Errorf("the decision stands (replica %s applied it), but its record here: %w", r.Replica, err)
	}
	return nil
}
