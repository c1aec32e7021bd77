package kube

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	sandboxv1 "sigs.k8s.io/agent-sandbox/api/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skillbox-dev/skillbox/internal/kubetest"
	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/egress"
	"github.com/skillbox-dev/skillbox/manifest"
)

const testImage = "registry.skillbox.test/echo@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func testCall(skill string, timeout time.Duration) isolation.Call {
	return isolation.Call{
		ID: "call-" + randomID(),
		Skill: isolation.Skill{Manifest: &manifest.Manifest{Name: skill, Version: "1.0.0",
			Sandbox: manifest.Sandbox{Container: &manifest.ContainerSandbox{Image: testImage, ID: "sha256:" + strings.Repeat("ab", 32), Command: []string{"/skill"}}}}},
		Input:  []byte(`{"x":1}`),
		Limits: isolation.Limits{Timeout: timeout, Memory: 64 << 20, CPU: 0.5},
	}
}

type outcome struct {
	res isolation.Result
	err error
}

func start(sb *Sandbox, ctx context.Context, call isolation.Call) <-chan outcome {
	out := make(chan outcome, 1)
	go func() {
		res, err := sb.Run(ctx, call)
		out <- outcome{res, err}
	}()
	return out
}

func newSandbox(t *testing.T, ns string, opts ...Option) *Sandbox {
	t.Helper()
	sb, err := New(context.Background(), testCfg, append([]Option{WithNamespace(ns)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	return sb
}

// podOf waits for the pod of a call (made by agent-sandbox's controller, or by the test
// standing in for the Job controller) and returns it.
func podOf(t *testing.T, sb *Sandbox, callID string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waitFor(t, "the call's pod", func() bool {
		var l corev1.PodList
		if err := testClient.List(context.Background(), &l, client.InNamespace(sb.ns), client.MatchingLabels{LabelCall: callID}); err != nil {
			t.Fatal(err)
		}
		if len(l.Items) == 1 {
			pod = &l.Items[0]
		}
		return pod != nil
	})
	return pod
}

// setStatus writes a pod's status as a kubelet would (there is none here).
func setStatus(t *testing.T, pod *corev1.Pod, st corev1.PodStatus) {
	t.Helper()
	ctx := context.Background()
	for {
		var p corev1.Pod
		if err := testClient.Get(ctx, client.ObjectKeyFromObject(pod), &p); err != nil {
			t.Fatal(err)
		}
		p.Status = st
		err := testClient.Status().Update(ctx, &p)
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "modified") {
			t.Fatal(err)
		}
	}
}

func terminated(code int32, reason, msg string) corev1.PodStatus {
	phase := corev1.PodSucceeded
	if code != 0 {
		phase = corev1.PodFailed
	}
	return corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{{Name: ContainerName, Image: testImage,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: msg}}}}}
}

