package replica_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/skillbox-dev/skillbox/internal/kubetest"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
	"github.com/skillbox-dev/skillbox/runtime/replica"
)

var (
	testEnv *envtest.Environment
	testCfg *rest.Config
	envErr  error
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	env, err := kubetest.Start()
	envErr = err
	if err != nil {
		if !errors.Is(err, kubetest.ErrNoAssets) || kubetest.Required() {
			fmt.Fprintln(os.Stderr, "replica tests:", err)
		}
		os.Exit(m.Run())
	}
	testEnv, testCfg = env, env.Config
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "replica tests: stop envtest:", err)
	}
	os.Exit(code)
}

func needCluster(t *testing.T) client.Client {
	t.Helper()
	if envErr != nil {
		if kubetest.Required() {
			t.Fatalf("no Kubernetes control plane, and SKILLBOX_REQUIRE_DOCKER=1 forbids skipping: %v", envErr)
		}
		t.Skipf("no Kubernetes control plane: %v", envErr)
	}
	c, err := client.New(testCfg, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// replicaOf is one skillbox server: its own skill home (trusting the same signer as
// the first) and engine, and its mirror of the cluster's decisions.
type replicaOf struct {
	home   *testkit.Home
	eng    *engine.Engine
	mirror *replica.Mirror
}

// newReplica starts a replica; pkg, when not empty, is installed first.
func newReplica(t *testing.T, cfg *rest.Config, trust *testkit.Home, ns, name string, pkg string, opts ...replica.Option) *replicaOf {
	t.Helper()
	h := testkit.NewHome(t)
	if trust != nil {
		for _, f := range []string{"trust.yaml", "keys/release.pub"} {
			data, err := os.ReadFile(filepath.Join(trust.Dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(h.Dir, f), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	r := &replicaOf{home: h}
	r.eng = h.Engine(t, engine.Config{})
	if pkg != "" {
		if _, err := r.eng.Install(context.Background(), pkg, "test"); err != nil {
			t.Fatal(err)
		}
	}
	m, err := replica.Start(context.Background(), cfg, ns, r.eng, append([]replica.Option{replica.WithName(name)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	r.mirror = m
	return r
}

func (r *replicaOf) call(ctx context.Context) error {
	_, err := r.eng.Invoke(ctx, engine.Request{Skill: "blocked", Input: []byte(`{}`), Caller: "t"})
	return err
}

func namespace(t *testing.T, c client.Client) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "skillbox-"}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// TestReplicasShareApprovalsAndKillSwitch: two engines, each with its own disk, agree
// through the API server. An approval made on one lets the other run the skill; the
// kill switch thrown on one ends the call in flight on the other; enable on the
// other lifts it on the first; an approval removed from the cluster (kubectl delete)
// is gone from both.
func TestReplicasShareApprovalsAndKillSwitch(t *testing.T) {
	c := needCluster(t)
	ns := namespace(t, c)
	ctx := context.Background()
	first := testkit.NewHome(t)
	pkg := first.Build(t, testkit.Package{Name: "blocked", Version: "1.0.0", Module: "../../isolation/wasm/testdata/sleep.wasm",
		Body: "input: {type: object}\noutput: {type: object}\nlimits: {timeout: 60s}\n"})
	// Replica b has exactly the Role of deploy/base/rbac.yaml, no more.
	role, err := kubetest.RoleFromFile("../../deploy/base/rbac.yaml", "skillbox-state")
	if err != nil {
		t.Fatal(err)
	}
	bCfg, err := kubetest.UserWithRole(ctx, testEnv, c, ns, "skillbox-state", role.Rules)
	if err != nil {
		t.Fatal(err)
	}
	a := newReplica(t, testCfg, first, ns, "a", pkg)
	b := newReplica(t, bCfg, first, ns, "b", pkg)

	if err := b.call(ctx); engine.ReasonOf(err) != engine.ReasonNotApproved {
		t.Fatalf("call on b before any approval: %v", err)
	}
	cand, err := a.eng.Candidate(ctx, "blocked", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.eng.Approve(ctx, cand, nil, "ops"); err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	waitFor(t, "the approval in the cluster", func() bool {
		return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: replica.ConfigMapName(replica.StateApproval, "blocked")}, &cm) == nil
	})
	waitFor(t, "b to see the approval", func() bool {
		info, err := b.eng.Get(ctx, "blocked", "")
		return err == nil && info.Approved
	})

	// A call on b, blocked in the guest; the kill switch thrown on a ends it.
	errc := make(chan error, 1)
	go func() { errc <- b.call(ctx) }()
	waitFor(t, "the call on b", func() bool { return len(b.eng.Calls()) == 1 })
	thrown := time.Now()
	if _, err := a.eng.Disable(ctx, "blocked", "ops", "incident 42"); err != nil {
		t.Fatal(err)
	}
	err = <-errc
	ended := time.Since(thrown)
	if engine.ReasonOf(err) != engine.ReasonDisabled {
		t.Fatalf("b's call ended with %v; want DISABLED", err)
	}
	t.Logf("disable on a ended the call on b after %s", ended.Round(time.Millisecond))
	if err := b.call(ctx); engine.ReasonOf(err) != engine.ReasonDisabled || !contains(err.Error(), "incident 42") {
		t.Errorf("new call on b: %v; want DISABLED with the operator's reason", err)
	}

	// Enable on b lifts the switch on a.
	if err := b.eng.Enable(ctx, "blocked", "ops"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a to see the enable", func() bool {
		info, err := a.eng.Get(ctx, "blocked", "")
		return err == nil && !info.Disabled
	})

	// The operator removes the approval from the cluster: both replicas lose it.
	if err := c.Delete(ctx, &cm); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*replicaOf{a, b} {
		waitFor(t, "the approval to be withdrawn", func() bool {
			info, err := r.eng.Get(ctx, "blocked", "")
			return err == nil && !info.Approved
		})
	}
	if err := a.call(ctx); engine.ReasonOf(err) != engine.ReasonNotApproved {
		t.Errorf("call on a after the approval was deleted: %v", err)
	}
}

// TestClusterWinsAtStart: a replica that starts with an approval on its own disk that
// the cluster does not hold drops it (a stale disk must not resurrect a withdrawn
// approval), and one whose kill switch is in the cluster but not on its disk starts
// with the skill disabled. A malformed approval put in the cluster is not applied.
func TestClusterWinsAtStart(t *testing.T) {
	c := needCluster(t)
	ns := namespace(t, c)
	ctx := context.Background()
	h := testkit.NewHome(t)
	pkg := h.Build(t, testkit.Package{Name: "blocked", Version: "1.0.0", Module: "../../isolation/wasm/testdata/sleep.wasm",
		Body: "input: {type: object}\noutput: {type: object}\n"})
	eng := h.Engine(t, engine.Config{})
	if _, err := eng.Install(ctx, pkg, "test"); err != nil {
		t.Fatal(err)
	}
	cand, err := eng.Candidate(ctx, "blocked", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Approve(ctx, cand, nil, "ops"); err != nil {
		t.Fatal(err)
	}
	// In the cluster: a kill switch, and a malformed approval for another skill.
	for _, cm := range []*corev1.ConfigMap{
		{ObjectMeta: metav1.ObjectMeta{Name: replica.ConfigMapName(replica.StateDisabled, "blocked"), Namespace: ns,
			Labels: map[string]string{replica.LabelState: replica.StateDisabled, replica.LabelSkill: "blocked"}},
			Data: map[string]string{replica.KeyReason: "frozen", replica.KeyBy: "ops"}},
		{ObjectMeta: metav1.ObjectMeta{Name: replica.ConfigMapName(replica.StateApproval, "other"), Namespace: ns,
			Labels: map[string]string{replica.LabelState: replica.StateApproval, replica.LabelSkill: "other"}},
			Data: map[string]string{replica.KeyApproval: "skill: other\nnot-a-field: 1\n"}},
	} {
		if err := c.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
	}
	m, err := replica.Start(ctx, testCfg, ns, eng, replica.WithName("late"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	info, err := eng.Get(ctx, "blocked", "")
	if err != nil {
		t.Fatal(err)
	}
	if info.Approved || !info.Disabled {
		t.Errorf("after start: approved %v disabled %v; want the cluster's state (not approved, disabled)", info.Approved, info.Disabled)
	}
	if _, err := os.Stat(filepath.Join(h.Dir, "approvals", "other.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the malformed approval was written: %v", err)
	}
	// Nothing of the replica's stale disk was pushed to the cluster.
	var l corev1.ConfigMapList
	if err := c.List(ctx, &l, client.InNamespace(ns), client.HasLabels{replica.LabelState}); err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 2 {
		t.Errorf("%d ConfigMaps in the cluster, want the 2 the test made", len(l.Items))
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
