package replica

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/approval"
)

// An approval names resources of the server itself: where each secret's value is read
// (env:VAR of the server's environment, file:/path of its file system) and, for wasm
// skills, the host directories behind grant.files. Whoever may write ConfigMaps in the
// state namespace is not necessarily someone who may read the server pod's token, env
// or files, so a relayed approval (one this replica takes from the cluster, not one
// made here) may name only those its operator allows (Relayed), or those its own
// current approval of the skill already binds the same way; otherwise it is not applied.

// Relayed is what an approval taken from the cluster may name of this server. Empty
// (the default): nothing, so a relayed approval with any secret source or file grant
// is applied only where this replica's own approval of that skill already binds each
// one the same way.
type Relayed struct {
	// SecretSources: "env:NAME" (that variable), "env:PREFIX*" (any variable whose name
	// starts with PREFIX, not empty), "file:/abs/file" (that file) or "file:/abs/dir/"
	// (any file under that directory, at any depth). Paths are absolute and clean.
	SecretSources []string
	// HostDirs: directories a grant.files host may be, or be under (absolute, clean).
	HostDirs []string
}

// WithRelayed sets what approvals taken from the cluster may name of this server.
func WithRelayed(r Relayed) Option { return func(m *Mirror) { m.relayedOpt = r } }

// Flag names, for the words a refusal is logged with.
const (
	FlagRelayedSecretSources = "--kube-relayed-secret-sources"
	FlagRelayedHostDirs      = "--kube-relayed-host-dirs"
)

// Check refuses an entry that is malformed or would allow the whole file system or
// environment. Start checks again against the server's home, which no entry may overlap.
func (r Relayed) Check() error {
	_, err := r.compile("")
	return err
}

// relayedRules is Relayed checked and ready to match.
type relayedRules struct {
	envExact, fileExact map[string]bool
	envPrefix           []string
	fileDirs, hostDirs  []string // clean, no trailing slash
	sources, dirs       string   // as the operator wrote them, for messages
}

// compile checks r; home, when set, is the server's home, which no entry may overlap:
// it holds approvals/, trust.yaml and native code the server runs.
func (r Relayed) compile(home string) (*relayedRules, error) {
	rr := &relayedRules{envExact: map[string]bool{}, fileExact: map[string]bool{}, sources: "none", dirs: "none"}
	var probs, srcs, dirs []string
	overlapsHome := func(p string) bool {
		if home == "" {
			return false
		}
		h := filepath.Clean(home)
		return within(p, h) || within(h, p)
	}
	for _, e := range r.SecretSources {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		srcs = append(srcs, e)
		bad := func(why string) { probs = append(probs, fmt.Sprintf("%s %q: %s", FlagRelayedSecretSources, e, why)) }
		kind, ref, _ := strings.Cut(e, ":")
		switch kind {
		case "env":
			name, prefix := strings.CutSuffix(ref, "*")
			switch {
			case name == "" && prefix:
				bad("a prefix must not be empty (env:* would be the whole environment of the server): name one, e.g. env:SKILLBOX_SECRET_*")
			case name == "":
				bad("want env:NAME or env:PREFIX*")
			case strings.ContainsAny(name, "*=\x00"):
				bad("a variable name holds no '=', and '*' only ends a prefix")
			case prefix:
				rr.envPrefix = append(rr.envPrefix, name)
			default:
				rr.envExact[name] = true
			}
		case "file":
			p, dir := strings.CutSuffix(ref, "/")
			switch {
			case strings.Contains(ref, "*"):
				bad("no wildcards: end a directory with / to allow the files under it")
			case dir && (p == "" || p == "/"):
				bad("the root directory would be the whole file system of the server: name a directory")
			case !filepath.IsAbs(p) || filepath.Clean(p) != p:
				bad("want an absolute, clean path (no .., no //, no /./): file:/abs/file or file:/abs/dir/")
			case overlapsHome(p):
				bad(fmt.Sprintf("overlaps the server's home %s (approvals, trust.yaml, native code)", home))
			case dir:
				rr.fileDirs = append(rr.fileDirs, p)
			default:
				rr.fileExact[p] = true
			}
		default:
			bad("want env:NAME, env:PREFIX*, file:/abs/file or file:/abs/dir/")
		}
	}
	for _, e := range r.HostDirs {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		dirs = append(dirs, e)
		p := e
		if len(p) > 1 {
			p = strings.TrimSuffix(p, "/")
		}
		bad := func(why string) { probs = append(probs, fmt.Sprintf("%s %q: %s", FlagRelayedHostDirs, e, why)) }
		switch {
		case p == "/":
			bad("the root directory would be the whole file system of the server: name a directory")
		case !filepath.IsAbs(p) || filepath.Clean(p) != p:
			bad("want an absolute, clean directory (no .., no //)")
		case overlapsHome(p):
			bad(fmt.Sprintf("overlaps the server's home %s (approvals, trust.yaml, native code)", home))
		default:
			rr.hostDirs = append(rr.hostDirs, p)
		}
	}
	if len(probs) > 0 {
		return nil, errors.New(strings.Join(probs, "; "))
	}
	if len(srcs) > 0 {
		rr.sources = strings.Join(srcs, ",")
	}
	if len(dirs) > 0 {
		rr.dirs = strings.Join(dirs, ",")
	}
	return rr, nil
}

