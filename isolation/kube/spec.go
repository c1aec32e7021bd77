package kube

import (
	"context"
	"fmt"
	"math"
	"net"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	sandboxv1 "sigs.k8s.io/agent-sandbox/api/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/egress"
	"github.com/skillbox-dev/skillbox/manifest"
)

// DefaultBackstop is how long after a call's own deadline the cluster itself ends and
// removes its workload, should skillbox die mid-call.
const DefaultBackstop = 60 * time.Second

const (
	tmpSize   = "16Mi"
	nonRootID = int64(65534)
)

// CAPath is where a pod whose grant has brokered secrets for https origins finds its
// call's CA certificate (then the roots it trusts for every other origin), as on
// Docker. It is one key of the call's Secret, mounted read-only; the CA's private key
// stays in the skillbox process, with the proxy that terminates TLS for those origins.
const CAPath = "/etc/skillbox/ca.pem"

// KeyCA is the call Secret's key holding CAPath's content; caVolume mounts it.
const (
	KeyCA    = "skillbox-ca.pem"
	caVolume = "skillbox-ca"
)

// imageOf is the image a kubelet pulls for skill: the manifest's registry reference,
// pinned by digest.
func imageOf(skill isolation.Skill) (string, error) {
	m := skill.Manifest
	if m == nil || m.Sandbox.Container == nil {
		return "", isolation.Errorf(isolation.ReasonInvalidModule, "not a container skill")
	}
	c := m.Sandbox.Container
	if !c.FromRegistry() {
		return "", isolation.Errorf(isolation.ReasonInvalidModule,
			"%s: sandbox.container.image is an image.tar inside the package; on Kubernetes the image must be a registry reference pinned by digest (repo@sha256:…) that the cluster can pull", m.Name)
	}
	return c.Image, nil
}

var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// callSpec is everything one call's workload is made of.
type callSpec struct {
	name    string // of the workload, its Secret and (Sandbox) its pod
	skill   string
	callID  string
	image   string
	command []string
	env     map[string]string // into the call's Secret
	network bool
	lim     isolation.Limits
	// intercept are the https origins of the grant's brokered secrets: the proxy
	// terminates TLS for them with a CA made for the call, whose certificate (caPEM,
	// with the roots) the pod trusts through CAPath.
	intercept []manifest.Origin
	caPEM     []byte
}

// labels are on the workload, its pod and its Secret.
func (s *Sandbox) labels(sp *callSpec) map[string]string {
	l := map[string]string{LabelManaged: "true", LabelSkill: sp.skill, LabelCall: sp.callID, LabelInstance: s.instance}
	if sp.network {
		l[LabelEgress] = "proxy"
	}
	return l
}

// workloadName is a DNS label unique per call: "sbx-<skill>-<random>".
func workloadName(skill string) string {
	if len(skill) > 40 {
		skill = strings.TrimRight(skill[:40], "-")
	}
	return "sbx-" + skill + "-" + randomID()
}

