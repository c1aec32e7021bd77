// Package kube is the Kubernetes sandbox: every call of a container skill runs as one
// single-use workload in a cluster — an agent-sandbox Sandbox (agents.x-k8s.io/v1beta1)
// where that CRD is installed, otherwise a batch/v1 Job — with a hardened pod spec
// (non-root, read-only root, no capabilities, seccomp RuntimeDefault, no service-account
// token, the call's memory and CPU), its input and output over the API server's attach,
// its deadline from the call's budget, and NetworkPolicies that let it reach nothing but
// skillbox's egress proxy. The workload is deleted when the call ends, and a skill's
// workloads when it is disabled (Drain).
package kube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	sandboxv1 "sigs.k8s.io/agent-sandbox/api/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/egress"
)

// Labels on every object the sandbox creates; Drain, Close and the NetworkPolicies
// select by them.
const (
	LabelManaged  = "skillbox.dev/managed"  // "true"
	LabelSkill    = "skillbox.dev/skill"    // the skill's name
	LabelCall     = "skillbox.dev/call"     // the call id
	LabelInstance = "skillbox.dev/instance" // the Sandbox value that made it
	// LabelEgress is "proxy" on the pods of calls with a network grant: only they are
	// selected by the policy that lets them reach the egress proxy.
	LabelEgress = "skillbox.dev/egress"
)

// Names of the NetworkPolicies the sandbox keeps in its namespace.
const (
	PolicyIsolate    = "skillbox-skills-isolate"
	PolicyEgressOnly = "skillbox-skills-egress-proxy"
)

// ContainerName is the name of the skill's container in every pod.
const ContainerName = "skill"

// Backend is the kind of workload a call runs as.
type Backend string

// Backends.
const (
	// BackendAuto uses agent-sandbox when its Sandbox CRD is served, else Jobs.
	BackendAuto    Backend = ""
	BackendSandbox Backend = "sandbox" // agents.x-k8s.io/v1beta1 Sandbox
	BackendJob     Backend = "job"     // batch/v1 Job
)

// ErrNoCluster is returned by New when the API server does not answer.
var ErrNoCluster = errors.New("no Kubernetes API server answers")

// EgressProxy is the part of skillbox's egress proxy (*egress.Proxy) the sandbox uses:
// a token per call that binds the call's Guard.
type EgressProxy interface {
	Reserve(ca *egress.CallCA) (token string, bind func(*egress.Guard), release func())
}

var _ EgressProxy = (*egress.Proxy)(nil)

// Option configures a Sandbox.
type Option func(*Sandbox)

// WithNamespace sets the namespace calls run in (default "skillbox-skills").
func WithNamespace(ns string) Option { return func(s *Sandbox) { s.ns = ns } }

// WithBackend forces a workload kind (default BackendAuto).
func WithBackend(b Backend) Option { return func(s *Sandbox) { s.backend = b } }

// WithRuntimeClass sets the pods' runtimeClassName (e.g. "gvisor"); empty: the
// cluster's default runtime.
func WithRuntimeClass(name string) Option { return func(s *Sandbox) { s.runtimeClass = name } }

// WithEgressProxy sets the proxy that network-granted calls go through, the address
// (host:port) at which pods reach it, and the namespace and labels of the pods that
// serve it (the NetworkPolicy lets skill pods reach those pods on that port and
// nothing else; an empty namespace is the skills' own). Without it a call with a
// network grant is refused (NOT_GRANTED).
func WithEgressProxy(p EgressProxy, addr, namespace string, serverLabels map[string]string) Option {
	return func(s *Sandbox) { s.proxy, s.proxyAddr, s.proxyNS, s.proxyPods = p, addr, namespace, serverLabels }
}

// WithGuardOptions passes options (e.g. a resolver) to every call's egress.Guard.
func WithGuardOptions(opts ...egress.Option) Option {
	return func(s *Sandbox) { s.guardOpts = append(s.guardOpts, opts...) }
}

// WithPodRoots sets the PEM certificates a pod with brokered https secrets trusts
// besides its call's CA (SSL_CERT_FILE names one file, which replaces the image's own
// roots for most TLS stacks). Default: this process's host roots (egress.HostRoots).
func WithPodRoots(pem []byte) Option {
	return func(s *Sandbox) { s.roots, s.rootsSet = slices.Clone(pem), true }
}

// WithLogger receives the sandbox's own trouble (a workload it could not delete).
func WithLogger(l *slog.Logger) Option { return func(s *Sandbox) { s.log = l } }

// WithoutNetworkPolicies does not create the NetworkPolicies (for an operator who
// manages them in deploy/, or a namespace where skillbox may not write them).
func WithoutNetworkPolicies() Option { return func(s *Sandbox) { s.noPolicies = true } }

// Sandbox runs container skills on Kubernetes. It is safe for concurrent use.
type Sandbox struct {
	cfg          *rest.Config
	c            client.WithWatch
	cs           kubernetes.Interface
	ns           string
	backend      Backend
	runtimeClass string
	proxy        EgressProxy
	proxyAddr    string
	proxyNS      string
	proxyPods    map[string]string
	guardOpts    []egress.Option
	noPolicies   bool
	backstop     time.Duration
	instance     string
	log          *slog.Logger
	roots        []byte // trusted by pods with brokered https secrets, after the call's CA
	rootsSet     bool

	mu     sync.Mutex
	closed bool
	calls  sync.WaitGroup
}