// leftovers lists what of sandbox sb is still in the cluster.
func leftovers(t *testing.T, sb *Sandbox) []string {
	t.Helper()
	ctx := context.Background()
	sel := []client.ListOption{client.InNamespace(sb.ns), client.MatchingLabels{LabelInstance: sb.instance}}
	var out []string
	var pods corev1.PodList
	var secrets corev1.SecretList
	var jobs batchv1.JobList
	var sbxs sandboxv1.SandboxList
	for _, l := range []client.ObjectList{&pods, &secrets, &jobs, &sbxs} {
		if err := testClient.List(ctx, l, sel...); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pods.Items {
		if orphaned(t, &p) {
			continue
		}
		out = append(out, "pod/"+p.Name)
	}
	for _, s := range secrets.Items {
		out = append(out, "secret/"+s.Name)
	}
	for _, j := range jobs.Items {
		out = append(out, "job/"+j.Name)
	}
	for _, x := range sbxs.Items {
		out = append(out, "sandbox/"+x.Name)
	}
	return out
}

// orphaned stands in for the cluster's garbage collector, which envtest does not run:
// a pod whose controlling Sandbox is gone is deleted, as the collector would, and not
// counted as left behind. Agent-sandbox's controller can make a Sandbox's pod again
// just after the call deleted it, from a cache that has not yet seen the Sandbox go; in
// a cluster the collector removes that pod by its owner reference. That the call
// deletes its own pod at once is asserted apart (assertPodGone).
func orphaned(t *testing.T, p *corev1.Pod) bool {
	t.Helper()
	ref := metav1.GetControllerOf(p)
	if ref == nil || ref.Kind != "Sandbox" {
		return false
	}
	var owner sandboxv1.Sandbox
	err := testClient.Get(context.Background(), client.ObjectKey{Namespace: p.Namespace, Name: ref.Name}, &owner)
	if err == nil && owner.UID == ref.UID {
		return false
	}
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	uid := p.UID
	if err := testClient.Delete(context.Background(), p, client.GracePeriodSeconds(0), client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		t.Fatal(err)
	}
	t.Logf("pod %s outlived its Sandbox: deleted as the garbage collector would", p.Name)
	return true
}

// assertPodGone asserts that pod, as the test saw it during the call, was deleted when
// the call ended (a pod of the same name may have been made again: see orphaned).
func assertPodGone(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	var now corev1.Pod
	err := testClient.Get(context.Background(), client.ObjectKeyFromObject(pod), &now)
	if err == nil && now.UID == pod.UID {
		t.Fatalf("the call's pod %s is still there after the call", pod.Name)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

func assertClean(t *testing.T, sb *Sandbox) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for left := leftovers(t, sb); len(left) > 0; left = leftovers(t, sb) {
		if time.Now().After(deadline) {
			t.Fatalf("the call's objects were not deleted within 60s: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func reasonOf(t *testing.T, err error) isolation.Reason {
	t.Helper()
	if err == nil {
		t.Fatal("call succeeded; want an error")
	}
	return isolation.ReasonOf(err)
}

// checkHardened asserts every hardening of one call's pod spec.
func checkHardened(t *testing.T, ps corev1.PodSpec, lim isolation.Limits, runtimeClass string) {
	t.Helper()
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Error("service-account token mounted")
	}
	if ps.EnableServiceLinks == nil || *ps.EnableServiceLinks {
		t.Error("service links enabled")
	}
	if ps.HostNetwork || ps.HostPID || ps.HostIPC {
		t.Error("host namespaces shared")
	}
	if ps.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restart policy %s", ps.RestartPolicy)
	}
	if sc := ps.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v", sc)
	}
	if runtimeClass == "" && ps.RuntimeClassName != nil || runtimeClass != "" && (ps.RuntimeClassName == nil || *ps.RuntimeClassName != runtimeClass) {
		t.Errorf("runtimeClassName %v, want %q", ps.RuntimeClassName, runtimeClass)
	}
	if ps.ActiveDeadlineSeconds == nil || *ps.ActiveDeadlineSeconds > int64((lim.Timeout+DefaultBackstop).Seconds()) {
		t.Errorf("activeDeadlineSeconds %v", ps.ActiveDeadlineSeconds)
	}
	if len(ps.Containers) != 1 || len(ps.InitContainers) != 0 {
		t.Fatalf("%d containers, %d init containers", len(ps.Containers), len(ps.InitContainers))
	}
	c := ps.Containers[0]
	if c.Image != testImage {
		t.Errorf("image %s, want the digest reference", c.Image)
	}
	if !c.Stdin || !c.StdinOnce || c.TTY {
		t.Errorf("stdin %v once %v tty %v", c.Stdin, c.StdinOnce, c.TTY)
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("no container security context")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("root filesystem writable")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("privilege escalation allowed")
	case sc.Privileged == nil || *sc.Privileged:
		t.Error("privileged")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0:
		t.Error("may run as root")
	case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0:
		t.Errorf("capabilities %+v", sc.Capabilities)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Error("no RuntimeDefault seccomp profile")
	}
	for _, r := range []corev1.ResourceList{c.Resources.Limits, c.Resources.Requests} {
		if m := r.Memory(); m.Value() != lim.Memory {
			t.Errorf("memory %s, want %d", m, lim.Memory)
		}
		if cpu := r.Cpu(); cpu.MilliValue() != int64(lim.CPU*1000) {
			t.Errorf("cpu %s, want %v", cpu, lim.CPU)
		}
	}
	for _, e := range c.Env {
		if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("env %s: a value in the pod spec, not a reference to the call's Secret", e.Name)
		}
	}
	if len(c.EnvFrom) != 0 {
		t.Errorf("envFrom %+v", c.EnvFrom)
	}
	for _, v := range ps.Volumes {
		if v.HostPath != nil {
			t.Errorf("host path volume %s", v.Name)
		}
	}
}

// TestSandboxObjectsHardened: a call becomes one Sandbox whose pod (made by
// agent-sandbox's own controller) carries every hardening, whose env is in a Secret,
// and which is denied all traffic but the egress proxy's; cancelling the call deletes
// all of it.
func TestSandboxObjectsHardened(t *testing.T) {
	needCluster(t)
	ns := namespace(t)
	proxy := egress.NewProxy()
	defer proxy.Close()
	server := map[string]string{"app.kubernetes.io/name": "skillbox"}
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "gvisor-" + ns}, Handler: "runsc"}
	if err := testClient.Create(context.Background(), rc); err != nil {
		t.Fatal(err)
	}
	sb := newSandbox(t, ns, WithRuntimeClass(rc.Name), WithEgressProxy(proxy, "10.0.0.7:3128", "skillbox", server))
	if sb.Backend() != BackendSandbox {
		t.Fatalf("backend %s with the Sandbox CRD installed", sb.Backend())
	}
	call := testCall("echo", 30*time.Second)
	call.Grant = isolation.Grant{Env: map[string]string{"GREETING": "hello"},
		Network: []manifest.Origin{{Scheme: "https", Host: "api.example.com", Port: 443}}}
	call.Limits.Requests = 3
	ctx, cancel := context.WithCancel(context.Background())
	done := start(sb, ctx, call)
	pod := podOf(t, sb, call.ID)
	checkHardened(t, pod.Spec, withDefaults(call.Limits), rc.Name)
	if pod.Labels[LabelEgress] != "proxy" || pod.Labels[LabelSkill] != "echo" {
		t.Errorf("pod labels %v", pod.Labels)
	}

	var sbxs sandboxv1.SandboxList
	if err := testClient.List(ctx, &sbxs, client.InNamespace(ns), client.MatchingLabels{LabelCall: call.ID}); err != nil || len(sbxs.Items) != 1 {
		t.Fatalf("%d sandboxes, %v", len(sbxs.Items), err)
	}
	x := sbxs.Items[0]
	if x.Spec.ShutdownTime == nil || time.Until(x.Spec.ShutdownTime.Time) > call.Limits.Timeout+DefaultBackstop ||
		x.Spec.ShutdownPolicy == nil || *x.Spec.ShutdownPolicy != sandboxv1.ShutdownPolicyDelete {
		t.Errorf("lifecycle %+v: want a shutdown time within the budget and policy Delete", x.Spec.Lifecycle)
	}
	if x.Spec.Service == nil || *x.Spec.Service {
		t.Error("the sandbox asks for a Service")
	}

	// The env, and the proxy's per-call token, are in the call's Secret, not the spec.
	var sec corev1.Secret
	if err := testClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: x.Name}, &sec); err != nil {
		t.Fatal(err)
	}
	if string(sec.Data["GREETING"]) != "hello" || !strings.HasPrefix(string(sec.Data["HTTPS_PROXY"]), "http://skillbox:") ||
		!strings.HasSuffix(string(sec.Data["HTTPS_PROXY"]), "@10.0.0.7:3128") {
		t.Errorf("secret data: %v", sec.Data)
	}
	refs := map[string]string{}
	for _, e := range pod.Spec.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == x.Name {
			refs[e.Name] = e.ValueFrom.SecretKeyRef.Key
		}
	}
	if len(refs) != len(sec.Data) || refs["GREETING"] != "GREETING" || refs["HTTPS_PROXY"] != "HTTPS_PROXY" {
		t.Errorf("env references %v, want one per key of the Secret", refs)
	}

	// Deny all; then, for network-granted pods only, the proxy's pods on its port.
	var iso, px networkingv1.NetworkPolicy
	if err := testClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: PolicyIsolate}, &iso); err != nil {
		t.Fatal(err)
	}
	if len(iso.Spec.PolicyTypes) != 2 || len(iso.Spec.Ingress) != 0 || len(iso.Spec.Egress) != 0 || iso.Spec.PodSelector.MatchLabels[LabelManaged] != "true" {
		t.Errorf("isolation policy %+v", iso.Spec)
	}
	if err := testClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: PolicyEgressOnly}, &px); err != nil {
		t.Fatal(err)
	}
	eg := px.Spec.Egress
	if len(eg) != 1 || len(eg[0].To) != 1 || len(eg[0].Ports) != 1 || eg[0].Ports[0].Port.IntValue() != 3128 ||
		eg[0].To[0].PodSelector.MatchLabels["app.kubernetes.io/name"] != "skillbox" ||
		eg[0].To[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "skillbox" || eg[0].To[0].IPBlock != nil ||
		px.Spec.PodSelector.MatchLabels[LabelEgress] != "proxy" {
		t.Errorf("egress policy %+v", px.Spec)
	}

	cancel()
	o := await(t, done)
	if r := reasonOf(t, o.err); r != isolation.ReasonCanceled {
		t.Errorf("reason %s, want CANCELED (%v)", r, o.err)
	}
	assertPodGone(t, pod)
	assertClean(t, sb)
}

