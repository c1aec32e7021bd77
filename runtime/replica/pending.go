package replica

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skillbox-dev/skillbox/reasons"
	"github.com/skillbox-dev/skillbox/runtime/engine"
)

// Calls waiting for a person's decision (per-call oversight) are parked on the
// replica the call came in to; approvers may ask any replica. Each replica therefore
// writes its pending requests to the API server, one ConfigMap each, and lists the
// other replicas' beside its own (engine.PendingPeers):
//
//	skillbox-pending-ID  labels skillbox.dev/pending=HOLDER, skillbox.dev/skill=NAME
//	  request.json   the request as approvers see it, without its input
//	  input          (binary) the exact input that runs if it is allowed
//	  decision.json  written by the replica an approver decided on
//	  result.json    written by the holder: how its engine took the decision
//
// The holder alone creates and deletes its ConfigMaps: it deletes one as soon as its
// call ends (decided, expired, cancelled), and all of its own at start and stop. A
// decision taken on another replica is checked there against the listed request,
// written into decision.json, and applied by the holder's engine, which checks it
// again against the request and approval it holds: the request's digest binds what
// the approver was shown. Nothing in these objects is a secret value: the request
// names where secrets come from, never what they are. Whoever may write ConfigMaps in
// the state namespace may decide pending calls, as they may write approvals.

// Labels and keys of the pending requests' ConfigMaps.
const (
	LabelPending = "skillbox.dev/pending" // the holding replica
	KeyRequest   = "request.json"
	KeyInput     = "input"
	KeyDecision  = "decision.json"
	KeyResult    = "result.json"
	KeyHolder    = "holder"
)

// MaxSharedInput bounds the input of a request shared through the API server (a
// ConfigMap holds at most 1 MiB); a request with a larger input is listed and decided
// on its own replica only.
const MaxSharedInput = 512 << 10

// staleAfter is how long after its expiry any replica deletes a pending request whose
// holder did not (a replica that died); a running replica looks every staleAfter/2.
// Start copies both into Mirror.stale and Mirror.sweepEvery, which tests shorten.
const staleAfter = time.Minute

// decisionDoc is a decision taken on one replica for the holder to apply.
type decisionDoc struct {
	Nonce   string `json:"nonce"`
	By      string `json:"by"`
	Allow   bool   `json:"allow"`
	Reason  string `json:"reason,omitempty"`
	Digest  string `json:"digest"`
	Door    string `json:"door,omitempty"`
	Replica string `json:"replica"`
}

