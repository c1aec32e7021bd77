package replica_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skillbox-dev/skillbox/internal/kubetest"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
	"github.com/skillbox-dev/skillbox/runtime/replica"
)

// echoUnderOversight builds the echo skill, installs it on both replicas and approves
// it on a with per-call oversight (token:alice decides).
func echoUnderOversight(t *testing.T) (a, b *replicaOf, ns string, c client.Client) {
	t.Helper()
	c = needCluster(t)
	ns = namespace(t, c)
	ctx := context.Background()
	first := testkit.NewHome(t)
	pkg := first.Build(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "../../isolation/wasm/testdata/echo.wasm",
		Body: "input: {type: object}\noutput: {type: object}\n"})
	role, err := kubetest.RoleFromFile("../../deploy/base/rbac.yaml", "skillbox-state")
	if err != nil {
		t.Fatal(err)
	}
	bCfg, err := kubetest.UserWithRole(ctx, testEnv, c, ns, "skillbox-state", role.Rules)
	if err != nil {
		t.Fatal(err)
	}
	a = newReplica(t, testCfg, first, ns, "a", pkg)
	b = newReplica(t, bCfg, first, ns, "b", pkg) // exactly the Role of deploy/base
	cand, err := a.eng.Candidate(ctx, "echo", "")
	if err != nil {
		t.Fatal(err)
	}
	grant := approval.Ask(cand.Entry.Manifest)
	grant.Oversight = &approval.Oversight{Approvers: []string{"token:alice"}, Reason: "payments"}
	if _, err := a.eng.Approve(ctx, cand, &grant, "ops"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to see the approval", func() bool {
		info, err := b.eng.Get(ctx, "echo", "")
		return err == nil && info.Approved && info.Approval.Grant.Oversight != nil
	})
	return a, b, ns, c
}

type callResult struct {
	res *engine.Result
	err error
}

// park starts a call on r and waits until replica other lists it; it returns the
// request as other lists it and how long that took after r listed it.
func park(t *testing.T, ctx context.Context, r, other *replicaOf, input string) (engine.PendingRequest, time.Duration, chan callResult) {
	t.Helper()
	done := make(chan callResult, 1)
	go func() {
		res, err := r.eng.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(input), Caller: "token:carol"})
		done <- callResult{res, err}
	}()
	var listedHere time.Time
	waitFor(t, "the call to wait on its replica", func() bool {
		for _, p := range r.eng.Pending() {
			if p.Replica == "" && bytes.Equal(p.Input, []byte(input)) {
				listedHere = time.Now()
				return true
			}
		}
		return false
	})
	var got engine.PendingRequest
	waitFor(t, "the other replica to list the call", func() bool {
		for _, p := range other.eng.Pending() {
			if bytes.Equal(p.Input, []byte(input)) {
				got = p
				return true
			}
		}
		return false
	})
	return got, time.Since(listedHere), done
}