// podSpec is the hardened pod of one call: one container, non-root, read-only root,
// no capabilities, no privilege escalation, seccomp RuntimeDefault, no service-account
// token, no service links, the call's memory and CPU as request and limit, a small
// in-memory /tmp, stdin open once for the input, and the env from the call's Secret.
func (s *Sandbox) podSpec(sp *callSpec) corev1.PodSpec {
	f, t := false, true
	uid := nonRootID
	mem := resource.NewQuantity(sp.lim.Memory, resource.BinarySI)
	cpu := resource.NewMilliQuantity(int64(math.Ceil(sp.lim.CPU*1000)), resource.DecimalSI)
	rl := corev1.ResourceList{corev1.ResourceMemory: *mem, corev1.ResourceCPU: *cpu}
	deadline := int64((sp.lim.Timeout + s.backstop).Seconds())
	tmp := resource.MustParse(tmpSize)
	ps := corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyNever,
		AutomountServiceAccountToken:  &f,
		EnableServiceLinks:            &f,
		HostNetwork:                   false,
		HostPID:                       false,
		HostIPC:                       false,
		ActiveDeadlineSeconds:         &deadline,
		TerminationGracePeriodSeconds: new(int64), // killed, not asked
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   &t,
			RunAsUser:      &uid,
			RunAsGroup:     &uid,
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name:            ContainerName,
			Image:           sp.image,
			ImagePullPolicy: corev1.PullIfNotPresent, // by digest: the same bytes either way
			Command:         sp.command,
			Stdin:           true,
			StdinOnce:       true,
			TTY:             false,
			Resources:       corev1.ResourceRequirements{Limits: rl, Requests: rl},
			SecurityContext: &corev1.SecurityContext{
				RunAsNonRoot:             &t,
				RunAsUser:                &uid,
				RunAsGroup:               &uid,
				ReadOnlyRootFilesystem:   &t,
				AllowPrivilegeEscalation: &f,
				Privileged:               &f,
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			VolumeMounts:             []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		}},
		Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{
			EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &tmp}}}},
	}
	// Each variable by reference to its key in the call's Secret: the names are in the
	// spec, the values only in the Secret (envFrom would also turn KeyCA into a
	// variable where names are not validated strictly).
	for _, k := range sortedKeys(sp.env) {
		ps.Containers[0].Env = append(ps.Containers[0].Env, corev1.EnvVar{Name: k, ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: sp.name}, Key: k}}})
	}
	if sp.caPEM != nil {
		mode := int32(0o444) // the container runs as another user; the file is public
		ps.Volumes = append(ps.Volumes, corev1.Volume{Name: caVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: sp.name, DefaultMode: &mode, Items: []corev1.KeyToPath{{Key: KeyCA, Path: path.Base(CAPath)}}}}})
		ps.Containers[0].VolumeMounts = append(ps.Containers[0].VolumeMounts,
			corev1.VolumeMount{Name: caVolume, MountPath: path.Dir(CAPath), ReadOnly: true})
	}
	if s.runtimeClass != "" {
		rc := s.runtimeClass
		ps.RuntimeClassName = &rc
	}
	return ps
}

// secret holds the call's env (granted values, plain secrets, the proxy URL with its
// token): kept out of the workload's spec, which more people may read.
func (s *Sandbox) secret(sp *callSpec) *corev1.Secret {
	t := true
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: sp.name, Namespace: s.ns, Labels: s.labels(sp)},
		Immutable:  &t,
		Type:       corev1.SecretTypeOpaque,
		StringData: sp.env,
	}
	if sp.caPEM != nil {
		sec.Data = map[string][]byte{KeyCA: sp.caPEM}
	}
	return sec
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// workload is the call's Sandbox or Job.
func (s *Sandbox) workload(sp *callSpec) client.Object {
	meta := metav1.ObjectMeta{Name: sp.name, Namespace: s.ns, Labels: s.labels(sp)}
	ps := s.podSpec(sp)
	if s.backend == BackendSandbox {
		del := sandboxv1.ShutdownPolicyDelete
		shutdown := metav1.NewTime(time.Now().Add(sp.lim.Timeout + s.backstop))
		svc := false
		return &sandboxv1.Sandbox{
			ObjectMeta: meta,
			Spec: sandboxv1.SandboxSpec{
				SandboxBlueprint: sandboxv1.SandboxBlueprint{
					PodTemplate: sandboxv1.PodTemplate{ObjectMeta: sandboxv1.PodMetadata{Labels: s.labels(sp)}, Spec: ps},
					Service:     &svc,
				},
				Lifecycle:     sandboxv1.Lifecycle{ShutdownTime: &shutdown, ShutdownPolicy: &del},
				OperatingMode: sandboxv1.SandboxOperatingModeRunning,
			},
		}
	}
	zero := int32(0)
	ttl := int32(s.backstop.Seconds())
	deadline := int64((sp.lim.Timeout + s.backstop).Seconds())
	return &batchv1.Job{
		ObjectMeta: meta,
		Spec: batchv1.JobSpec{
			BackoffLimit:            &zero,
			ActiveDeadlineSeconds:   &deadline,
			TTLSecondsAfterFinished: &ttl,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: s.labels(sp)},
				Spec:       ps,
			},
		},
	}
}

