package approval

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

const (
	// LogsCap is the stderr budget of every call: logs are for people reading a reply,
	// so they get a fixed cap rather than one tied to the output size.
	LogsCap = isolation.DefaultLogs
	// ResponseCap bounds one response body read from the network, further capped by the
	// call's memory budget.
	ResponseCap = isolation.DefaultResponse
	// MaxSecretBytes bounds a secret read from a file.
	MaxSecretBytes = 64 << 10
)

// Effective turns a manifest, its (checked) approval and the caller's requested lower
// limits into what one call gets. Limits are min(manifest, approval, caller), where a
// zero approval or caller field does not lower. Secrets are resolved now, from the
// runtime's environment or files, so a rotated secret takes effect on the next call; a
// missing source is an error naming the secret. Host directories must exist.
// Call Check (and CheckCaller) first: Effective does not re-check the grant's width.
func Effective(m *manifest.Manifest, a *Approval, caller manifest.Limits) (isolation.Limits, isolation.Grant, error) {
	if a == nil {
		return isolation.Limits{}, isolation.Grant{}, fmt.Errorf("%s: %w", m.Name, ErrNotApproved)
	}
	// The door checks these too; checked here so that no way in can lower a budget to
	// something a sandbox reads as "no limit".
	if err := manifest.CheckLowering(caller, m.Sandbox.Container != nil, "limits"); err != nil {
		return isolation.Limits{}, isolation.Grant{}, &LimitsError{Err: err}
	}
	g := a.Grant
	lim := EffectiveLimits(m.Limits, g.Limits, caller)

	var out isolation.Grant
	out.Network = slices.Clone(g.Network)
	if len(out.Network) == 0 {
		lim.Requests = 0
	}
	for i, f := range g.Files {
		st, err := os.Stat(f.Host)
		if err != nil {
			return lim, isolation.Grant{}, fmt.Errorf("grant.files[%d]: host directory for %s: %w", i, f.Path, err)
		}
		if !st.IsDir() {
			return lim, isolation.Grant{}, fmt.Errorf("grant.files[%d]: host path %s for %s is not a directory", i, f.Host, f.Path)
		}
		out.Files = append(out.Files, isolation.Mount{Guest: f.Path, Host: f.Host, Access: f.Access})
	}
	if len(g.Env)+len(g.Secrets) > 0 {
		out.Env = make(map[string]string, len(g.Env)+len(g.Secrets))
		maps.Copy(out.Env, g.Env)
		for _, name := range sortedKeys(g.Secrets) {
			v, err := resolveSecret(g.Secrets[name])
			if err != nil {
				return lim, isolation.Grant{}, fmt.Errorf("secret %s: %w", name, err)
			}
			b, brokered := m.Capabilities.BrokeredNamed(name)
			if !brokered {
				out.Env[name] = v
				continue
			}
			origins := b.Origins
			if narrowed, ok := g.SecretOrigins[name]; ok {
				origins = narrowed
			}
			bs, err := Broker(b, origins, out.Network, v)
			if err != nil {
				return lim, isolation.Grant{}, err
			}
			out.Brokered = append(out.Brokered, bs)
		}
		if len(out.Env) == 0 {
			out.Env = nil
		}
	}
	return lim, out, nil
}

// Broker is the sandbox's form of a brokered secret with value: sent only to those
// of origins that network grants (a secret is never sent where the call may not
// go), in its header, formatted. A value with a line break or NUL is refused: it
// would let the value add headers of its own. An empty one is refused too.
func Broker(b manifest.BrokeredSecret, origins, network []manifest.Origin, value string) (isolation.BrokeredSecret, error) {
	if strings.ContainsAny(value, "\r\n\x00") {
		return isolation.BrokeredSecret{}, fmt.Errorf("secret %s: the value contains a line break or NUL byte; a brokered secret is sent in an HTTP header and must be one line", b.Name)
	}
	if value == "" {
		return isolation.BrokeredSecret{}, fmt.Errorf("secret %s: the value is empty", b.Name)
	}
	var to []manifest.Origin
	for _, o := range origins {
		if slices.Contains(network, o) {
			to = append(to, o)
		}
	}
	return isolation.BrokeredSecret{Name: b.Name, Origins: to, Header: b.Header, Value: b.HeaderValue(value), Secret: value}, nil
}

// EffectiveLimits is min(manifest, grant, caller) per field, zero meaning "not lowered"
// for grant and caller. Logs is LogsCap; Response is min(ResponseCap, memory).
func EffectiveLimits(m, grant, caller manifest.Limits) isolation.Limits {
	lower := func(base int64, xs ...int64) int64 {
		for _, x := range xs {
			if x > 0 && x < base {
				base = x
			}
		}
		return base
	}
	l := isolation.Limits{
		Timeout:  time.Duration(lower(int64(m.Timeout), int64(grant.Timeout), int64(caller.Timeout))),
		Memory:   lower(int64(m.Memory), int64(grant.Memory), int64(caller.Memory)),
		Output:   lower(int64(m.Output), int64(grant.Output), int64(caller.Output)),
		Requests: int(lower(int64(m.Requests), int64(grant.Requests), int64(caller.Requests))),
		CPU:      m.CPU,
		Logs:     LogsCap,
	}
	for _, c := range []float64{grant.CPU, caller.CPU} {
		if c > 0 && c < l.CPU {
			// Below the floor the CFS quota rounds to none: never lower past it.
			l.CPU = max(c, manifest.MinCPU)
		}
	}
	l.Response = lower(ResponseCap, l.Memory)
	return l
}

// LimitsError is a caller's request to lower limits that cannot be applied (below a
// floor, negative, not a number); Err names each field.
type LimitsError struct {
	Err error
}

func (e *LimitsError) Error() string { return strings.ReplaceAll(e.Err.Error(), "\n", "; ") }

func (e *LimitsError) Unwrap() error { return e.Err }

func resolveSecret(src string) (string, error) {
	kind, ref, _ := strings.Cut(src, ":")
	switch kind {
	case "env":
		v, ok := os.LookupEnv(ref)
		if !ok {
			return "", fmt.Errorf("source %s: the runtime's environment has no %s", src, ref)
		}
		return v, nil
	case "file":
		f, err := os.Open(ref)
		if err != nil {
			return "", fmt.Errorf("source %s: %w", src, err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, MaxSecretBytes+1))
		if err != nil {
			return "", fmt.Errorf("source %s: %w", src, err)
		}
		if len(b) > MaxSecretBytes {
			return "", fmt.Errorf("source %s: larger than %d bytes", src, MaxSecretBytes)
		}
		// Files written by editors and `echo` end in a newline that is not the secret.
		return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
	}
	return "", fmt.Errorf("source %q: want env:VAR or file:/abs/path", src)
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
