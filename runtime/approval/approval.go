// Package approval is the operator's grant for one skill (approvals/NAME.yaml): pinned to
// the manifest digest and signer it was given for, holding the capabilities the skill
// really gets (never more than its manifest asks), and turned at call time into the
// sandbox's grant and budget, min(manifest, approval, caller).
package approval

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/internal/strictyaml"
	"github.com/skillbox-dev/skillbox/manifest"
	"go.yaml.in/yaml/v3"
)

// Approval is one approvals/NAME.yaml.
type Approval struct {
	Skill          string    `yaml:"skill"`
	ManifestDigest string    `yaml:"manifestDigest"` // sha256:<hex> of skill.yaml
	Signer         string    `yaml:"signer"`         // trust.yaml signer name
	ApprovedBy     string    `yaml:"approvedBy"`
	ApprovedAt     time.Time `yaml:"approvedAt"`
	Grant          Grant     `yaml:"grant"`
}

// Grant is what the skill really gets. What is not listed is not granted: an empty
// Network means no network even if the manifest asks for some. It is also the format
// of the file given to `skillbox approve --grant FILE`.
type Grant struct {
	Network []manifest.Origin `yaml:"network,omitempty"`
	Files   []File            `yaml:"files,omitempty"`
	// Env holds values for env names the manifest asks for.
	Env map[string]string `yaml:"env,omitempty"`
	// Secrets maps a secret name the manifest asks for to where the runtime reads it:
	// "env:VAR" (the runtime's environment) or "file:/abs/path".
	Secrets map[string]string `yaml:"secrets,omitempty"`
	// SecretOrigins narrows a brokered secret's origins: the value is sent only to
	// these, each among the origins the manifest lists for it. A brokered secret not
	// named here is sent to all the manifest lists (that the grant's network allows).
	SecretOrigins map[string][]manifest.Origin `yaml:"secretOrigins,omitempty"`
	// Limits lowers the manifest's limits; zero fields are not lowered.
	Limits manifest.Limits `yaml:"limits,omitempty"`
	// Callers may invoke the skill; empty means any authenticated local caller.
	Callers []string `yaml:"callers,omitempty"`
	// Oversight, when set, makes every call wait for a person's decision (see
	// Oversight); nil means calls run on the caller's word.
	Oversight *Oversight `yaml:"oversight,omitempty"`
}

// File binds a guest path the manifest asks for to a host directory.
type File struct {
	Path   string          `yaml:"path"` // guest path, as in the manifest
	Host   string          `yaml:"host"` // absolute host directory
	Access manifest.Access `yaml:"access"`
}

// MaxFileBytes bounds an approval or grant file.
const MaxFileBytes = 1 << 20

// Errors callers branch on.
var (
	// ErrNotApproved: no approval for this skill, or one for another manifest digest.
	ErrNotApproved = errors.New("not approved")
	// ErrCallerNotAllowed: the approval lists callers and this one is not among them.
	ErrCallerNotAllowed = errors.New("caller not allowed")
)

// GrantError lists what is wrong with a grant, each problem naming its field
// ("grant.network[1]: ..."). Error() is one line.
type GrantError struct {
	Problems []string
}

func (e *GrantError) Error() string { return strings.Join(e.Problems, "; ") }

// Dir is where home's approvals live ($SKILLBOX_HOME/approvals).
func Dir(home string) string { return filepath.Join(home, "approvals") }

// Path is where NAME's approval lives under home ($SKILLBOX_HOME).
func Path(home, name string) string {
	return filepath.Join(Dir(home), name+".yaml")
}

// Load reads an approval strictly (unknown fields and duplicate keys are errors). A
// missing file is ErrNotApproved (wrapped with the path).
func Load(path string) (*Approval, error) {
	var a Approval
	if err := readStrict(path, &a); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", path, ErrNotApproved)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var probs []string
	if _, err := manifest.ParseDigest(a.ManifestDigest); err != nil {
		probs = append(probs, fmt.Sprintf("manifestDigest: %q: want sha256:<64 lowercase hex>", a.ManifestDigest))
	}
	if a.Skill == "" {
		probs = append(probs, "skill: required")
	}
	if a.Signer == "" {
		probs = append(probs, "signer: required")
	}
	probs = append(probs, a.Grant.syntax("grant")...)
	if len(probs) > 0 {
		return nil, fmt.Errorf("%s: %w", path, &GrantError{probs})
	}
	return &a, nil
}

