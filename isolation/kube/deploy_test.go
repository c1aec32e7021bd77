package kube

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/skillbox-dev/skillbox/isolation/egress"
)

// TestDeployManifestsValid: every object of deploy/base is accepted by the real API
// server (server-side dry run: schema, defaulting, validation), and the skills'
// NetworkPolicies there are the ones the sandbox itself keeps.
func TestDeployManifestsValid(t *testing.T) {
	needCluster(t)
	ctx := context.Background()
	files, err := filepath.Glob("../../deploy/base/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var objs []*unstructured.Unstructured
	for _, f := range files {
		if b := filepath.Base(f); b == "kustomization.yaml" || b == "trust.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(data), "\n---\n") {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(u.Object) > 0 {
				objs = append(objs, u)
			}
		}
	}
	// Namespaces for real (the rest is dry run into them).
	for _, u := range objs {
		if u.GetKind() == "Namespace" {
			if err := testClient.Create(ctx, u.DeepCopy()); err != nil && !strings.Contains(err.Error(), "already exists") {
				t.Fatalf("namespace %s: %v", u.GetName(), err)
			}
		}
	}
	kinds := map[string]int{}
	for _, u := range objs {
		kinds[u.GetKind()]++
		if u.GetKind() == "Namespace" {
			continue
		}
		if err := testClient.Create(ctx, u.DeepCopy(), client.DryRunAll); err != nil {
			t.Errorf("%s %s/%s refused: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
	}
	for _, k := range []string{"Deployment", "Service", "Role", "RoleBinding", "ServiceAccount", "NetworkPolicy"} {
		if kinds[k] == 0 {
			t.Errorf("deploy/base has no %s", k)
		}
	}
	// The skills' policies in deploy/ are the sandbox's own, with the deployment's
	// proxy settings.
	sb := &Sandbox{ns: "skillbox-skills", proxy: nopProxy{}, proxyAddr: "10.0.0.1:3128", proxyNS: "skillbox",
		proxyPods: map[string]string{"app.kubernetes.io/name": "skillbox"}}
	for _, want := range sb.policies() {
		var have *unstructured.Unstructured
		for _, u := range objs {
			if u.GetKind() == "NetworkPolicy" && u.GetName() == want.Name && u.GetNamespace() == want.Namespace {
				have = u
			}
		}
		if have == nil {
			t.Errorf("deploy/base lacks NetworkPolicy %s", want.Name)
			continue
		}
		wantJSON, _ := yaml.Marshal(want.Spec)
		haveJSON, _ := yaml.Marshal(have.Object["spec"])
		var a, b any
		_ = yaml.Unmarshal(wantJSON, &a)
		_ = yaml.Unmarshal(haveJSON, &b)
		if string(mustJSON(a)) != string(mustJSON(b)) {
			t.Errorf("NetworkPolicy %s in deploy/base differs from the sandbox's:\n deploy: %s\nsandbox: %s", want.Name, haveJSON, wantJSON)
		}
	}
}

type nopProxy struct{}

func (nopProxy) Reserve(*egress.CallCA) (string, func(*egress.Guard), func()) {
	return "", func(*egress.Guard) {}, func() {}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v) // maps marshal with sorted keys
	return b
}
