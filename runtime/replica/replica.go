// Package replica lets several skillbox servers agree on the operator's decisions
// that must hold everywhere at once — the kill switch and the approvals — by keeping
// them in the Kubernetes API server as ConfigMaps, watched by every replica and
// mirrored into its engine. A skill disabled on one replica is disabled on the others
// as soon as their watch delivers the change (calls in flight there are cancelled);
// an approval made on one, or applied with kubectl from git, reaches the others the
// same way. The API server is the source of truth: at start a replica takes the
// cluster's state over its own disk.
//
// One ConfigMap per decision, so each is one atomic create, update or delete:
//
//	skillbox-disabled-NAME  labels skillbox.dev/state=disabled; data: reason, by
//	skillbox-approval-NAME  labels skillbox.dev/state=approval; data: approval.yaml
//
// The approval's file is the one approvals/NAME.yaml holds, so an operator can keep it
// in git and `kubectl apply` it. Skill packages are not mirrored: every replica
// installs them (from the same OCI reference), and an approval pins the digest.
//
// An approval taken from the cluster is applied only if it loads and names no secret
// source or host directory of this server that the replica's operator does not allow
// (Relayed, relayed.go); otherwise the replica keeps what it had and says why (Refused).
package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/store"
)

// Labels and keys of the ConfigMaps.
const (
	LabelState    = "skillbox.dev/state" // "disabled" or "approval"
	LabelSkill    = "skillbox.dev/skill"
	StateDisabled = "disabled"
	StateApproval = "approval"
	KeyApproval   = "approval.yaml"
	KeyReason     = "reason"
	KeyBy         = "by"
)

// Engine is what the mirror needs of the engine (*engine.Engine).
type Engine interface {
	Home() string
	Disable(ctx context.Context, name, by, reason string) (int, error)
	Enable(ctx context.Context, name, by string) error
	Reload(ctx context.Context, by string) (int, error)
	Watch() (<-chan struct{}, func())
	// Per-call oversight (pending.go).
	Pending() []engine.PendingRequest
	WatchPending() (<-chan struct{}, func())
	Decide(ctx context.Context, d engine.Decision) error
	SetPendingPeers(p engine.PendingPeers) (changed func())
	// Packages (packages.go).
	InstallFrom(ctx context.Context, src, by string, o engine.Origin) (*engine.Installed, error)
	VerifyBundle(ctx context.Context, rawManifest, bundle []byte) error
	OriginOf(md string) (string, error)
}

var _ Engine = (*engine.Engine)(nil)

// Mirror keeps one engine and the API server in step. Start it; Stop ends it.
type Mirror struct {
	c      client.WithWatch
	ns     string
	eng    Engine
	st     *store.Store
	by     string // how this replica names itself in the others' audit logs
	name   string // this replica's name (its pod's)
	log    *slog.Logger
	synced map[string]string // key → value both sides last agreed on

	pending  *pendingShare
	packages *packages
	// How long past its expiry a pending request is stale, and how often a running
	// replica looks for such requests (staleAfter and staleAfter/2; tests shorten them).
	stale, sweepEvery time.Duration

	// What approvals taken from the cluster may name of this server (relayed.go), and
	// per skill why the cluster's approval of it is not applied here.
	relayedOpt Relayed
	relayed    *relayedRules
	refusedMu  sync.Mutex
	refused    map[string]string

	ready   chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
	workers sync.WaitGroup // the pending calls' goroutines
	errOnce sync.Once
	err     error
}

// Option configures a Mirror.
type Option func(*Mirror)

// WithLogger receives what the mirror could not do (a ConfigMap it could not write,
// an approval in the cluster that does not load or names what this replica does not
// take from the cluster).
func WithLogger(l *slog.Logger) Option { return func(m *Mirror) { m.log = l } }

// WithName is how this replica signs what it applies ("replica NAME" in the audit
// log); default the host name.
func WithName(name string) Option { return func(m *Mirror) { m.name, m.by = name, "replica "+name } }

// Scheme holds the kinds the mirror reads and writes.
func Scheme() *runtime.Scheme {
	sc := runtime.NewScheme()
	_ = corev1.AddToScheme(sc)
	return sc
}

