package approval

import (
	"slices"

	"github.com/skillbox-dev/skillbox/manifest"
)

// Granted is what the approved version of m really got, written as a manifest: m
// with its capabilities and limits narrowed to grant g. An upgrade is reviewed against
// it, so that what the operator left out of the old version shows as new when the new
// version asks for it again (approving the new version without a grant file would give
// it all it asks). Only capabilities and limits change; m is not modified.
func (g Grant) Granted(m *manifest.Manifest) *manifest.Manifest {
	out := *m
	c := manifest.Capabilities{Network: slices.Clone(g.Network)}
	for _, f := range g.Files {
		c.Files = append(c.Files, manifest.FileGrant{Path: f.Path, Access: f.Access})
	}
	c.Env = sortedKeys(g.Env)
	for _, name := range sortedKeys(g.Secrets) {
		b, brokered := m.Capabilities.BrokeredNamed(name)
		if !brokered {
			c.Secrets = append(c.Secrets, name)
			continue
		}
		origins := b.Origins
		if narrowed, ok := g.SecretOrigins[name]; ok {
			origins = narrowed
		}
		b.Origins = nil
		for _, o := range origins {
			if slices.Contains(g.Network, o) {
				b.Origins = append(b.Origins, o)
			}
		}
		c.Brokered = append(c.Brokered, b)
	}
	out.Capabilities = c
	lim := EffectiveLimits(m.Limits, g.Limits, manifest.Limits{})
	out.Limits.Timeout = manifest.Duration(lim.Timeout)
	out.Limits.Memory = manifest.Size(lim.Memory)
	out.Limits.Output = manifest.Size(lim.Output)
	out.Limits.Requests = lim.Requests
	out.Limits.CPU = lim.CPU
	if len(g.Network) == 0 {
		out.Limits.Requests = 0
	}
	return &out
}