// TestMissingRuntimeClass: a runtime class the cluster does not have keeps the pod
// from being made; the call ends at its deadline saying why, and nothing is left.
func TestMissingRuntimeClass(t *testing.T) {
	needCluster(t)
	ns := namespace(t)
	sb := newSandbox(t, ns, WithRuntimeClass("no-such-runtime"))
	_, err := sb.Run(context.Background(), testCall("echo", 3*time.Second))
	if r := reasonOf(t, err); r != isolation.ReasonTimeout || !strings.Contains(err.Error(), "no-such-runtime") {
		t.Errorf("reason %s, error %v; want TIMEOUT naming the runtime class", r, err)
	}
	assertClean(t, sb)
}

// TestJobBackend: where no Sandbox CRD is used the call is a Job with the same pod
// spec, no retries and a deadline; with no pod ever running (no kubelet), the call
// ends at its own deadline and the Job and Secret are deleted.
func TestJobBackend(t *testing.T) {
	needCluster(t)
	ns := namespace(t)
	sb := newSandbox(t, ns, WithBackend(BackendJob))
	call := testCall("echo", 2*time.Second)
	call.Grant.Env = map[string]string{"A": "1"}
	done := start(sb, context.Background(), call)
	var job batchv1.Job
	waitFor(t, "the job", func() bool {
		var l batchv1.JobList
		_ = testClient.List(context.Background(), &l, client.InNamespace(ns), client.MatchingLabels{LabelCall: call.ID})
		if len(l.Items) == 1 {
			job = l.Items[0]
		}
		return len(l.Items) == 1
	})
	checkHardened(t, job.Spec.Template.Spec, withDefaults(call.Limits), "")
	if job.Spec.BackoffLimit == nil || *job.Spec.BackoffLimit != 0 || job.Spec.ActiveDeadlineSeconds == nil || job.Spec.TTLSecondsAfterFinished == nil {
		t.Errorf("job spec: backoff %v deadline %v ttl %v", job.Spec.BackoffLimit, job.Spec.ActiveDeadlineSeconds, job.Spec.TTLSecondsAfterFinished)
	}
	if job.Spec.Template.Labels[LabelEgress] != "" {
		t.Error("a call without a network grant is selected by the egress policy")
	}
	var px networkingv1.NetworkPolicy
	if err := testClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: PolicyEgressOnly}, &px); err == nil {
		t.Error("egress policy made by a sandbox without a proxy")
	}
	o := await(t, done)
	if r := reasonOf(t, o.err); r != isolation.ReasonTimeout {
		t.Errorf("reason %s, want TIMEOUT (%v)", r, o.err)
	}
	assertClean(t, sb)
}

