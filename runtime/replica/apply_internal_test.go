package replica

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/skillbox-dev/skillbox/runtime/engine"
)

// decideOnly is an engine whose Decide refuses; nothing else of it is called.
type decideOnly struct{ Engine }

func (decideOnly) Decide(context.Context, engine.Decision) error {
	return &engine.Error{Reason: engine.ReasonNotPending, Msg: "not pending"}
}

// TestApplyDecisionToEmptiedConfigMap: a holder writing how a relayed decision was
// taken into a pending ConfigMap that a ConfigMap writer emptied after writing the
// decision (no data at all) writes the result, and does not panic (security review
// seckube: the write went into a nil map, a panic in a goroutine of its own, which
// ended the whole server).
func TestApplyDecisionToEmptiedConfigMap(t *testing.T) {
	const id = "0123456789abcdef"
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: PendingConfigMapName(id), Namespace: "state"}}
	c := fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(cm).Build()
	m := &Mirror{c: c, ns: "state", eng: decideOnly{}, log: slog.New(slog.DiscardHandler)}
	p := newPendingShare(m)
	p.applying[id] = true
	p.apply(context.Background(), id, decisionDoc{Nonce: "n1", By: "token:alice", Allow: true, Replica: "b"})
	var got corev1.ConfigMap
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(cm), &got); err != nil {
		t.Fatal(err)
	}
	var res resultDoc
	if err := json.Unmarshal([]byte(got.Data[KeyResult]), &res); err != nil || res.Nonce != "n1" || res.Reason != string(engine.ReasonNotPending) {
		t.Errorf("result %q (%v): want the decision's nonce and NOT_PENDING", got.Data[KeyResult], err)
	}
}
