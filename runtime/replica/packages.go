package replica

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/skillpkg"
	"github.com/skillbox-dev/skillbox/skillpkg/oci"
)

// Skill packages follow the approvals. An approval pins a manifest digest; when the
// replica that approved had installed that package from a registry, the approval's
// ConfigMap also carries the registry reference pinned by digest (key "oci"). A
// replica that sees an approval for a package it lacks pulls that artifact itself,
// verifies it against its own trust.yaml (every bundle referrer tried, as install
// does) and installs it: the other replica's word is taken for where the bytes are,
// never for the bytes. A package installed from a directory or an archive has no
// origin: the replicas that lack it say so (Missing, the log), and its calls there
// are refused until it is installed.

// KeyOrigin is the approval ConfigMap's key for the package's registry reference.
const KeyOrigin = "oci"

// retryAfter is how long a failed pull waits before the next reconcile tries again.
const retryAfter = 30 * time.Second

// WithRegistry is how this replica reaches the registry it pulls approved packages
// from (plain HTTP on loopback, a CA, credentials); default: TLS with the system roots
// and the docker config's credentials.
func WithRegistry(o oci.Options) Option { return func(m *Mirror) { m.packages.opts = o } }

// packages fetches the approved packages this replica lacks.
type packages struct {
	opts oci.Options

	mu       sync.Mutex
	inFlight map[string]bool      // manifest digests being pulled
	tried    map[string]time.Time // manifest digest → last failed attempt
	missing  map[string]string    // skill → why its approved package is not here
}

// Missing says, per skill, why the package its approval pins is not installed on this
// replica (no registry origin, or the pull or install failed); empty when every
// approved package is here.
func (m *Mirror) Missing() map[string]string {
	m.packages.mu.Lock()
	defer m.packages.mu.Unlock()
	return maps.Clone(m.packages.missing)
}

// manifestDigestOf reads the manifest digest an approval file pins.
func manifestDigestOf(approvalYAML string) string {
	var a struct {
		ManifestDigest string `yaml:"manifestDigest"`
	}
	if yaml.Unmarshal([]byte(approvalYAML), &a) != nil {
		return ""
	}
	return a.ManifestDigest
}

// ensurePackages starts fetching, in the background, the packages the cluster's approvals pin
// that this replica lacks.
func (m *Mirror) ensurePackages(ctx context.Context, remote map[string]string) {
	names := make([]string, 0)
	for k := range remote {
		if name, ok := cutApprovalKey(k); ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	p := m.packages
	for _, name := range names {
		md := manifestDigestOf(remote[StateApproval+"/"+name])
		if md == "" {
			continue
		}
		if _, err := m.st.Lookup(name, md); err == nil {
			p.mu.Lock()
			delete(p.missing, name)
			p.mu.Unlock()
			continue
		}
		ref := remote[StateApproval+"/"+name+"\x00"+KeyOrigin]
		p.mu.Lock()
		if p.inFlight == nil {
			p.inFlight, p.tried, p.missing = map[string]bool{}, map[string]time.Time{}, map[string]string{}
		}
		if ref == "" {
			why := fmt.Sprintf("the approved package %s (%s) is not installed on this replica, and the replica that approved it installed it from a directory or an archive (no registry origin): install the same package here, or push it and install it from the registry", name, md)
			if p.missing[name] != why {
				m.log.Warn("replica: "+why, "skill", name)
			}
			p.missing[name] = why
			p.mu.Unlock()
			continue
		}
		if p.inFlight[md] || time.Since(p.tried[md]) < retryAfter {
			p.mu.Unlock()
			continue
		}
		p.inFlight[md] = true
		p.mu.Unlock()
		m.workers.Add(1)
		go func() {
			defer m.workers.Done()
			err := m.fetch(ctx, name, md, ref)
			p.mu.Lock()
			defer p.mu.Unlock()
			delete(p.inFlight, md)
			if err != nil {
				p.tried[md] = time.Now()
				p.missing[name] = fmt.Sprintf("the approved package %s (%s) could not be installed from %s: %v", name, md, ref, err)
				m.log.Warn("replica: "+p.missing[name], "skill", name)
				return
			}
			delete(p.tried, md)
			delete(p.missing, name)
		}()
	}
}

// fetch pulls ref, verifies it against this replica's trust.yaml and installs it;
// the package must be the one the approval pins.
func (m *Mirror) fetch(ctx context.Context, name, md, ref string) error {
	tmp, err := os.MkdirTemp("", "skillbox-replica-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "pkg")
	opts := m.packages.opts
	opts.VerifyBundle = m.eng.VerifyBundle
	pulled, err := oci.Pull(ctx, ref, dir, opts)
	if err != nil {
		return err
	}
	if got := manifestDigestOfDir(dir); got != md {
		return fmt.Errorf("%s holds skill.yaml %s, not the approved %s", pulled.Pinned(), got, md)
	}
	in, err := m.eng.InstallFrom(ctx, dir, m.by, engine.Origin{Source: pulled.Pinned(), Ref: pulled.Pinned(),
		Details: map[string]any{"oci": pulled.Pinned(), "bundleReferrer": pulled.Bundle, "approvedElsewhere": true}})
	if err != nil {
		return err
	}
	if in.Entry.Name != name || in.Entry.ManifestDigest != md {
		return fmt.Errorf("installed %s %s, not the approved %s %s", in.Entry.Name, in.Entry.ManifestDigest, name, md)
	}
	return nil
}

// manifestDigestOfDir is the sha256 of dir's skill.yaml, as the store computes it.
func manifestDigestOfDir(dir string) string {
	data, err := os.ReadFile(filepath.Join(dir, "skill.yaml"))
	if err != nil {
		return ""
	}
	return skillpkg.ManifestDigest(data)
}

// cutApprovalKey is the skill name of an approval's snapshot key.
func cutApprovalKey(k string) (string, bool) {
	name, ok := strings.CutPrefix(k, StateApproval+"/")
	if !ok || strings.Contains(name, "\x00") {
		return "", false
	}
	return name, true
}