// TestSandboxConditions: the call ends as the cluster reports it — the pod's exit (as
// a kubelet would write it, mirrored by agent-sandbox into the Finished condition), an
// OOM kill, an image that cannot be pulled, the sandbox's expiry — and every object of
// it is deleted after each.
func TestSandboxConditions(t *testing.T) {
	needCluster(t)
	ns := namespace(t)
	sb := newSandbox(t, ns)
	cases := []struct {
		name   string
		status corev1.PodStatus
		want   isolation.Reason // "" for success
		msg    string
	}{
		{"succeeded", terminated(0, "Completed", ""), "", ""},
		{"failed", terminated(3, "Error", "bad input: x"), isolation.ReasonSkillFailed, "bad input: x"},
		{"oom killed", terminated(137, "OOMKilled", ""), isolation.ReasonMemory, ""},
		{"image cannot be pulled", corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{Name: ContainerName, Image: testImage,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "not found"}}}}},
			isolation.ReasonInvalidModule, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			call := testCall("cond", 60*time.Second)
			done := start(sb, context.Background(), call)
			pod := podOf(t, sb, call.ID)
			setStatus(t, pod, c.status)
			o := await(t, done)
			if c.want == "" {
				if o.err != nil {
					t.Fatalf("call failed: %v", o.err)
				}
			} else if r := reasonOf(t, o.err); r != c.want {
				t.Errorf("reason %s, want %s (%v)", r, c.want, o.err)
			}
			if c.msg != "" && isolation.SkillMessage(o.err) != c.msg {
				t.Errorf("skill message %q, want %q", isolation.SkillMessage(o.err), c.msg)
			}
			assertPodGone(t, pod)
			assertClean(t, sb)
		})
	}
	t.Run("pod failed without a container status", func(t *testing.T) {
		call := testCall("cond", 60*time.Second)
		done := start(sb, context.Background(), call)
		pod := podOf(t, sb, call.ID)
		setStatus(t, pod, corev1.PodStatus{Phase: corev1.PodFailed})
		o := await(t, done)
		if r := reasonOf(t, o.err); r != isolation.ReasonSkillFailed {
			t.Errorf("reason %s, want SKILL_FAILED (%v)", r, o.err)
		}
		assertPodGone(t, pod)
		assertClean(t, sb)
	})
	t.Run("expired", func(t *testing.T) {
		// The cluster's own deadline (shutdownTime) passes before the call's: the
		// controller tears the sandbox down, and the call ends as a timeout.
		sb := newSandbox(t, ns)
		sb.backstop = -55 * time.Second // shutdownTime = now + 60s - 55s
		call := testCall("cond", 60*time.Second)
		o := await(t, start(sb, context.Background(), call))
		if r := reasonOf(t, o.err); r != isolation.ReasonTimeout {
			t.Errorf("reason %s, want TIMEOUT (%v)", r, o.err)
		}
		if !strings.Contains(o.err.Error(), "expired") {
			t.Errorf("error %q does not say the cluster expired it", o.err)
		}
		assertClean(t, sb)
	})
}