// LoadGrant reads a grant file (the grant section of an approval, without the pins).
func LoadGrant(path string) (Grant, error) {
	var g Grant
	if err := readStrict(path, &g); err != nil {
		return Grant{}, fmt.Errorf("grant %s: %w", path, err)
	}
	probs := g.syntax("")
	probs = append(probs, g.callerIdentities("")...)
	if g.Oversight != nil {
		probs = append(probs, g.Oversight.identities("oversight")...)
	}
	if len(probs) > 0 {
		return Grant{}, fmt.Errorf("grant %s: %w", path, &GrantError{probs})
	}
	return g, nil
}

// callerIdentities refuses callers that no transport establishes, so that a grant
// file's "callers: [bob]" (which no call could ever match) is named rather than
// silently letting no one in. The forms are those of transport.Caller. Only operator
// files are checked: the engine's in-process API lets an embedder name callers freely.
func (g *Grant) callerIdentities(at string) []string {
	var probs []string
	for i, c := range g.Callers {
		if strings.TrimSpace(c) == "" || validCaller(c) {
			continue // an empty caller is syntax's to report
		}
		f := fmt.Sprintf("callers[%d]", i)
		if at != "" {
			f = at + "." + f
		}
		probs = append(probs, fmt.Sprintf("%s: %q is not a caller identity; write unix:uid=N, cert:NAME, token:NAME or tls:anonymous", f, strictyaml.Cut(c, 64)))
	}
	return probs
}

// validCaller reports whether c has the form of an identity the transports give:
// "unix:uid=N", "cert:NAME", "token:NAME" or "tls:anonymous".
func validCaller(c string) bool {
	scheme, rest, ok := strings.Cut(c, ":")
	if !ok || rest == "" {
		return false
	}
	switch scheme {
	case "unix":
		uid, ok := strings.CutPrefix(rest, "uid=")
		return ok && uid != "" && strings.Trim(uid, "0123456789") == ""
	case "cert", "token":
		return true
	case "tls":
		return rest == "anonymous"
	}
	return false
}

func readStrict(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return err
	}
	if len(data) > MaxFileBytes {
		return fmt.Errorf("larger than %d bytes", MaxFileBytes)
	}
	// Unknown fields and wrong kinds are named by line, field path and what is allowed.
	return strictyaml.Decode(data, v)
}

