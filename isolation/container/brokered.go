package container

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/mount"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/egress"
	"github.com/skillbox-dev/skillbox/manifest"
)

// CAPath is where a container whose grant has brokered secrets for https origins finds
// its call's CA certificate (and, after it, the roots it trusts for every other
// origin: see WithContainerRoots). It is a read-only bind mount of a file the sandbox
// writes for that container; it never holds a private key.
const CAPath = "/etc/skillbox/ca.pem"

// caEnv are the variables that point the common TLS stacks at CAPath
// (egress.CAEnv). They replace any granted env of the same name.
var caEnv = egress.CAEnv

// WithContainerRoots sets the PEM certificates a container with brokered https
// secrets trusts besides its call's CA: SSL_CERT_FILE names one file, which replaces
// the image's own roots for most TLS stacks, so the origins the proxy tunnels (no
// secret) still need roots there. Default: the host's system bundle (SSL_CERT_FILE of
// the server's environment, else the usual places), or none when there is none.
func WithContainerRoots(pem []byte) Option {
	return func(s *Sandbox) { s.roots, s.rootsSet = bytes.Clone(pem), true }
}

// hostRoots reads the host's root bundle, or returns nil.
func hostRoots() []byte { return egress.HostRoots() }

// checkBrokered refuses a grant that hands a brokered secret's value to the container
// in its env: the engine never does, and the container must never see it.
func checkBrokered(g isolation.Grant) error {
	for _, b := range g.Brokered {
		for k, v := range g.Env {
			for _, secret := range []string{b.Secret, b.Value} {
				// Equality, not containment: a short value would refuse unrelated env.
				if secret != "" && v == secret {
					return isolation.Errorf(isolation.ReasonInternal, "env %s holds the value of brokered secret %s; it must never enter the container", k, b.Name)
				}
			}
		}
	}
	return nil
}

// callCA makes the CA of one container whose spec intercepts origins, writes its
// certificate (and the roots) into a file of its own, and returns both, with the
// mount and the env that point the container at it. life is how long the container may
// serve: its call's time limit, or for a warm one its wait as well.
func (s *Sandbox) callCA(sp *spec, life time.Duration) (*egress.CallCA, string, mount.Mount, []string, error) {
	ca, err := egress.NewCallCA(sp.Intercept, createTimeout+life)
	if err != nil {
		return nil, "", mount.Mount{}, nil, &isolation.Error{Reason: isolation.ReasonInternal, Msg: "make the call's CA", Err: err}
	}
	bundle := ca.CertPEM()
	if len(s.roots) > 0 {
		bundle = append(append(bundle, '\n'), s.roots...)
	}
	file := filepath.Join(s.dir, "ca-"+randomID()+".pem")
	// World-readable: the container runs as another user; the file is public.
	if err := os.WriteFile(file, bundle, 0o644); err != nil {
		ca.Drop()
		return nil, "", mount.Mount{}, nil, &isolation.Error{Reason: isolation.ReasonInternal, Msg: "write the call's CA certificate", Err: err}
	}
	env := make([]string, len(caEnv))
	for i, k := range caEnv {
		env[i] = k + "=" + CAPath
	}
	m := mount.Mount{Type: mount.TypeBind, Source: file, Target: CAPath, ReadOnly: true}
	return ca, file, m, env, nil
}

// withoutEnv returns env without the variables named in names.
func withoutEnv(env []string, names []string) []string {
	return slices.DeleteFunc(env, func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains(names, k)
	})
}

// guardOptions are the options of one call's Guard: the sandbox's, and the call's
// brokered secrets.
func (s *Sandbox) guardOptions(g isolation.Grant) []egress.Option {
	opts := slices.Clone(s.guardOpts)
	if len(g.Brokered) > 0 {
		opts = append(opts, egress.WithSecrets(g.Brokered))
	}
	return opts
}

// caLife is how long a container prepared now may serve its call.
func (s *Sandbox) caLife(callID string, timeout time.Duration) time.Duration {
	if callID == poolCallID {
		return s.maxWarmAge + time.Duration(manifest.MaxTimeout)
	}
	return timeout
}