// TestDrainEndsCalls: disabling a skill (Drain) deletes its workloads; a call in
// flight ends at once, and nothing is left.
func TestDrainEndsCalls(t *testing.T) {
	needCluster(t)
	ns := namespace(t)
	for _, b := range []Backend{BackendSandbox, BackendJob} {
		t.Run(string(b), func(t *testing.T) {
			sb := newSandbox(t, ns, WithBackend(b))
			call := testCall("drained", 10*time.Minute)
			other := testCall("kept", 10*time.Minute)
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel) // before Close, which waits for calls in flight
			done := start(sb, ctx, call)
			otherCtx, stopOther := context.WithCancel(context.Background())
			defer stopOther()
			otherDone := start(sb, otherCtx, other)
			waitFor(t, "both workloads", func() bool { return len(leftovers(t, sb)) >= 2 })
			if b == BackendJob {
				// No Job controller here: stand in for it, so that the pod exists.
				makeJobPod(t, sb, call)
			}
			if err := sb.Drain(context.Background(), "drained"); err != nil {
				t.Fatal(err)
			}
			o := await(t, done)
			if r := reasonOf(t, o.err); r != isolation.ReasonCanceled {
				t.Errorf("reason %s, want CANCELED (%v)", r, o.err)
			}
			select {
			case o := <-otherDone:
				t.Fatalf("another skill's call ended: %v", o.err)
			default:
			}
			stopOther()
			await(t, otherDone)
			assertClean(t, sb)
		})
	}
}

// makeJobPod creates the pod a Job controller would for call's Job.
func makeJobPod(t *testing.T, sb *Sandbox, call isolation.Call) {
	t.Helper()
	var jobs batchv1.JobList
	waitFor(t, "the job", func() bool {
		_ = testClient.List(context.Background(), &jobs, client.InNamespace(sb.ns), client.MatchingLabels{LabelCall: call.ID})
		return len(jobs.Items) == 1
	})
	j := jobs.Items[0]
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: j.Name + "-x", Namespace: sb.ns, Labels: j.Spec.Template.Labels}, Spec: j.Spec.Template.Spec}
	if err := testClient.Create(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
}