// within reports whether the clean absolute path p is dir or under it.
func within(p, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(p, "/")
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// cleanAbs reports whether p is absolute and clean, the only paths matched.
func cleanAbs(p string) bool { return filepath.IsAbs(p) && filepath.Clean(p) == p }

// source reports whether an approval from the cluster may read a secret from src.
func (rr *relayedRules) source(src string) bool {
	kind, ref, _ := strings.Cut(src, ":")
	switch kind {
	case "env":
		if ref == "" {
			return false
		}
		if rr.envExact[ref] {
			return true
		}
		for _, p := range rr.envPrefix {
			if strings.HasPrefix(ref, p) {
				return true
			}
		}
	case "file":
		if !cleanAbs(ref) {
			return false // .. and the like are never matched, whatever they would resolve to
		}
		if rr.fileExact[ref] {
			return true
		}
		for _, d := range rr.fileDirs {
			if strings.HasPrefix(ref, d+"/") {
				return true
			}
		}
	}
	return false
}

// hostDir reports whether an approval from the cluster may mount the host directory h.
func (rr *relayedRules) hostDir(h string) bool {
	if !cleanAbs(h) {
		return false
	}
	for _, d := range rr.hostDirs {
		if within(h, d) {
			return true
		}
	}
	return false
}

// refusals lists what of a, an approval taken from the cluster, this replica does not
// take: each secret source and each host directory that rr does not allow and that own
// (this replica's current approval of the skill, nil if none) does not bind the same
// way (the same secret name from the same source; the same guest path on the same host
// directory, with the same access or read where own has read-write).
func (rr *relayedRules) refusals(a, own *approval.Approval) []string {
	var probs []string
	for _, name := range slices.Sorted(maps.Keys(a.Grant.Secrets)) {
		src := a.Grant.Secrets[name]
		if rr.source(src) || (own != nil && own.Grant.Secrets[name] == src) {
			continue
		}
		probs = append(probs, fmt.Sprintf("grant.secrets.%s: source %s is not allowed (%s: %s)", name, src, FlagRelayedSecretSources, rr.sources))
	}
	for i, f := range a.Grant.Files {
		if rr.hostDir(f.Host) || (own != nil && ownsMount(own, f)) {
			continue
		}
		probs = append(probs, fmt.Sprintf("grant.files[%d].host: %s (for %s) is not allowed (%s: %s)", i, f.Host, f.Path, FlagRelayedHostDirs, rr.dirs))
	}
	return probs
}

// ownsMount reports whether own binds f's guest path to the same host directory with
// at least f's access.
func ownsMount(own *approval.Approval, f approval.File) bool {
	for _, o := range own.Grant.Files {
		if o.Path == f.Path && o.Host == f.Host && (o.Access == f.Access || o.Access == manifest.AccessReadWrite) {
			return true
		}
	}
	return false
}

// relayedError is an approval from the cluster that names what this replica does not
// take from there.
type relayedError struct{ probs []string }

func (e *relayedError) Error() string { return strings.Join(e.probs, "; ") }
