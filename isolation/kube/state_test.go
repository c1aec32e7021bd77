package kube

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sandboxv1 "sigs.k8s.io/agent-sandbox/api/v1beta1"

	"github.com/skillbox-dev/skillbox/isolation"
)

// TestSandboxConditionOutcomes: the Sandbox's own conditions, as agent-sandbox's
// controller sets them, end a call even when its pod says nothing (already removed).
func TestSandboxConditionOutcomes(t *testing.T) {
	cond := func(typ sandboxv1.ConditionType, st metav1.ConditionStatus, reason string) *sandboxv1.Sandbox {
		return &sandboxv1.Sandbox{Status: sandboxv1.SandboxStatus{Conditions: []metav1.Condition{{Type: string(typ), Status: st, Reason: reason}}}}
	}
	lim := withDefaults(isolation.Limits{})
	for _, c := range []struct {
		name     string
		st       callState
		terminal bool
		want     isolation.Reason // "" for success
	}{
		{"finished, succeeded", callState{sbx: cond(sandboxv1.SandboxConditionFinished, metav1.ConditionTrue, sandboxv1.SandboxReasonPodSucceeded)}, true, ""},
		{"finished, failed", callState{sbx: cond(sandboxv1.SandboxConditionFinished, metav1.ConditionTrue, sandboxv1.SandboxReasonPodFailed)}, true, isolation.ReasonSkillFailed},
		{"expired", callState{sbx: cond(sandboxv1.SandboxConditionReady, metav1.ConditionFalse, sandboxv1.SandboxReasonExpired)}, true, isolation.ReasonTimeout},
		{"not ready yet", callState{sbx: cond(sandboxv1.SandboxConditionReady, metav1.ConditionFalse, sandboxv1.SandboxReasonDependenciesNotReady)}, false, ""},
		{"deleted after its shutdown time", callState{gone: "sandbox", expires: time.Now().Add(-time.Second)}, true, isolation.ReasonTimeout},
		{"deleted before it", callState{gone: "sandbox", expires: time.Now().Add(time.Hour)}, true, isolation.ReasonCanceled},
		{"pod past its deadline", callState{pod: &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "DeadlineExceeded"}}}, true, isolation.ReasonTimeout},
		{"pod running", callState{pod: &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{Name: ContainerName, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}}}, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.st.terminal(); got != c.terminal {
				t.Fatalf("terminal %v, want %v", got, c.terminal)
			}
			if !c.terminal {
				return
			}
			err := c.st.outcome(lim, nil)
			if c.want == "" {
				if err != nil {
					t.Fatalf("outcome %v, want success", err)
				}
				return
			}
			if r := isolation.ReasonOf(err); err == nil || r != c.want {
				t.Fatalf("outcome %v (%s), want %s", err, r, c.want)
			}
		})
	}
}