// policies are the two NetworkPolicies of the namespace: every skill pod is denied all
// ingress and egress; pods of network-granted calls may also reach the egress proxy's
// pods on its port, and nothing else (not even DNS: the proxy resolves names). A
// NetworkPolicy holds no domain names; the proxy stays the control, and enforcement
// depends on the cluster's network plugin.
func (s *Sandbox) policies() []*networkingv1.NetworkPolicy {
	managed := map[string]string{LabelManaged: "true"}
	out := []*networkingv1.NetworkPolicy{{
		ObjectMeta: metav1.ObjectMeta{Name: PolicyIsolate, Namespace: s.ns, Labels: map[string]string{LabelManaged: "true"}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: managed},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}}
	if s.proxy == nil {
		return out
	}
	_, portStr, _ := net.SplitHostPort(s.proxyAddr)
	port := intstr.Parse(portStr)
	tcp := corev1.ProtocolTCP
	peer := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: s.proxyPods}}
	if s.proxyNS != "" && s.proxyNS != s.ns {
		peer.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": s.proxyNS}}
	}
	out = append(out, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: PolicyEgressOnly, Namespace: s.ns, Labels: map[string]string{LabelManaged: "true"}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{LabelManaged: "true", LabelEgress: "proxy"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{peer},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
			}},
		},
	})
	return out
}

// ensurePolicies creates the NetworkPolicies, or brings them back to what they must
// be. Without them a skill pod's network would be open, so failing here fails New.
func (s *Sandbox) ensurePolicies(ctx context.Context) error {
	for _, want := range s.policies() {
		var have networkingv1.NetworkPolicy
		err := s.c.Get(ctx, client.ObjectKeyFromObject(want), &have)
		switch {
		case apierrors.IsNotFound(err):
			err = s.c.Create(ctx, want)
		case err == nil:
			have.Spec = want.Spec
			have.Labels = want.Labels
			err = s.c.Update(ctx, &have)
		}
		if err != nil {
			return fmt.Errorf("kubernetes sandbox: NetworkPolicy %s/%s: %s", s.ns, want.Name, apiWords(err))
		}
	}
	return nil
}

// specFor checks what a call asks against what the cluster can give and builds its
// spec. File grants need host directories, which a cluster's nodes do not have.
func (s *Sandbox) specFor(call isolation.Call, lim isolation.Limits) (*callSpec, error) {
	img, err := imageOf(call.Skill)
	if err != nil {
		return nil, err
	}
	m := call.Skill.Manifest
	if len(call.Grant.Files) > 0 {
		return nil, isolation.Errorf(isolation.ReasonNotGranted,
			"%s: file grants are refused on Kubernetes (a hostPath volume would break the pod's isolation, and the nodes lack the operator's directories): approve it without files, or run it with the Docker backend", m.Name)
	}
	sp := &callSpec{name: workloadName(m.Name), skill: m.Name, callID: call.ID, image: img,
		command: m.Sandbox.Container.Command, env: map[string]string{}, lim: lim}
	keys := make([]string, 0, len(call.Grant.Env))
	for k := range call.Grant.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := call.Grant.Env[k]
		if !envKeyRE.MatchString(k) || strings.Contains(v, "\x00") {
			return nil, isolation.Errorf(isolation.ReasonInternal, "env %q cannot be passed to a pod", k)
		}
		for _, b := range call.Grant.Brokered {
			if v != "" && (v == b.Value || v == b.Secret) {
				return nil, isolation.Errorf(isolation.ReasonInternal, "env %s holds the value of brokered secret %s; it must never enter the pod", k, b.Name)
			}
		}
		sp.env[k] = v
	}
	sp.intercept = call.Grant.InterceptOrigins()
	if len(sp.intercept) > 0 {
		if len(call.Grant.Network) == 0 {
			return nil, isolation.Errorf(isolation.ReasonInternal, "brokered secrets for https origins without a network grant")
		}
		for _, k := range egress.CAEnv {
			sp.env[k] = CAPath // replaces a granted variable of the same name
		}
	}
	if len(call.Grant.Network) > 0 {
		if s.proxy == nil {
			return nil, isolation.Errorf(isolation.ReasonNotGranted, "%s: a network grant needs the egress proxy, and this sandbox has none", m.Name)
		}
		sp.network = true
	}
	return sp, nil
}

// withDefaults is isolation's defaults, and the container floors.
func withDefaults(l isolation.Limits) isolation.Limits {
	l = l.WithDefaults()
	l.CPU = max(l.CPU, manifest.MinCPU)
	return l
}