// TestReplicasSharePendingCalls: a call waiting for a person on replica a is listed
// by replica b, whose approver's decision releases (allow) or refuses (deny) it on a;
// a decision by someone who is not an approver changes nothing; a call that ends
// (its caller gone) leaves nothing in the cluster.
func TestReplicasSharePendingCalls(t *testing.T) {
	a, b, ns, c := echoUnderOversight(t)
	ctx := context.Background()

	// Allowed on b, run on a.
	req, lag, done := park(t, ctx, a, b, `{"n":1}`)
	t.Logf("a call parked on a was listed on b after %s", lag.Round(time.Millisecond))
	if req.Replica != "a" || req.Skill != "echo" || req.Caller != "token:carol" || req.Reason != "payments" || req.Check() != nil {
		t.Fatalf("b lists %+v", req)
	}
	// Everything an approver is shown is bound: other words, approvers, signer or
	// reason under the same digest do not check.
	for name, edit := range map[string]func(*engine.PendingRequest){
		"review":    func(r *engine.PendingRequest) { r.Review = "nothing but compute on its input" },
		"approvers": func(r *engine.PendingRequest) { r.Approvers = append(r.Approvers, "token:mallory") },
		"signer":    func(r *engine.PendingRequest) { r.Signer = "someone else" },
		"reason":    func(r *engine.PendingRequest) { r.Reason = "routine" },
	} {
		forged := req
		forged.Approvers = slices.Clone(req.Approvers)
		edit(&forged)
		if forged.Check() == nil {
			t.Errorf("a request whose %s was changed still checks", name)
		}
	}
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: replica.PendingConfigMapName(req.ID)}, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Labels[replica.LabelPending] != "a" || !bytes.Equal(cm.BinaryData[replica.KeyInput], []byte(`{"n":1}`)) {
		t.Errorf("the shared request: labels %v, input %q", cm.Labels, cm.BinaryData[replica.KeyInput])
	}
	if err := b.eng.Decide(ctx, engine.Decision{ID: req.ID, By: "token:mallory", Allow: true}); engine.ReasonOf(err) != engine.ReasonNotApprover {
		t.Fatalf("a decision on b by a non-approver: %v; want NOT_APPROVER", err)
	}
	if err := b.eng.Decide(ctx, engine.Decision{ID: req.ID, By: "token:carol", Allow: true}); engine.ReasonOf(err) != engine.ReasonNotApprover {
		t.Fatalf("the caller deciding its own call on b: %v; want NOT_APPROVER", err)
	}
	if err := b.eng.Decide(ctx, engine.Decision{ID: req.ID, By: "token:alice", Allow: true, Digest: "sha256:00"}); engine.ReasonOf(err) != engine.ReasonInvalidInput {
		t.Fatalf("a decision on b naming another digest: %v; want INVALID_INPUT", err)
	}
	if err := b.eng.Decide(ctx, engine.Decision{ID: req.ID, By: "token:alice", Allow: true}); err != nil {
		t.Fatalf("allow on b: %v", err)
	}
	r := <-done
	if r.err != nil || !strings.Contains(string(r.res.Output), `"n":1`) {
		t.Fatalf("the call on a after allow on b: %v %v", r.res, r.err)
	}
	waitFor(t, "the ended request to leave the cluster and b", func() bool {
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: replica.PendingConfigMapName(req.ID)}, &corev1.ConfigMap{})
		return client.IgnoreNotFound(err) == nil && err != nil && len(b.eng.Pending()) == 0
	})
	// a's audit log names the approver and the replica that relayed the decision; b's
	// records that it relayed it.
	if rec := auditLine(t, a.eng, `"approval.allowed"`); !strings.Contains(rec, `"via":"replica b"`) || !strings.Contains(rec, `token:alice`) {
		t.Errorf("a's record of the decision: %s", rec)
	}
	if rec := auditLine(t, b.eng, `"approval.relayed"`); !strings.Contains(rec, `"replica":"a"`) {
		t.Errorf("b's record of the relayed decision: %s", rec)
	}

	// Denied on b: the call on a is refused with the approver's reason.
	req, _, done = park(t, ctx, a, b, `{"n":2}`)
	if err := b.eng.Decide(ctx, engine.Decision{ID: req.ID, By: "token:alice", Reason: "not today"}); err != nil {
		t.Fatalf("deny on b: %v", err)
	}
	if r := <-done; engine.ReasonOf(r.err) != engine.ReasonApprovalDenied || !strings.Contains(r.err.Error(), "not today") {
		t.Fatalf("the call on a after deny on b: %v", r.err)
	}

	// The other way round, and a caller that goes away: nothing is left.
	cctx, cancel := context.WithCancel(ctx)
	req, _, done = park(t, cctx, b, a, `{"n":3}`)
	cancel()
	if r := <-done; !errors.Is(r.err, context.Canceled) && engine.ReasonOf(r.err) != "CANCELED" {
		t.Fatalf("the call on b after its caller left: %v", r.err)
	}
	waitFor(t, "the abandoned request to leave the cluster and a", func() bool {
		var l corev1.ConfigMapList
		return c.List(ctx, &l, client.InNamespace(ns), client.HasLabels{replica.LabelPending}) == nil && len(l.Items) == 0 &&
			len(a.eng.Pending()) == 0
	})
	if err := a.eng.Decide(ctx, engine.Decision{ID: req.ID, By: "token:alice", Allow: true}); engine.ReasonOf(err) != engine.ReasonNotPending {
		t.Fatalf("a decision on a about the ended call: %v; want NOT_PENDING", err)
	}
}

// TestForgedPendingNotListed: a request in the cluster whose input is not the one
// its digest binds (changed by whoever may write ConfigMaps) is shown to no approver.
func TestForgedPendingNotListed(t *testing.T) {
	a, b, ns, c := echoUnderOversight(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _, done := park(t, ctx, a, b, `{"n":4}`)
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: replica.PendingConfigMapName(req.ID)}, &cm); err != nil {
		t.Fatal(err)
	}
	// Another id of the same shape (ids are hex: one that starts with f becomes e…).
	first := "f"
	if req.ID[0] == 'f' {
		first = "e"
	}
	forgedID := first + req.ID[1:]
	forged := cm.DeepCopy()
	forged.ResourceVersion, forged.UID = "", ""
	forged.Name = replica.PendingConfigMapName(forgedID)
	forged.Data[replica.KeyRequest] = strings.Replace(cm.Data[replica.KeyRequest], req.ID, forgedID, 1)
	forged.Labels[replica.LabelPending] = "ghost"
	forged.Data[replica.KeyHolder] = "ghost"
	forged.BinaryData[replica.KeyInput] = []byte(`{"n":5}`)
	if err := c.Create(ctx, forged); err != nil {
		t.Fatal(err)
	}
	// A watch delivers in order: once b lists a call parked after the forgery, it has
	// judged the forgery.
	_, _, done2 := park(t, ctx, a, b, `{"n":6}`)
	for _, p := range b.eng.Pending() {
		if p.ID == forgedID || bytes.Equal(p.Input, []byte(`{"n":5}`)) {
			t.Errorf("b lists the forged request %+v", p)
		}
	}
	if err := b.eng.Decide(ctx, engine.Decision{ID: forgedID, By: "token:alice", Allow: true}); engine.ReasonOf(err) != engine.ReasonNotPending {
		t.Errorf("a decision on the forged request: %v; want NOT_PENDING", err)
	}
	cancel()
	<-done
	<-done2
}

// auditLine is the last line of eng's audit log containing want.
func auditLine(t *testing.T, eng *engine.Engine, want string) string {
	t.Helper()
	var last string
	waitFor(t, "an audit record "+want, func() bool {
		data, err := os.ReadFile(eng.AuditPath())
		if err != nil {
			return false
		}
		for _, l := range strings.Split(string(data), "\n") {
			if strings.Contains(l, want) {
				last = l
			}
		}
		return last != ""
	})
	return last
}