// Start reads the cluster's decisions in namespace ns, applies them to eng (the
// cluster wins over the replica's disk), and keeps both in step until Stop or ctx
// ends. It returns once the first state has been applied.
func Start(ctx context.Context, cfg *rest.Config, ns string, eng Engine, opts ...Option) (*Mirror, error) {
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return nil, fmt.Errorf("replica: client: %w", err)
	}
	st, err := store.Open(eng.Home())
	if err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	host, _ := os.Hostname()
	m := &Mirror{c: c, ns: ns, eng: eng, st: st, name: host, by: "replica " + host, log: slog.New(slog.DiscardHandler),
		ready: make(chan struct{}), done: make(chan struct{}), stale: staleAfter, sweepEvery: staleAfter / 2}
	m.packages = &packages{}
	for _, o := range opts {
		o(m)
	}
	if m.name == "" {
		return nil, errors.New("replica: no name (WithName) and no host name")
	}
	if m.relayed, err = m.relayedOpt.compile(eng.Home()); err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	// The cluster wins at start: what this replica's disk holds counts as agreed, so
	// whatever the cluster says otherwise is applied here, not pushed there.
	local, err := m.local()
	if err != nil {
		return nil, err
	}
	m.synced = local
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	remote := make(chan map[string]string, 1)
	go m.watchRemote(rctx, remote)
	go m.loop(rctx, remote)
	select {
	case <-m.ready:
		m.pending = newPendingShare(m)
		m.pending.changed = eng.SetPendingPeers(m.pending)
		m.workers.Add(2)
		go func() { defer m.workers.Done(); m.pending.watch(rctx) }()
		go func() { defer m.workers.Done(); m.pending.syncOwn(rctx) }()
		return m, nil
	case <-m.done:
		return nil, m.err
	case <-ctx.Done():
		m.Stop()
		return nil, ctx.Err()
	}
}

// Stop ends the mirror and waits for it.
func (m *Mirror) Stop() {
	m.cancel()
	<-m.done
	m.workers.Wait()
	if m.pending != nil {
		m.eng.SetPendingPeers(nil)
	}
}

func (m *Mirror) fail(err error) { m.errOnce.Do(func() { m.err = err }) }

// loop owns the state: it reconciles on every remote snapshot and local change.
func (m *Mirror) loop(ctx context.Context, remoteC <-chan map[string]string) {
	defer close(m.done)
	changed, stop := m.eng.Watch()
	defer stop()
	var remote map[string]string
	first := true
	for {
		select {
		case r, ok := <-remoteC:
			if !ok {
				if ctx.Err() == nil {
					m.fail(errors.New("replica: the watch of the cluster's state ended"))
				}
				return
			}
			remote = r
		case <-changed:
			if remote == nil {
				continue
			}
		case <-ctx.Done():
			return
		}
		m.reconcile(ctx, remote)
		if first {
			first = false
			close(m.ready)
		}
	}
}

// local is the replica's own decisions, as keys and values.
func (m *Mirror) local() (map[string]string, error) {
	out := map[string]string{}
	dis, err := m.st.DisabledSet()
	if err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	for name, d := range dis {
		out[StateDisabled+"/"+name] = d.Reason
	}
	dir := approval.Dir(m.eng.Home())
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("replica: approvals: %w", err)
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".yaml")
		if !ok || e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("replica: approvals: %w", err)
		}
		out[StateApproval+"/"+name] = string(data)
	}
	return out, nil
}

