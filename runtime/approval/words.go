package approval

import (
	"fmt"
	"strings"

	"github.com/skillbox-dev/skillbox/manifest"
)

// Words is the grant in plain words, one line each, for an operator reading what a
// skill of manifest m really gets: origins, files with their host directories,
// environment and secret names (never a value: a secret shows the kind of its source,
// "env" or "file"), the effective limits (cpu only for a sandbox that has a CPU
// budget: a wasm skill has none), who may call, who must allow each call and, when
// the grant narrows the manifest's ask, what was left out. `skillbox approve` and the
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
	cpu := ""
	if m.Sandbox.Kind() != manifest.KindWasm {
		cpu = fmt.Sprintf(", cpu %g", lim.CPU)
	}
	out = append(out, fmt.Sprintf("limits: timeout %s, memory %s, output %s%s, requests %d",
		lim.Timeout, manifest.Size(lim.Memory), manifest.Size(lim.Output), cpu, lim.Requests))
	if len(g.Callers) > 0 {
		out = append(out, "callers: "+strings.Join(g.Callers, ", "))
	} else {
		out = append(out, "callers: any caller the server admits")
	}
	out = append(out, "oversight: "+g.Oversight.Words())
	if left := g.LeftOut(m); len(left) > 0 {
		out = append(out, "left out: "+strings.Join(left, ", "))
	}
	return out
}

// LeftOut lists what the manifest asks for and the grant does not give, in the order
// network, file, env, secret: "network https://b.example", "file /data" (or "write
// access to /data" when granted read-only), "env REGION", "secret API_TOKEN". Empty when the grant gives everything asked.
func (g Grant) LeftOut(m *manifest.Manifest) []string {
	var out []string
	granted := map[string]bool{}
	for _, o := range g.Network {
		granted[o.String()] = true
	}
	for _, o := range m.Capabilities.Network {
		if !granted[o.String()] {
			out = append(out, "network "+o.String())
		}
	}
	files := map[string]manifest.Access{}
	for _, f := range g.Files {
		files[f.Path] = f.Access
	}
	for _, f := range m.Capabilities.Files {
		switch a, ok := files[f.Path]; {
		case !ok:
			out = append(out, "file "+f.Path)
		case f.Access == manifest.AccessReadWrite && a != manifest.AccessReadWrite:
			out = append(out, "write access to "+f.Path)
		}
	}
	for _, n := range m.Capabilities.Env {
		if _, ok := g.Env[n]; !ok {
			out = append(out, "env "+n)
		}
	}
	asked := append([]string(nil), m.Capabilities.Secrets...)
	for _, b := range m.Capabilities.Brokered {
		asked = append(asked, b.Name)
	}
	for _, n := range asked {
		if _, ok := g.Secrets[n]; !ok {
			out = append(out, "secret "+n)
		}
	}
	return out
}
