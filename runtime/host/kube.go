package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/egress"
	"github.com/skillbox-dev/skillbox/isolation/kube"
	"github.com/skillbox-dev/skillbox/runtime/replica"
	"github.com/skillbox-dev/skillbox/skillpkg/oci"
)

// KubeOptions run container skills on Kubernetes (isolation/kube) instead of the
// local Docker engine, and share the kill switch and approvals with the other
// replicas through the API server (runtime/replica).
type KubeOptions struct {
	// Kubeconfig is the file to connect with; empty: the pod's service account when
	// running in a cluster, else $KUBECONFIG or ~/.kube/config.
	Kubeconfig string
	// Namespace is where calls run (default "skillbox-skills").
	Namespace string
	// StateNamespace is where the shared decisions live (ConfigMaps); empty: none are
	// shared, every replica keeps its own.
	StateNamespace string
	// RuntimeClass is the pods' runtimeClassName (e.g. "gvisor"); empty: the default.
	RuntimeClass string
	// Backend is "sandbox", "job" or "" (sandbox when its CRD is installed).
	Backend string
	// EgressListen is where this server's egress proxy listens (e.g. ":3128"), and
	// EgressAddr the host:port at which skill pods reach it (this pod's IP and that
	// port). EgressNamespace and EgressLabels select this server's pods for the
	// NetworkPolicy. Without EgressListen, network-granted skills are refused.
	EgressListen    string
	EgressAddr      string
	EgressNamespace string
	EgressLabels    map[string]string
	// Registry is how this replica pulls the packages other replicas approved (from
	// the registry reference they were installed from).
	Registry oci.Options
	// Relayed is which secret sources and host directories an approval taken from the
	// shared state may name (default none: such an approval is applied only where this
	// replica's own approval of the skill binds each the same way).
	Relayed replica.Relayed
}

// restConfig finds how to reach the API server.
func (k *KubeOptions) restConfig() (*rest.Config, error) {
	if k.Kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
	}
	if cfg, err := rest.InClusterConfig(); err == nil {
		return cfg, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
}

// openKube opens the Kubernetes sandbox with an egress proxy of its own.
func (h *Host) openKube(ctx context.Context) (isolation.Sandbox, func(context.Context) error, error) {
	k := h.opts.Kubernetes
	cfg, err := k.restConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes sandbox: %w", err)
	}
	opts := []kube.Option{kube.WithBackend(kube.Backend(k.Backend)), kube.WithRuntimeClass(k.RuntimeClass)}
	if k.Namespace != "" {
		opts = append(opts, kube.WithNamespace(k.Namespace))
	}
	if h.opts.Logger != nil {
		opts = append(opts, kube.WithLogger(h.opts.Logger))
	}
	var proxy *egress.Proxy
	if k.EgressListen != "" {
		if k.EgressAddr == "" || len(k.EgressLabels) == 0 {
			return nil, nil, errors.New("kubernetes sandbox: an egress listener needs the address pods reach it at and the labels of this server's pods")
		}
		ln, err := net.Listen("tcp", k.EgressListen)
		if err != nil {
			return nil, nil, fmt.Errorf("kubernetes sandbox: egress proxy: %w", err)
		}
		proxy = egress.NewProxy()
		go proxy.Serve(ln)
		opts = append(opts, kube.WithEgressProxy(proxy, k.EgressAddr, k.EgressNamespace, k.EgressLabels))
	}
	sb, err := kube.New(ctx, cfg, opts...)
	if err != nil {
		if proxy != nil {
			proxy.Close()
		}
		return nil, nil, err
	}
	return sb, func(ctx context.Context) error {
		err := sb.Close(ctx)
		if proxy != nil {
			proxy.Close()
		}
		return err
	}, nil
}

// startReplica mirrors the kill switch and approvals through the API server.
func (h *Host) startReplica(ctx context.Context) error {
	k := h.opts.Kubernetes
	if k == nil || k.StateNamespace == "" {
		return nil
	}
	cfg, err := k.restConfig()
	if err != nil {
		return fmt.Errorf("shared state: %w", err)
	}
	name, _ := os.Hostname()
	ropts := []replica.Option{replica.WithName(name), replica.WithRegistry(k.Registry), replica.WithRelayed(k.Relayed)}
	if h.opts.Logger != nil {
		ropts = append(ropts, replica.WithLogger(h.opts.Logger))
	}
	m, err := replica.Start(ctx, cfg, k.StateNamespace, h.engine, ropts...)
	if err != nil {
		return err
	}
	h.stopFirst = append(h.stopFirst, m.Stop)
	return nil
}