// reconcile is a three-way merge of the cluster, this replica and what both last
// agreed on: a side that changed since is applied to the other; when both changed,
// the cluster wins, except that a kill switch on either side holds (fail closed).
func (m *Mirror) reconcile(ctx context.Context, remote map[string]string) {
	local, err := m.local()
	if err != nil {
		m.log.Warn("replica: read local state", "err", err)
		return
	}
	keys := map[string]bool{}
	for _, mp := range []map[string]string{remote, local, m.synced} {
		for k := range mp {
			keys[k] = true
		}
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	// Kill switches first: they are the ones that must arrive fast.
	sort.Slice(sorted, func(i, j int) bool {
		di, dj := strings.HasPrefix(sorted[i], StateDisabled), strings.HasPrefix(sorted[j], StateDisabled)
		if di != dj {
			return di
		}
		return sorted[i] < sorted[j]
	})
	reload := false
	for _, k := range sorted {
		if strings.Contains(k, "\x00") {
			continue // who disabled: read with its switch
		}
		r, rok := remote[k]
		l, lok := local[k]
		s, sok := m.synced[k]
		if rok == lok && r == l {
			m.agree(k, r, rok)
			continue
		}
		remoteChanged := rok != sok || r != s
		localChanged := lok != sok || l != s
		kind, name, _ := strings.Cut(k, "/")
		pushLocal := localChanged && (!remoteChanged || (kind == StateDisabled && lok))
		if pushLocal {
			if err := m.push(ctx, kind, name, l, lok); err != nil {
				m.log.Warn("replica: write to the cluster", "key", k, "err", err)
				continue
			}
			m.agree(k, l, lok)
			continue
		}
		ok, needReload := m.apply(ctx, kind, name, r, rok, remote)
		if ok {
			m.agree(k, r, rok)
		}
		reload = reload || needReload
	}
	if reload {
		if _, err := m.eng.Reload(ctx, m.by); err != nil {
			m.log.Warn("replica: reload after the cluster's approvals changed", "err", err)
		}
	}
	m.ensurePackages(ctx, remote)
}

func (m *Mirror) agree(k, v string, present bool) {
	if present {
		m.synced[k] = v
	} else {
		delete(m.synced, k)
	}
	if name, ok := cutApprovalKey(k); ok {
		m.refuse(name, "", nil) // both sides agree: nothing of the cluster's is held back
	}
}

// Refused says, per skill, why the cluster's approval of it is not applied on this
// replica (it does not load, or it names a secret source or host directory this
// replica does not take from the cluster); this replica keeps what it had. Empty when
// every approval in the cluster is applied.
func (m *Mirror) Refused() map[string]string {
	m.refusedMu.Lock()
	defer m.refusedMu.Unlock()
	return maps.Clone(m.refused)
}

// refuse records why the cluster's approval of name is not applied ("": it is) and
// logs it once, when the reason changes.
func (m *Mirror) refuse(name, why string, err error) {
	m.refusedMu.Lock()
	defer m.refusedMu.Unlock()
	if why == "" {
		delete(m.refused, name)
		return
	}
	why += ": " + err.Error()
	if m.refused[name] == why {
		return
	}
	if m.refused == nil {
		m.refused = map[string]string{}
	}
	m.refused[name] = why
	m.log.Warn("replica: "+why, "skill", name)
}

// apply makes the cluster's decision this replica's; it says whether it did and
// whether the engine must reload.
func (m *Mirror) apply(ctx context.Context, kind, name, v string, present bool, remote map[string]string) (ok, reload bool) {
	switch kind {
	case StateDisabled:
		if present {
			by := m.by
			if b := remote[kind+"/"+name+"\x00by"]; b != "" {
				by = b + " (via " + m.by + ")"
			}
			_, err := m.eng.Disable(ctx, name, by, v)
			var ee *engine.Error
			if errors.As(err, &ee) && ee.Reason == engine.ReasonNotFound {
				// Not installed here: the switch must still hold once it is.
				err = m.st.Disable(name, by, v)
			}
			if err != nil && !(errors.As(err, &ee) && ee.Reason == engine.ReasonCallsRunning) {
				m.log.Warn("replica: disable", "skill", name, "err", err)
				return false, false
			}
			return true, false
		}
		if err := m.eng.Enable(ctx, name, m.by); err != nil {
			m.log.Warn("replica: enable", "skill", name, "err", err)
			return false, false
		}
		return true, false
	case StateApproval:
		path := approval.Path(m.eng.Home(), name)
		if !present {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				m.log.Warn("replica: remove approval", "skill", name, "err", err)
				return false, false
			}
			return true, true
		}
		err := writeApproval(path, name, []byte(v), m.relayed)
		var re *relayedError
		switch {
		case errors.As(err, &re):
			m.refuse(name, fmt.Sprintf("the cluster's approval of %s is not applied, this replica keeps what it had: it names what this replica does not take from the cluster", name), err)
			return false, false
		case err != nil:
			m.refuse(name, fmt.Sprintf("the cluster's approval of %s does not load, this replica keeps what it had", name), err)
			return false, false
		}
		return true, true
	}
	return true, false
}

// writeApproval checks that data is a good approval of name that names only what rr
// allows, or what the approval already at path binds the same way, and puts it in place.
func writeApproval(path, name string, data []byte, rr *relayedRules) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".replica-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	a, err := approval.Load(tmp.Name())
	if err != nil {
		// Load's error is "TMPFILE: problem"; the problem alone, its chain kept
		// (ErrNotApproved, *GrantError), without the temporary file's name, which is
		// new on every try.
		if inner := errors.Unwrap(err); inner != nil {
			return inner
		}
		return err
	}
	if a.Skill != name {
		return fmt.Errorf("it approves %q, not %q", a.Skill, name)
	}
	own, err := approval.Load(path)
	if err != nil {
		own = nil // none, or one that does not load: it binds nothing
	}
	if probs := rr.refusals(a, own); len(probs) > 0 {
		return &relayedError{probs}
	}
	return os.Rename(tmp.Name(), path)
}

