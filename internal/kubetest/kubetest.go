// Package kubetest starts a real Kubernetes control plane for tests: controller-runtime's
// envtest with the etcd and kube-apiserver binaries that scripts/envtest-assets.sh
// builds (KUBEBUILDER_ASSETS). There is no scheduler, controller manager or kubelet:
// pods stay Pending unless a test sets their status as a kubelet would. It is used by
// tests only.
package kubetest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ErrNoAssets is returned by Start when KUBEBUILDER_ASSETS does not hold the binaries.
var ErrNoAssets = errors.New("KUBEBUILDER_ASSETS does not name a directory with etcd and kube-apiserver (run scripts/envtest-assets.sh)")

// Required says whether a missing control plane must fail the tests rather than skip
// them: CI sets SKILLBOX_REQUIRE_DOCKER=1, which forbids skipping any real-part test.
func Required() bool { return os.Getenv("SKILLBOX_REQUIRE_DOCKER") == "1" }

// Start starts etcd and kube-apiserver with the CRDs under crdDirs installed.
func Start(crdDirs ...string) (*envtest.Environment, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if dir == "" {
			return nil, ErrNoAssets
		}
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNoAssets, err)
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    dir,
		CRDDirectoryPaths:        crdDirs,
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute, // a busy 2-core machine
		ControlPlaneStopTimeout:  time.Minute,
	}
	if _, err := env.Start(); err != nil {
		return nil, fmt.Errorf("start envtest: %w", err)
	}
	return env, nil
}
