package container

import (
	"testing"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// A CPU share below Docker's floor would become no CFS quota at all: the sandbox raises
// it to the floor on its own, whatever the layers above let through.
func TestTinyCPUIsNeverUnlimited(t *testing.T) {
	for _, cpu := range []float64{1e-9, 1e-6, 0.001} {
		got := withDefaults(isolation.Limits{CPU: cpu}).CPU
		if got != manifest.MinCPU {
			t.Errorf("cpu %g became %g, want the floor %g", cpu, got, manifest.MinCPU)
		}
	}
	if got := withDefaults(isolation.Limits{CPU: 0.5}).CPU; got != 0.5 {
		t.Errorf("cpu 0.5 became %g", got)
	}
}