// TestRBACDenied: a service account without the right verbs gets a clear refusal that
// names RBAC — at New when it may not keep the NetworkPolicies (without them a pod's
// network would be open), at the call when it may not create workloads — and nothing
// is left half made.
func TestRBACDenied(t *testing.T) {
	needCluster(t)
	ns := namespace(t)
	ctx := context.Background()
	role := func(name string, rules ...rbacv1.PolicyRule) *rest.Config {
		t.Helper()
		cfg, err := kubetest.UserWithRole(ctx, testEnv, testClient, ns, name, rules)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	none := role("skillbox-nothing")
	if _, err := New(ctx, none, WithNamespace(ns), WithBackend(BackendJob)); err == nil ||
		!strings.Contains(err.Error(), "NetworkPolicy") || !strings.Contains(err.Error(), "RBAC") {
		t.Errorf("New without rights: %v; want a refusal naming the NetworkPolicy and RBAC", err)
	}

	policiesOnly := role("skillbox-policies",
		rbacv1.PolicyRule{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"get", "create", "update"}},
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets", "pods"}, Verbs: []string{"create", "delete", "deletecollection", "list", "watch"}})
	sb, err := New(ctx, policiesOnly, WithNamespace(ns), WithBackend(BackendJob))
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(ctx)
	call := testCall("denied", 30*time.Second)
	call.Grant.Env = map[string]string{"A": "1"}
	_, err = sb.Run(ctx, call)
	if r := reasonOf(t, err); r != isolation.ReasonInternal || !strings.Contains(err.Error(), "RBAC") || !strings.Contains(err.Error(), "job") {
		t.Errorf("call without the right to create jobs: %s %v", r, err)
	}
	assertClean(t, sb) // the call's Secret, made before the refusal, is gone
}

// TestDeployRoleSuffices: the Role in deploy/base/rbac.yaml, and nothing more, lets a
// server run a network-granted call to its end and clean up after it, then drain
// and close: the least verbs are enough.
func TestDeployRoleSuffices(t *testing.T) {
	needCluster(t)
	ns := namespace(t)
	ctx := context.Background()
	role, err := kubetest.RoleFromFile("../../deploy/base/rbac.yaml", "skillbox-skills")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := kubetest.UserWithRole(ctx, testEnv, testClient, ns, "skillbox-deploy", role.Rules)
	if err != nil {
		t.Fatal(err)
	}
	proxy := egress.NewProxy()
	defer proxy.Close()
	sb, err := New(ctx, cfg, WithNamespace(ns), WithEgressProxy(proxy, "10.0.0.7:3128", "", map[string]string{"app": "skillbox"}))
	if err != nil {
		t.Fatal(err)
	}
	call := testCall("deployed", 60*time.Second)
	call.Grant.Network = []manifest.Origin{{Scheme: "https", Host: "api.example.com", Port: 443}}
	done := start(sb, ctx, call)
	setStatus(t, podOf(t, sb, call.ID), terminated(0, "Completed", ""))
	if o := await(t, done); o.err != nil {
		t.Fatalf("call with the deploy Role: %v", o.err)
	}
	assertClean(t, sb)
	other := testCall("drained", 60*time.Second)
	otherDone := start(sb, ctx, other)
	podOf(t, sb, other.ID)
	if err := sb.Drain(ctx, "drained"); err != nil {
		t.Errorf("drain with the deploy Role: %v", err)
	}
	await(t, otherDone)
	if err := sb.Close(ctx); err != nil {
		t.Errorf("close with the deploy Role: %v", err)
	}
	assertClean(t, sb)
}

// TestRefusals: what a cluster cannot give is refused before anything is created.
func TestRefusals(t *testing.T) {
	needCluster(t)
	ns := namespace(t)
	sb := newSandbox(t, ns, WithBackend(BackendJob))
	tar := testCall("tar", time.Minute)
	tar.Skill.Manifest.Sandbox.Container.Image = "image.tar"
	files := testCall("files", time.Minute)
	files.Grant.Files = []isolation.Mount{{Guest: "/data", Host: "/srv/data", Access: manifest.AccessRead}}
	network := testCall("net", time.Minute)
	network.Grant.Network = []manifest.Origin{{Scheme: "https", Host: "api.example.com", Port: 443}}
	for _, c := range []struct {
		call isolation.Call
		want isolation.Reason
	}{{tar, isolation.ReasonInvalidModule}, {files, isolation.ReasonNotGranted}, {network, isolation.ReasonNotGranted}} {
		_, err := sb.Run(context.Background(), c.call)
		if r := reasonOf(t, err); r != c.want {
			t.Errorf("%s: reason %s, want %s (%v)", c.call.Skill.Manifest.Name, r, c.want, err)
		}
	}
	if err := sb.Prepare(context.Background(), tar.Skill); err == nil {
		t.Error("Prepare accepted an image.tar skill")
	}
	if left := leftovers(t, sb); len(left) > 0 {
		t.Errorf("left: %v", left)
	}
}

// await is the end of a call started by start; a call that does not end within a
// minute fails the test (the sandbox would have lost track of it).
func await(t *testing.T, done <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-done:
		return o
	case <-time.After(time.Minute):
		t.Fatal("the call did not end")
		return outcome{}
	}
}
