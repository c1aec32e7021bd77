package approval

import (
	"fmt"
	"strings"

	"github.com/skillbox-dev/skillbox/manifest"
)

// Words is the grant in plain words, one line each, for an operator reading what a
// skill of manifest m really gets: origins, files with their host directories,
// environment and secret names (never a value: a secret shows the kind of its source,
// "env" or "file"), the effective limits, who may call and who must allow each call. `skillbox approve` and the
// console print the same lines.
func (g Grant) Words(m *manifest.Manifest) []string {
	var out []string
	if len(g.Network) == 0 {
		out = append(out, "network: none")
	}
	for _, o := range g.Network {
		out = append(out, fmt.Sprintf("network: %s", o))
	}
	for _, f := range g.Files {
		host := f.Host
		if host == "" {
			host = "(no host directory chosen: approval will be refused)"
		}
		out = append(out, fmt.Sprintf("file: %s (%s) <- %s", f.Path, f.Access, host))
	}
	for _, n := range sortedKeys(g.Env) {
		out = append(out, "env: "+n)
	}
	brokered := map[string]manifest.BrokeredSecret{}
	for _, b := range g.Granted(m).Capabilities.Brokered {
		brokered[b.Name] = b
	}
	for _, n := range sortedKeys(g.Secrets) {
		src, _, _ := strings.Cut(g.Secrets[n], ":")
		b, ok := brokered[n]
		if !ok {
			out = append(out, fmt.Sprintf("secret: %s from %s (handed to the skill)", n, src))
			continue
		}
		to := "no origin the grant allows: never sent"
		if len(b.Origins) > 0 {
			var o []string
			for _, x := range b.Origins {
				o = append(o, x.String())
			}
			to = strings.Join(o, ", ") + " only"
		}
		out = append(out, fmt.Sprintf("secret: %s from %s, brokered: added as %s to %s, never seen by the skill", n, src, b.Header, to))
	}
	lim := EffectiveLimits(m.Limits, g.Limits, manifest.Limits{})
	out = append(out, fmt.Sprintf("limits: timeout %s, memory %s, output %s, cpu %g, requests %d",
		lim.Timeout, manifest.Size(lim.Memory), manifest.Size(lim.Output), lim.CPU, lim.Requests))
	if len(g.Callers) > 0 {
		out = append(out, "callers: "+strings.Join(g.Callers, ", "))
	} else {
		out = append(out, "callers: any caller the server admits")
	}
	return append(out, "oversight: "+g.Oversight.Words())
}
