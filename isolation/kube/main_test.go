package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	sandboxctl "sigs.k8s.io/agent-sandbox/controllers"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/skillbox-dev/skillbox/internal/kubetest"
)

// The control plane all tests of the package share (started once: ≈ 5 s), with
// agent-sandbox's Sandbox controller running in-process, and why there is none.
var (
	testEnv    *envtest.Environment
	testCfg    *rest.Config
	testClient client.Client
	envErr     error
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	testEnv, envErr = kubetest.Start("testdata/crds")
	if envErr != nil {
		if !errors.Is(envErr, kubetest.ErrNoAssets) || kubetest.Required() {
			fmt.Fprintln(os.Stderr, "kube tests:", envErr)
		}
		os.Exit(m.Run()) // each test skips or fails on envErr
	}
	testCfg = testEnv.Config
	code, err := withController(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kube tests:", err)
		code = 1
	}
	if err := testEnv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "kube tests: stop envtest:", err)
	}
	os.Exit(code)
}

// withController runs agent-sandbox's Sandbox controller while the tests run.
func withController(m *testing.M) (int, error) {
	mgr, err := ctrl.NewManager(testCfg, ctrl.Options{Scheme: Scheme(), Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
	if err != nil {
		return 0, err
	}
	if err := (&sandboxctl.SandboxReconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme(),
		Tracer: noTracer{}, ClusterDomain: "cluster.local"}).SetupWithManager(mgr, 2); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	sc := Scheme()
	_ = rbacv1.AddToScheme(sc)
	_ = nodev1.AddToScheme(sc)
	testClient, err = client.New(testCfg, client.Options{Scheme: sc})
	if err != nil {
		cancel()
		return 0, err
	}
	code := m.Run()
	cancel()
	return code, <-done
}

// noTracer is agent-sandbox's no-op instrumenter (its own lives in an internal package).
type noTracer struct{}

func (noTracer) StartSpan(ctx context.Context, _ metav1.Object, _ string, _ map[string]string) (context.Context, func()) {
	return ctx, func() {}
}
func (noTracer) GetTraceContext(context.Context) string              { return "" }
func (noTracer) AddEvent(context.Context, string, map[string]string) {}
func (noTracer) IsRecording(context.Context) bool                    { return false }

// needCluster skips the test without a control plane, or fails it where CI forbids
// skipping.
func needCluster(t *testing.T) {
	t.Helper()
	if envErr == nil {
		return
	}
	if kubetest.Required() {
		t.Fatalf("no Kubernetes control plane, and SKILLBOX_REQUIRE_DOCKER=1 forbids skipping: %v", envErr)
	}
	t.Skipf("no Kubernetes control plane: %v", envErr)
}

// namespace makes a fresh namespace for one test.
func namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "skills-"}}
	if err := testClient.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// waitFor polls cond until it holds; the test's own deadline bounds it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