// ConfigMapName is the name of the ConfigMap holding one decision.
func ConfigMapName(kind, skill string) string { return "skillbox-" + kind + "-" + skill }

// push writes this replica's decision to the cluster.
func (m *Mirror) push(ctx context.Context, kind, name, v string, present bool) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName(kind, name), Namespace: m.ns,
		Labels: map[string]string{LabelState: kind, LabelSkill: name}}}
	if !present {
		return client.IgnoreNotFound(m.c.Delete(ctx, cm))
	}
	switch kind {
	case StateDisabled:
		cm.Data = map[string]string{KeyReason: v, KeyBy: m.by}
	case StateApproval:
		cm.Data = map[string]string{KeyApproval: v}
		// Where the approved package came from, for the replicas that lack it.
		if md := manifestDigestOf(v); md != "" {
			if ref, err := m.eng.OriginOf(md); err == nil && ref != "" {
				cm.Data[KeyOrigin] = ref
			}
		}
	}
	err := m.c.Create(ctx, cm)
	if apierrors.IsAlreadyExists(err) {
		var have corev1.ConfigMap
		if err = m.c.Get(ctx, client.ObjectKeyFromObject(cm), &have); err == nil {
			have.Data, have.Labels = cm.Data, cm.Labels
			err = m.c.Update(ctx, &have)
		}
	}
	if err == nil && kind == StateApproval {
		m.warnRelayed(name, v)
	}
	return err
}

// warnRelayed says when this replica's own approval names what replicas with its flags
// will not take from the cluster: there it stays this replica's alone.
func (m *Mirror) warnRelayed(name, v string) {
	var a approval.Approval
	if yaml.Unmarshal([]byte(v), &a) != nil {
		return
	}
	if probs := m.relayed.refusals(&a, nil); len(probs) > 0 {
		m.log.Warn("replica: this replica's approval of "+name+" is in the cluster, but replicas with the same flags will not apply it unless their own approval of "+name+" binds these the same way: "+strings.Join(probs, "; "), "skill", name)
	}
}

// watchRemote sends a full snapshot of the cluster's decisions after the first list
// and after every change, until ctx ends.
func (m *Mirror) watchRemote(ctx context.Context, out chan map[string]string) {
	defer close(out)
	sel := client.HasLabels{LabelState}
	objs := map[string]*corev1.ConfigMap{}
	send := func() bool {
		snap := snapshot(objs)
		select {
		case <-out: // an unread older snapshot: replace it
		default:
		}
		select {
		case out <- snap:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for ctx.Err() == nil {
		var l corev1.ConfigMapList
		if err := m.c.List(ctx, &l, client.InNamespace(m.ns), sel); err != nil {
			m.fail(fmt.Errorf("replica: list ConfigMaps in %s: %w", m.ns, err))
			return
		}
		objs = map[string]*corev1.ConfigMap{}
		for i := range l.Items {
			objs[l.Items[i].Name] = &l.Items[i]
		}
		if !send() {
			return
		}
		w, err := m.c.Watch(ctx, &corev1.ConfigMapList{}, client.InNamespace(m.ns), sel,
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: l.ResourceVersion}})
		if err != nil {
			m.fail(fmt.Errorf("replica: watch ConfigMaps in %s: %w", m.ns, err))
			return
		}
		for ev := range w.ResultChan() {
			cm, ok := ev.Object.(*corev1.ConfigMap)
			if !ok {
				break // an error event: list again
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				objs[cm.Name] = cm
			case watch.Deleted:
				delete(objs, cm.Name)
			default:
				continue
			}
			if !send() {
				w.Stop()
				return
			}
		}
		w.Stop()
	}
}

// snapshot turns the ConfigMaps into keys and values; who disabled is carried under
// a key no skill name can make.
func snapshot(objs map[string]*corev1.ConfigMap) map[string]string {
	out := map[string]string{}
	for _, cm := range objs {
		kind, name := cm.Labels[LabelState], cm.Labels[LabelSkill]
		if name == "" || cm.Name != ConfigMapName(kind, name) {
			continue // not one of ours, or misnamed: ignored rather than guessed at
		}
		switch kind {
		case StateDisabled:
			out[kind+"/"+name] = cm.Data[KeyReason]
			out[kind+"/"+name+"\x00by"] = cm.Data[KeyBy]
		case StateApproval:
			if v, ok := cm.Data[KeyApproval]; ok {
				out[kind+"/"+name] = v
				if o := cm.Data[KeyOrigin]; o != "" {
					out[kind+"/"+name+"\x00"+KeyOrigin] = o
				}
			}
		}
	}
	return out
}