// Save writes a atomically (temp file, fsync, rename) with mode 0600.
func Save(path string, a *Approval) error {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(a); err != nil {
		return fmt.Errorf("save approval: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("save approval: %w", err)
	}
	data := buf.Bytes()
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save approval: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".approval-*.tmp")
	if err != nil {
		return fmt.Errorf("save approval: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if err := tmp.Chmod(0o600); err == nil {
		_, err = tmp.Write(data)
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), path)
		}
		if err != nil {
			return fmt.Errorf("save approval: %w", err)
		}
	} else {
		tmp.Close()
		return fmt.Errorf("save approval: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Ask is the grant of everything the manifest asks for. File host directories are left
// empty: the operator must choose them (Check refuses an empty one).
func Ask(m *manifest.Manifest) Grant {
	g := Grant{Network: append([]manifest.Origin(nil), m.Capabilities.Network...)}
	for _, f := range m.Capabilities.Files {
		g.Files = append(g.Files, File{Path: f.Path, Access: f.Access})
	}
	return g
}

// Keep carries into g the restrictions of prev that no manifest asks for and that
// narrow whatever g grants: its callers and its oversight. Re-approving a skill (a new
// version, say) without a grant file must not silently lift who may call it or who
// must allow each call. It returns the grant and the names of what it kept (none when
// prev is nil or has neither).
func Keep(g Grant, prev *Approval) (Grant, []string) {
	if prev == nil {
		return g, nil
	}
	var kept []string
	if len(prev.Grant.Callers) > 0 {
		g.Callers = slices.Clone(prev.Grant.Callers)
		kept = append(kept, "callers")
	}
	if o := prev.Grant.Oversight; o != nil {
		c := *o
		c.Approvers = slices.Clone(o.Approvers)
		g.Oversight = &c
		kept = append(kept, "oversight")
	}
	return g, kept
}

// syntax checks what can be checked without the manifest.
func (g *Grant) syntax(at string) []string {
	field := func(s string) string {
		if at == "" {
			return s
		}
		return at + "." + s
	}
	var probs []string
	for i, f := range g.Files {
		p := field(fmt.Sprintf("files[%d]", i))
		if !f.Access.Valid() {
			probs = append(probs, fmt.Sprintf("%s.access: %q: want read or read-write", p, f.Access))
		}
		if f.Host == "" {
			probs = append(probs, fmt.Sprintf("%s.host: the host directory is required", p))
		} else if !filepath.IsAbs(f.Host) || filepath.Clean(f.Host) != f.Host {
			probs = append(probs, fmt.Sprintf("%s.host: %q: must be an absolute, clean path", p, f.Host))
		}
	}
	for _, name := range sortedKeys(g.Secrets) {
		if err := checkSource(g.Secrets[name]); err != nil {
			probs = append(probs, fmt.Sprintf("%s: %v", field("secrets."+name), err))
		}
	}
	// A lowered limit is never one that a sandbox would read as "no limit".
	var me *manifest.Error
	if errors.As(manifest.CheckLowering(g.Limits, false, field("limits")), &me) {
		probs = append(probs, me.Lines()...)
	}
	for i, c := range g.Callers {
		if strings.TrimSpace(c) == "" {
			probs = append(probs, fmt.Sprintf("%s: empty caller", field(fmt.Sprintf("callers[%d]", i))))
		}
	}
	if g.Oversight != nil {
		probs = append(probs, g.Oversight.syntax(field("oversight"))...)
		if len(g.Oversight.Approvers) > 0 && len(g.Callers) > 0 && !g.Oversight.decidable(g.Callers) {
			probs = append(probs, field("oversight.approvers")+": every caller would be its own only approver, so no call could ever be allowed (an approver may not decide its own call)")
		}
	}
	return probs
}

func checkSource(src string) error {
	kind, ref, ok := strings.Cut(src, ":")
	switch {
	case !ok:
	case kind == "env" && ref != "":
		return nil
	case kind == "file" && filepath.IsAbs(ref) && filepath.Clean(ref) == ref:
		return nil
	case kind == "file":
		return fmt.Errorf("%q: the file must be an absolute, clean path", src)
	}
	return fmt.Errorf("%q: want env:VAR or file:/abs/path", src)
}

// Check refuses an approval that does not fit this manifest: another digest (a new
// version is not approved: ErrNotApproved) or a grant wider than the manifest asks
// (*GrantError naming each field).
func Check(m *manifest.Manifest, manifestDigest string, a *Approval) error {
	if a == nil {
		return fmt.Errorf("%s: %w", m.Name, ErrNotApproved)
	}
	if a.Skill != m.Name {
		return fmt.Errorf("approval is for skill %q, not %q: %w", a.Skill, m.Name, ErrNotApproved)
	}
	if a.ManifestDigest != manifestDigest {
		return fmt.Errorf("%s %s (%s) is not approved (approved: %s): %w", m.Name, m.Version, manifestDigest, a.ManifestDigest, ErrNotApproved)
	}
	return CheckGrant(m, a.Grant, "grant")
}

// CheckGrant refuses a grant wider than the manifest or malformed; at prefixes each
// field path ("grant" for an approval, "" for a grant file).
func CheckGrant(m *manifest.Manifest, g Grant, at string) error {
	field := func(s string) string {
		if at == "" {
			return s
		}
		return at + "." + s
	}
	probs := g.syntax(at)

	asked := map[string]bool{}
	for _, o := range m.Capabilities.Network {
		asked[o.String()] = true
	}
	seen := map[string]bool{}
	for i, o := range g.Network {
		s := o.String()
		switch {
		case !asked[s]:
			probs = append(probs, fmt.Sprintf("%s: %q is not asked for by the manifest", field(fmt.Sprintf("network[%d]", i)), s))
		case seen[s]:
			probs = append(probs, fmt.Sprintf("%s: %q is listed twice", field(fmt.Sprintf("network[%d]", i)), s))
		}
		seen[s] = true
	}

	files := map[string]manifest.Access{}
	for _, f := range m.Capabilities.Files {
		files[f.Path] = f.Access
	}
	seen = map[string]bool{}
	for i, f := range g.Files {
		p := field(fmt.Sprintf("files[%d]", i))
		want, ok := files[f.Path]
		switch {
		case !ok:
			probs = append(probs, fmt.Sprintf("%s.path: %q is not asked for by the manifest", p, f.Path))
		case seen[f.Path]:
			probs = append(probs, fmt.Sprintf("%s.path: %q is listed twice", p, f.Path))
		case f.Access == manifest.AccessReadWrite && want != manifest.AccessReadWrite:
			probs = append(probs, fmt.Sprintf("%s.access: read-write, but the manifest asks only read", p))
		}
		seen[f.Path] = true
	}
	// A read-only directory at or inside a read-write one is writable through it; paths
	// compared as written and with links resolved, as CheckHome does.
	for i, f := range g.Files {
		if f.Access != manifest.AccessRead || !filepath.IsAbs(f.Host) {
			continue
		}
		for j, w := range g.Files {
			if w.Access == manifest.AccessReadWrite && filepath.IsAbs(w.Host) && nested(f.Host, w.Host) {
				probs = append(probs, fmt.Sprintf("%s: %s is read-only for %s but inside %s, granted read-write for %s (%s), through which the skill could write it; grant one or the other",
					field(fmt.Sprintf("files[%d].host", i)), f.Host, f.Path, w.Host, w.Path, field(fmt.Sprintf("files[%d]", j))))
				break
			}
		}
	}

	envAsked := setOf(m.Capabilities.Env)
	for _, name := range sortedKeys(g.Env) {
		if !envAsked[name] {
			probs = append(probs, fmt.Sprintf("%s: %s is not asked for by the manifest", field("env."+name), name))
		}
	}
	secAsked := setOf(m.Capabilities.SecretNames())
	for _, name := range sortedKeys(g.Secrets) {
		if !secAsked[name] {
			probs = append(probs, fmt.Sprintf("%s: %s is not asked for by the manifest", field("secrets."+name), name))
		}
	}
	probs = append(probs, checkSecretOrigins(m, g, field)...)

	ml, gl := m.Limits, g.Limits
	if m.Sandbox.Container != nil && gl.Memory >= manifest.MinMemory && gl.Memory < manifest.MinContainerMemory {
		probs = append(probs, fmt.Sprintf("%s: %s: want at least %s for a container skill", field("limits.memory"), gl.Memory, manifest.MinContainerMemory))
	}
	raise := func(name string, over bool, got, max any) {
		if over {
			probs = append(probs, fmt.Sprintf("%s: %v is more than the manifest's %v", field("limits."+name), got, max))
		}
	}
	raise("timeout", gl.Timeout > ml.Timeout, gl.Timeout, ml.Timeout)
	raise("memory", gl.Memory > ml.Memory, gl.Memory, ml.Memory)
	raise("output", gl.Output > ml.Output, gl.Output, ml.Output)
	raise("cpu", gl.CPU > ml.CPU, gl.CPU, ml.CPU)
	raise("requests", gl.Requests > ml.Requests, gl.Requests, ml.Requests)

	if len(probs) > 0 {
		return &GrantError{probs}
	}
	return nil
}

// checkSecretOrigins refuses secretOrigins that widen a brokered secret: an origin the
// manifest does not list for it, a secret that is not brokered, an empty list.
func checkSecretOrigins(m *manifest.Manifest, g Grant, field func(string) string) []string {
	var probs []string
	for _, name := range slices.Sorted(maps.Keys(g.SecretOrigins)) {
		at := field("secretOrigins." + name)
		b, ok := m.Capabilities.BrokeredNamed(name)
		if !ok {
			if slices.Contains(m.Capabilities.Secrets, name) {
				probs = append(probs, fmt.Sprintf("%s: %s is handed to the skill, not brokered, so it has no origins to narrow", at, name))
			} else {
				probs = append(probs, fmt.Sprintf("%s: %s is not a brokered secret of the manifest", at, name))
			}
			continue
		}
		if len(g.SecretOrigins[name]) == 0 {
			probs = append(probs, fmt.Sprintf("%s: lists no origin; to send %s nowhere, leave it out of secrets", at, name))
			continue
		}
		var listed []string
		for _, o := range b.Origins {
			listed = append(listed, o.String())
		}
		for i, o := range g.SecretOrigins[name] {
			if !slices.Contains(b.Origins, o) {
				probs = append(probs, fmt.Sprintf("%s[%d]: %q is not among the origins the manifest lists for %s (%s): a grant may narrow a secret's origins, never widen them",
					at, i, o.String(), name, strings.Join(listed, ", ")))
			}
		}
	}
	return probs
}

// CheckSigner refuses a package signed by someone other than the signer the approval
// was given for: a re-signed package is a new decision for the operator.
func CheckSigner(a *Approval, signer string) error {
	if a == nil {
		return ErrNotApproved
	}
	if a.Signer != signer {
		return fmt.Errorf("%s is signed by %q but was approved for signer %q: %w", a.Skill, signer, a.Signer, ErrNotApproved)
	}
	return nil
}

// CheckCaller refuses a caller the approval does not list (any caller when it lists none).
func CheckCaller(a *Approval, caller string) error {
	if a == nil {
		return ErrNotApproved
	}
	if len(a.Grant.Callers) == 0 {
		return nil
	}
	for _, c := range a.Grant.Callers {
		if c == caller {
			return nil
		}
	}
	return &callerError{caller: caller, skill: a.Skill}
}

// callerError is CheckCaller's refusal, in one sentence (the reason's words would
// repeat it: "x may not call y: caller not allowed (CALLER_NOT_ALLOWED)"). Who is
// admitted is not said: the caller may be anyone who reached a door.
type callerError struct{ caller, skill string }

func (e *callerError) Error() string {
	return e.caller + " may not call " + e.skill + ": the approval's callers do not list it"
}

func (e *callerError) Is(target error) bool { return target == ErrCallerNotAllowed }

func setOf(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// CheckHome refuses file grants that would hand the skill skillbox's own state: a host
// directory that is home ($SKILLBOX_HOME), holds it (an operator's home directory holds
// ~/.skillbox, the default) or is inside it. Read-write, the skill could write approvals,
// trust.yaml or native code into the compile cache the server runs; read-only, it could
// read the audit log. Paths are compared as given and with symbolic links resolved; at
// prefixes each field path, as for CheckGrant.
func CheckHome(files []File, home, at string) error {
	if home == "" || len(files) == 0 {
		return nil
	}
	homes := pathForms(home)
	var probs []string
	for i, f := range files {
		p := fmt.Sprintf("files[%d].host", i)
		if at != "" {
			p = at + "." + p
		}
		for _, h := range pathForms(f.Host) {
			var why string
			for _, hm := range homes {
				switch {
				case hm == h:
					why = "is skillbox's own directory ($SKILLBOX_HOME)"
				case within(hm, h):
					why = "holds skillbox's own directory " + home + " ($SKILLBOX_HOME)"
				case within(h, hm):
					why = "is inside skillbox's own directory " + home + " ($SKILLBOX_HOME)"
				}
				if why != "" {
					break
				}
			}
			if why != "" {
				probs = append(probs, fmt.Sprintf("%s: %s %s: the skill could read the audit log, and through a read-write grant rewrite approvals, trust.yaml and the compile cache the server runs; grant a directory that does not hold it", p, f.Host, why))
				break
			}
		}
	}
	if len(probs) > 0 {
		return &GrantError{probs}
	}
	return nil
}

// pathForms is p made absolute and clean, and, if different, with its symbolic links
// resolved.
func pathForms(p string) []string {
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	out := []string{p}
	if r, err := filepath.EvalSymlinks(p); err == nil && r != p {
		out = append(out, r)
	}
	return out
}

// nested reports whether p is dir or inside it, as written or with links resolved.
func nested(p, dir string) bool {
	for _, x := range pathForms(p) {
		for _, d := range pathForms(dir) {
			if within(x, d) {
				return true
			}
		}
	}
	return false
}

// within reports whether p is dir or inside it (both absolute and clean).
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
