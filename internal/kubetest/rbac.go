package kubetest

import (
	"context"
	"fmt"
	"os"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// RoleFromFile reads the Role called name from a multi-document YAML file (deploy/).
func RoleFromFile(path, name string) (*rbacv1.Role, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var r rbacv1.Role
		if err := yaml.Unmarshal([]byte(doc), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if r.Kind == "Role" && r.Name == name {
			return &r, nil
		}
	}
	return nil, fmt.Errorf("%s: no Role %s", path, name)
}

// UserWithRole makes a user bound, in namespace ns, to a Role with rules, and returns
// its client config: what a service account with that Role may do, the API server's
// RBAC decides.
func UserWithRole(ctx context.Context, env *envtest.Environment, admin client.Client, ns, name string, rules []rbacv1.PolicyRule) (*rest.Config, error) {
	r := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Rules: rules}
	if err := admin.Create(ctx, r); err != nil {
		return nil, err
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: name, APIGroup: rbacv1.GroupName}},
		RoleRef:  rbacv1.RoleRef{Kind: "Role", Name: name, APIGroup: rbacv1.GroupName}}
	if err := admin.Create(ctx, rb); err != nil {
		return nil, err
	}
	u, err := env.AddUser(envtest.User{Name: name}, nil)
	if err != nil {
		return nil, err
	}
	return u.Config(), nil
}
