package kube

import (
	"context"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	sandboxv1 "sigs.k8s.io/agent-sandbox/api/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestSecretOwnedByWorkload: the call's Secret (plain secrets, granted values, the
// proxy token) is owned by the call's workload, so the cluster's garbage collector
// removes it with the workload (Job TTL, Sandbox shutdown) when skillbox dies before
// its own cleanup (security review seckube: the Secret had no owner, and a crashed
// replica left its calls' secret values in the namespace for good; Close and Drain
// of the next process select another instance).
func TestSecretOwnedByWorkload(t *testing.T) {
	needCluster(t)
	for _, b := range []Backend{BackendSandbox, BackendJob} {
		t.Run(string(b), func(t *testing.T) {
			ns := namespace(t)
			sb := newSandbox(t, ns, WithBackend(b))
			call := testCall("owned", 5*time.Minute)
			call.Grant.Env = map[string]string{"TOKEN": "plain-secret-value"}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := start(sb, ctx, call)
			var w client.Object
			waitFor(t, "the workload", func() bool {
				sel := []client.ListOption{client.InNamespace(ns), client.MatchingLabels{LabelCall: call.ID}}
				if b == BackendSandbox {
					var l sandboxv1.SandboxList
					_ = testClient.List(ctx, &l, sel...)
					if len(l.Items) == 1 {
						w = &l.Items[0]
					}
				} else {
					var l batchv1.JobList
					_ = testClient.List(ctx, &l, sel...)
					if len(l.Items) == 1 {
						w = &l.Items[0]
					}
				}
				return w != nil
			})
			var sec corev1.Secret
			waitFor(t, "the Secret owned by the workload", func() bool {
				if err := testClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: w.GetName()}, &sec); err != nil {
					t.Fatal(err)
				}
				for _, o := range sec.OwnerReferences {
					if o.UID == w.GetUID() {
						return true
					}
				}
				return false
			})
			o := sec.OwnerReferences[0]
			wantKind := map[Backend]string{BackendSandbox: "Sandbox", BackendJob: "Job"}[b]
			if len(sec.OwnerReferences) != 1 || o.Kind != wantKind || o.Name != w.GetName() ||
				(o.BlockOwnerDeletion != nil && *o.BlockOwnerDeletion) {
				t.Errorf("owner references %+v: want the %s %s alone, not blocking its deletion", sec.OwnerReferences, wantKind, w.GetName())
			}
			cancel()
			await(t, done)
			assertClean(t, sb)
		})
	}
}
