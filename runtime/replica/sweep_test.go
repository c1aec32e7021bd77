package replica_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/replica"
)

// TestStalePendingSwept: the pending requests a dead replica left (its holder gone,
// their expiry long past) are deleted by the other replicas: those in the cluster when
// a replica starts by its first list, and one left while it runs by its periodic
// sweep. A request expired less than the stale time ago, one not yet expired, and a
// ConfigMap without the pending label stay.
func TestStalePendingSwept(t *testing.T) {
	c := needCluster(t)
	ns := namespace(t, c)
	ctx := context.Background()
	// Stale means an hour past its expiry here, so the entries that must stay are far
	// from stale however slow the machine.
	const stale = time.Hour
	now := time.Now()
	// pending writes a request as a replica named "dead" shares one (pendingShare.share).
	pending := func(expires time.Time, labelled bool) string {
		t.Helper()
		var b [12]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		raw, err := json.Marshal(engine.PendingRequest{ID: id, Skill: "echo", Caller: "token:carol",
			Requested: expires.Add(-5 * time.Minute), Expires: expires})
		if err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{replica.LabelSkill: "echo"}
		if labelled {
			labels[replica.LabelPending] = "dead"
		}
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: replica.PendingConfigMapName(id), Namespace: ns, Labels: labels},
			Data:       map[string]string{replica.KeyRequest: string(raw), replica.KeyHolder: "dead"},
			BinaryData: map[string][]byte{replica.KeyInput: []byte(`{}`)},
		}
		if err := c.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
		return id
	}
	exists := func(id string) bool {
		t.Helper()
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: replica.PendingConfigMapName(id)}, &corev1.ConfigMap{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	}
	waitGone := func(id, what string) {
		t.Helper()
		waitFor(t, what+" (pending ConfigMap "+id+") to be deleted", func() bool { return !exists(id) })
	}

	staleAtStart := pending(now.Add(-2*stale), true)
	young := pending(now.Add(-time.Minute), true) // expired, but not yet stale
	future := pending(now.Add(stale), true)       // not expired
	unlabelled := pending(now.Add(-2*stale), false)

	// a never sweeps on its own clock during the test: only its start can delete.
	a := newReplica(t, testCfg, nil, ns, "a", "", replica.WithSweep(stale, 24*time.Hour))
	waitGone(staleAtStart, "the stale request a dead replica left, by a at its start")
	a.mirror.Stop()

	// b sweeps often. Once it deleted staleAtB, it has listed, so staleLater, made
	// after, reaches it through its watch and only its periodic sweep can delete it.
	staleAtB := pending(now.Add(-2*stale), true)
	newReplica(t, testCfg, nil, ns, "b", "", replica.WithSweep(stale, 20*time.Millisecond))
	waitGone(staleAtB, "the stale request a dead replica left, by b at its start")
	staleLater := pending(now.Add(-2*stale), true)
	waitGone(staleLater, "the stale request left while b runs, by b's periodic sweep")

	// Both sweeps that deleted the stale requests knew the others (a watch delivers in
	// order), and left them.
	for id, what := range map[string]string{
		young:      "a request expired less than the stale time ago",
		future:     "a request not yet expired",
		unlabelled: "a ConfigMap without the pending label",
	} {
		if !exists(id) {
			t.Errorf("%s was deleted", what)
		}
	}
}
