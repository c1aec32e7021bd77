package host_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/skillbox-dev/skillbox/internal/kubetest"
	"github.com/skillbox-dev/skillbox/isolation/kube"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/host"
)

// TestOpenKubernetes: with Kubernetes options the host registers the Kubernetes
// sandbox for container skills (its NetworkPolicy appears in the skills' namespace)
// from a kubeconfig file, and starts the mirror of the shared decisions.
func TestOpenKubernetes(t *testing.T) {
	env, err := kubetest.Start()
	if err != nil {
		if errors.Is(err, kubetest.ErrNoAssets) && !kubetest.Required() {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	defer env.Stop()
	ctx := context.Background()
	admin, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := admin.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"skills", "state"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	home := resolve(t, t.TempDir())
	h, err := host.Open(ctx, host.Options{Home: home, Kubernetes: &host.KubeOptions{
		Kubeconfig: kubeconfig, Namespace: "skills", StateNamespace: "state"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SandboxError(manifest.KindContainer); err != nil {
		t.Fatalf("container sandbox: %v", err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "skills", Name: kube.PolicyIsolate}, &networkingv1.NetworkPolicy{}); err != nil {
		t.Errorf("the Kubernetes sandbox did not make its NetworkPolicy: %v", err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
}