// resultDoc is how the holder's engine took a decision: Reason empty when applied.
type resultDoc struct {
	Nonce   string `json:"nonce"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// PendingConfigMapName is the name of the ConfigMap of one pending request.
func PendingConfigMapName(id string) string { return "skillbox-pending-" + id }

var labelValue = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)

// holderLabel is name as a label value: a name that is one stays as it is; anything
// else is its sha256 (truncating an encoding could give two replicas one label, and a
// replica deletes what carries its label when it starts).
func holderLabel(name string) string {
	if labelValue.MatchString(name) {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return "h" + hex.EncodeToString(sum[:])[:62]
}

// pendingShare is the pending half of a Mirror.
type pendingShare struct {
	m       *Mirror
	changed func() // tells the engine's pending watchers

	mu      sync.Mutex
	objs    map[string]*corev1.ConfigMap      // every pending ConfigMap, by request id
	peers   map[string]engine.PendingRequest  // the other replicas' requests, checked
	waiters map[string]map[chan struct{}]bool // request id → PeerDecide waiting on it
	handled map[string]string                 // request id → nonce of the decision applied here
	shared  map[string]bool                   // ids of this replica's requests in the cluster
	skipped map[string]bool                   // ids of this replica's requests too big to share
	results map[string]resultDoc              // decision nonce → the holder's result, while its decider waits
	// applying are this replica's requests whose relayed decision is being applied:
	// their ConfigMap stays until the result is written in it. kick re-runs syncOwn.
	applying map[string]bool
	kick     chan struct{}
}

func newPendingShare(m *Mirror) *pendingShare {
	return &pendingShare{m: m, objs: map[string]*corev1.ConfigMap{}, peers: map[string]engine.PendingRequest{},
		waiters: map[string]map[chan struct{}]bool{}, handled: map[string]string{}, shared: map[string]bool{}, skipped: map[string]bool{},
		results: map[string]resultDoc{}, applying: map[string]bool{}, kick: make(chan struct{}, 1)}
}

// PeerPending implements engine.PendingPeers.
func (p *pendingShare) PeerPending() []engine.PendingRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	out := make([]engine.PendingRequest, 0, len(p.peers))
	for _, r := range p.peers {
		if now.Before(r.Expires) {
			out = append(out, r)
		}
	}
	return out
}

// PeerDecide implements engine.PendingPeers: it writes d into the request's
// ConfigMap and waits for the holder's result.
func (p *pendingShare) PeerDecide(ctx context.Context, d engine.Decision, door string) error {
	p.mu.Lock()
	r, ok := p.peers[d.ID]
	p.mu.Unlock()
	if !ok {
		return &engine.Error{Reason: engine.ReasonNotPending, Msg: fmt.Sprintf("no call waits for a decision under id %q", d.ID)}
	}
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	doc := decisionDoc{Nonce: hex.EncodeToString(nonce), By: d.By, Allow: d.Allow, Reason: d.Reason, Digest: d.Digest,
		Door: door, Replica: p.m.name}
	raw, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	wake := make(chan struct{}, 1)
	p.mu.Lock()
	if p.waiters[d.ID] == nil {
		p.waiters[d.ID] = map[chan struct{}]bool{}
	}
	p.waiters[d.ID][wake] = true
	p.results[doc.Nonce] = resultDoc{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.results, doc.Nonce)
		delete(p.waiters[d.ID], wake)
		if len(p.waiters[d.ID]) == 0 {
			delete(p.waiters, d.ID)
		}
		p.mu.Unlock()
	}()

	key := client.ObjectKey{Namespace: p.m.ns, Name: PendingConfigMapName(d.ID)}
	var cm corev1.ConfigMap
	if err := p.m.c.Get(ctx, key, &cm); apierrors.IsNotFound(err) {
		return &engine.Error{Reason: engine.ReasonNotPending, Msg: "the call ended on replica " + r.Replica + " before the decision reached it"}
	} else if err != nil {
		return err
	}
	if prev, ok := cm.Data[KeyDecision]; ok {
		var pd decisionDoc
		var res resultDoc
		_ = json.Unmarshal([]byte(prev), &pd)
		if json.Unmarshal([]byte(cm.Data[KeyResult]), &res) != nil || res.Nonce != pd.Nonce {
			return &engine.Error{Reason: engine.ReasonNotPending, Msg: fmt.Sprintf("%s's decision on this call is being applied by replica %s", pd.By, r.Replica)}
		}
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[KeyDecision] = string(raw)
	delete(cm.Data, KeyResult)
	if err := p.m.c.Update(ctx, &cm); apierrors.IsConflict(err) {
		return &engine.Error{Reason: engine.ReasonNotPending, Msg: "another decision on this call reached replica " + r.Replica + " first"}
	} else if err != nil {
		return fmt.Errorf("write the decision for replica %s: %w", r.Replica, err)
	}

	// The holder answers within its watch's delay; if it is gone, the request's
	// expiry bounds the wait.
	limit := time.NewTimer(time.Until(r.Expires) + 10*time.Second)
	defer limit.Stop()
	for {
		p.mu.Lock()
		_, present := p.objs[d.ID]
		res := p.results[doc.Nonce]
		p.mu.Unlock()
		if res.Nonce == doc.Nonce {
			if res.Reason == "" {
				return nil
			}
			return &engine.Error{Reason: reasons.Reason(res.Reason), Msg: res.Message}
		}
		if !present {
			return &engine.Error{Reason: engine.ReasonNotPending, Msg: "the call ended on replica " + r.Replica + " before it applied the decision"}
		}
		select {
		case <-wake:
		case <-limit.C:
			return &engine.Error{Reason: engine.ReasonUnavailable, Msg: "replica " + r.Replica + " did not apply the decision"}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// syncOwn keeps this replica's pending requests in the cluster, as the engine lists
// them, until ctx ends or approvals stop; then it deletes them.
func (p *pendingShare) syncOwn(ctx context.Context) {
	changed, stop := p.m.eng.WatchPending()
	defer stop()
	me := holderLabel(p.m.name)
	// What an earlier run under this name left: nothing of it waits any more.
	var old corev1.ConfigMapList
	if err := p.m.c.List(ctx, &old, client.InNamespace(p.m.ns), client.MatchingLabels{LabelPending: me}); err == nil {
		for i := range old.Items {
			if old.Items[i].Data[KeyHolder] != p.m.name {
				continue // another replica's, whatever its label says
			}
			_ = client.IgnoreNotFound(p.m.c.Delete(ctx, &old.Items[i]))
		}
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for id := range p.sharedIDs() {
			p.unshare(cctx, id)
		}
	}()
	for {
		local := map[string]engine.PendingRequest{}
		for _, r := range p.m.eng.Pending() {
			if r.Replica == "" {
				local[r.ID] = r
			}
		}
		for id, r := range local {
			p.mu.Lock()
			done := p.shared[id] || p.skipped[id]
			p.mu.Unlock()
			if !done {
				p.share(ctx, r, me)
			}
		}
		for id := range p.sharedIDs() {
			p.mu.Lock()
			busy := p.applying[id]
			p.mu.Unlock()
			if _, ok := local[id]; !ok && !busy {
				p.unshare(ctx, id)
			}
		}
		p.mu.Lock()
		for id := range p.skipped {
			if _, ok := local[id]; !ok {
				delete(p.skipped, id)
			}
		}
		p.mu.Unlock()
		select {
		case _, ok := <-changed:
			if !ok {
				return
			}
		case <-p.kick:
		case <-ctx.Done():
			return
		}
	}
}

func (p *pendingShare) sharedIDs() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.shared)
}

// share writes one of this replica's requests to the cluster.
func (p *pendingShare) share(ctx context.Context, r engine.PendingRequest, me string) {
	if len(r.Input) > MaxSharedInput {
		p.m.log.Warn("replica: a pending call's input is too large to share; it is listed and decided on this replica only",
			"id", r.ID, "skill", r.Skill, "bytes", len(r.Input))
		p.mu.Lock()
		p.skipped[r.ID] = true
		p.mu.Unlock()
		return
	}
	input := r.Input
	r.Input = nil
	raw, err := json.Marshal(r)
	if err != nil {
		p.m.log.Warn("replica: encode a pending call", "id", r.ID, "err", err)
		return
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: PendingConfigMapName(r.ID), Namespace: p.m.ns,
			Labels: map[string]string{LabelPending: me, LabelSkill: r.Skill}},
		Data:       map[string]string{KeyRequest: string(raw), KeyHolder: p.m.name},
		BinaryData: map[string][]byte{KeyInput: input},
	}
	if err := p.m.c.Create(ctx, cm); err != nil && !apierrors.IsAlreadyExists(err) {
		p.m.log.Warn("replica: share a pending call", "id", r.ID, "err", err)
		return
	}
	p.mu.Lock()
	p.shared[r.ID] = true
	p.mu.Unlock()
}

// unshare deletes one of this replica's requests from the cluster.
func (p *pendingShare) unshare(ctx context.Context, id string) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: PendingConfigMapName(id), Namespace: p.m.ns}}
	if err := client.IgnoreNotFound(p.m.c.Delete(ctx, cm)); err != nil {
		p.m.log.Warn("replica: delete an ended pending call", "id", id, "err", err)
		return
	}
	p.mu.Lock()
	delete(p.shared, id)
	delete(p.handled, id)
	p.mu.Unlock()
}

// watch follows every replica's pending ConfigMaps until ctx ends.
func (p *pendingShare) watch(ctx context.Context) {
	sel := client.HasLabels{LabelPending}
	sweep := time.NewTicker(p.m.sweepEvery)
	defer sweep.Stop()
	for ctx.Err() == nil {
		var l corev1.ConfigMapList
		if err := p.m.c.List(ctx, &l, client.InNamespace(p.m.ns), sel); err != nil {
			p.m.log.Warn("replica: list pending calls", "err", err)
			select {
			case <-time.After(time.Second):
				continue
			case <-ctx.Done():
				return
			}
		}
		p.reset(ctx, l.Items)
		w, err := p.m.c.Watch(ctx, &corev1.ConfigMapList{}, client.InNamespace(p.m.ns), sel,
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: l.ResourceVersion}})
		if err != nil {
			p.m.log.Warn("replica: watch pending calls", "err", err)
			continue
		}
	events:
		for {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					break events
				}
				cm, isCM := ev.Object.(*corev1.ConfigMap)
				if !isCM {
					break events // an error event: list again
				}
				switch ev.Type {
				case watch.Added, watch.Modified:
					p.put(ctx, cm)
				case watch.Deleted:
					p.remove(cm)
				}
			case <-sweep.C:
				p.sweep(ctx)
			case <-ctx.Done():
				w.Stop()
				return
			}
		}
		w.Stop()
	}
}

// reset replaces what is known with a fresh list.
func (p *pendingShare) reset(ctx context.Context, items []corev1.ConfigMap) {
	p.mu.Lock()
	gone := map[string]*corev1.ConfigMap{}
	maps.Copy(gone, p.objs)
	p.mu.Unlock()
	for i := range items {
		id := idOf(&items[i])
		delete(gone, id)
		p.put(ctx, &items[i])
	}
	for _, cm := range gone {
		p.remove(cm)
	}
	p.sweep(ctx)
}

func idOf(cm *corev1.ConfigMap) string {
	var r struct{ ID string }
	_ = json.Unmarshal([]byte(cm.Data[KeyRequest]), &r)
	if PendingConfigMapName(r.ID) != cm.Name {
		return ""
	}
	return r.ID
}

// put takes one pending ConfigMap as it now is.
func (p *pendingShare) put(ctx context.Context, cm *corev1.ConfigMap) {
	id := idOf(cm)
	if id == "" {
		return // not one of ours, or misnamed: ignored rather than guessed at
	}
	mine := cm.Labels[LabelPending] == holderLabel(p.m.name) && cm.Data[KeyHolder] == p.m.name
	p.mu.Lock()
	p.objs[id] = cm
	var res resultDoc
	if json.Unmarshal([]byte(cm.Data[KeyResult]), &res) == nil {
		if _, waiting := p.results[res.Nonce]; waiting {
			p.results[res.Nonce] = res // kept: the ConfigMap may be gone by the time its decider looks
		}
	}
	p.notify(id)
	var apply *decisionDoc
	if mine {
		var d decisionDoc
		if raw, ok := cm.Data[KeyDecision]; ok && json.Unmarshal([]byte(raw), &d) == nil && d.Nonce != "" && p.handled[id] != d.Nonce {
			p.handled[id] = d.Nonce
			p.applying[id] = true
			apply = &d
		}
	}
	p.mu.Unlock()
	if mine {
		if apply != nil {
			go p.apply(context.WithoutCancel(ctx), id, *apply)
		}
		return
	}
	var r engine.PendingRequest
	err := json.Unmarshal([]byte(cm.Data[KeyRequest]), &r)
	if err == nil {
		r.Input = cm.BinaryData[KeyInput]
		if r.Input == nil {
			r.Input = []byte{}
		}
		r.Replica = cm.Data[KeyHolder]
		err = r.Check()
		if err == nil && r.Replica == "" {
			err = errors.New("it names no holder")
		}
	}
	p.mu.Lock()
	_, had := p.peers[id]
	if err != nil {
		delete(p.peers, id)
	} else {
		p.peers[id] = r
	}
	p.mu.Unlock()
	if err != nil {
		p.m.log.Warn("replica: another replica's pending call is not shown", "id", id, "err", err)
	}
	if err == nil && !had || err != nil && had {
		p.changed()
	}
}

// remove forgets a deleted pending ConfigMap.
func (p *pendingShare) remove(cm *corev1.ConfigMap) {
	id := idOf(cm)
	p.mu.Lock()
	delete(p.objs, id)
	_, had := p.peers[id]
	delete(p.peers, id)
	p.notify(id)
	p.mu.Unlock()
	if had {
		p.changed()
	}
}

// notify wakes the PeerDecide calls waiting on id; the caller holds p.mu.
func (p *pendingShare) notify(id string) {
	for ch := range p.waiters[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// apply hands a decision another replica took to this replica's engine and writes
// back how it was taken.
func (p *pendingShare) apply(ctx context.Context, id string, d decisionDoc) {
	defer func() {
		p.mu.Lock()
		delete(p.applying, id)
		p.mu.Unlock()
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}()
	actx := ctx
	if d.Door != "" {
		actx = engine.WithDoor(ctx, d.Door)
	}
	err := p.m.eng.Decide(actx, engine.Decision{ID: id, By: d.By, Allow: d.Allow, Reason: d.Reason, Digest: d.Digest,
		Via: "replica " + d.Replica})
	res := resultDoc{Nonce: d.Nonce}
	if err != nil {
		res.Reason, res.Message = string(engine.ReasonOf(err)), err.Error()
		if res.Reason == "" {
			res.Reason = string(engine.ReasonUnavailable)
		}
	}
	raw, _ := json.Marshal(res)
	key := client.ObjectKey{Namespace: p.m.ns, Name: PendingConfigMapName(id)}
	for range 5 {
		var cm corev1.ConfigMap
		if err := p.m.c.Get(ctx, key, &cm); err != nil {
			return // gone: the call ended, and the decider sees it ended
		}
		if cm.Data == nil { // emptied in the cluster since the decision was read
			cm.Data = map[string]string{}
		}
		cm.Data[KeyResult] = string(raw)
		err := p.m.c.Update(ctx, &cm)
		if err == nil || !apierrors.IsConflict(err) {
			if err != nil {
				p.m.log.Warn("replica: write the result of a decision", "id", id, "err", err)
			}
			return
		}
	}
}

// sweep deletes pending requests whose holder left them well past their expiry.
func (p *pendingShare) sweep(ctx context.Context) {
	p.mu.Lock()
	var stale []*corev1.ConfigMap
	for _, cm := range p.objs {
		var r struct{ Expires time.Time }
		if json.Unmarshal([]byte(cm.Data[KeyRequest]), &r) == nil && time.Since(r.Expires) > p.m.stale {
			stale = append(stale, cm)
		}
	}
	p.mu.Unlock()
	for _, cm := range stale {
		err := p.m.c.Delete(ctx, cm, client.Preconditions{ResourceVersion: &cm.ResourceVersion})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			p.m.log.Warn("replica: delete a stale pending call", "name", cm.Name, "err", err)
		}
	}
}