var (
	_ isolation.Sandbox  = (*Sandbox)(nil)
	_ isolation.Drainer  = (*Sandbox)(nil)
	_ isolation.Preparer = (*Sandbox)(nil)
)

// Scheme holds the kinds the sandbox reads and writes.
func Scheme() *runtime.Scheme {
	sc := runtime.NewScheme()
	_ = corev1.AddToScheme(sc)
	_ = batchv1.AddToScheme(sc)
	_ = networkingv1.AddToScheme(sc)
	_ = sandboxv1.AddToScheme(sc)
	return sc
}

// New connects to the API server of cfg, picks the backend (BackendAuto: Sandbox if
// the agent-sandbox CRD is served) and makes sure the NetworkPolicies exist.
func New(ctx context.Context, cfg *rest.Config, opts ...Option) (*Sandbox, error) {
	s := &Sandbox{cfg: rest.CopyConfig(cfg), ns: "skillbox-skills", instance: randomID(), backstop: DefaultBackstop, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(s)
	}
	if !s.rootsSet {
		s.roots = egress.HostRoots()
	}
	switch s.backend {
	case BackendAuto, BackendSandbox, BackendJob:
	default:
		return nil, fmt.Errorf("kubernetes sandbox: backend %q: want %q or %q", s.backend, BackendSandbox, BackendJob)
	}
	if s.proxy != nil {
		if _, _, err := net.SplitHostPort(s.proxyAddr); err != nil {
			return nil, fmt.Errorf("kubernetes sandbox: egress proxy address %q: want host:port", s.proxyAddr)
		}
		if len(s.proxyPods) == 0 {
			return nil, errors.New("kubernetes sandbox: egress proxy without the labels of its pods")
		}
	}
	c, err := client.NewWithWatch(s.cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return nil, fmt.Errorf("kubernetes sandbox: client: %w", err)
	}
	cs, err := kubernetes.NewForConfig(s.cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes sandbox: client: %w", err)
	}
	s.c, s.cs = c, cs
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cs.Discovery().ServerVersion(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoCluster, err)
	}
	if s.backend == BackendAuto {
		s.backend = BackendJob
		gvk := sandboxv1.GroupVersion.WithKind("Sandbox")
		if _, err := c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
			s.backend = BackendSandbox
		} else if !meta.IsNoMatchError(err) {
			return nil, fmt.Errorf("kubernetes sandbox: look for the Sandbox CRD: %w", err)
		}
	}
	if !s.noPolicies {
		if err := s.ensurePolicies(pctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Backend is the workload kind calls run as.
func (s *Sandbox) Backend() Backend { return s.backend }

// Namespace is where calls run.
func (s *Sandbox) Namespace() string { return s.ns }

// Instance is this Sandbox's id, the value of LabelInstance on what it creates.
func (s *Sandbox) Instance() string { return s.instance }

// Prepare refuses, at install, a skill whose image a cluster cannot pull by digest:
// a kubelet pulls by reference, so the image must be a registry reference pinned by
// digest (an image.tar inside the package cannot run here).
func (s *Sandbox) Prepare(_ context.Context, skill isolation.Skill) error {
	_, err := imageOf(skill)
	return err
}

// Drain deletes every workload of skill this sandbox made: the engine calls it when
// the skill is disabled, after cancelling its calls, so nothing of it keeps running.
func (s *Sandbox) Drain(ctx context.Context, skill string) error {
	return s.deleteAll(ctx, client.MatchingLabels{LabelInstance: s.instance, LabelSkill: skill})
}

// Close waits for calls in flight (their callers cancel them) and deletes whatever
// of this sandbox is left in the cluster.
func (s *Sandbox) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.calls.Wait()
	return s.deleteAll(ctx, client.MatchingLabels{LabelInstance: s.instance})
}

// deleteAll deletes the workloads (and their env Secrets) matching sel, in the
// foreground so their pods go with them.
func (s *Sandbox) deleteAll(ctx context.Context, sel client.MatchingLabels) error {
	var errs []error
	del := []client.DeleteAllOfOption{client.InNamespace(s.ns), sel, client.PropagationPolicy("Background")}
	switch s.backend {
	case BackendSandbox:
		errs = append(errs, ignoreGone(s.c.DeleteAllOf(ctx, &sandboxv1.Sandbox{}, del...)))
	default:
		errs = append(errs, ignoreGone(s.c.DeleteAllOf(ctx, &batchv1.Job{}, del...)))
	}
	// Pods too: a Job's pods go with it in the background, but not at once.
	errs = append(errs, ignoreGone(s.c.DeleteAllOf(ctx, &corev1.Pod{}, del...)))
	errs = append(errs, ignoreGone(s.c.DeleteAllOf(ctx, &corev1.Secret{}, del...)))
	return errors.Join(errs...)
}

func ignoreGone(err error) error {
	if err == nil || apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func (s *Sandbox) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.calls.Add(1)
	return true
}

func randomID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
