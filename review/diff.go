package review

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/skillbox-dev/skillbox/manifest"
)

// Changes is what a proposed manifest asks beyond an approved one (Added*, Widened,
// Raised) and, for information, what it no longer asks (Removed*, Narrowed, Lowered).
// Origins compare exactly: a new origin covered by an approved wildcard still shows.
type Changes struct {
	FromVersion    string     `json:"fromVersion"`
	ToVersion      string     `json:"toVersion"`
	Sandbox        *Change    `json:"sandbox,omitempty"`
	AddedOrigins   []string   `json:"addedOrigins,omitempty"`
	RemovedOrigins []string   `json:"removedOrigins,omitempty"`
	AddedFiles     []FileItem `json:"addedFiles,omitempty"`
	WidenedFiles   []Change   `json:"widenedFiles,omitempty"`
	NarrowedFiles  []Change   `json:"narrowedFiles,omitempty"`
	RemovedFiles   []FileItem `json:"removedFiles,omitempty"`
	AddedEnv       []string   `json:"addedEnv,omitempty"`
	RemovedEnv     []string   `json:"removedEnv,omitempty"`
	AddedSecrets   []string   `json:"addedSecrets,omitempty"`
	RemovedSecrets []string   `json:"removedSecrets,omitempty"`
	// NowPlain are secrets the approved version brokered and this one hands to the
	// skill (a widening); NowBrokered the other way.
	NowPlain    []string `json:"nowPlain,omitempty"`
	NowBrokered []string `json:"nowBrokered,omitempty"`
	// SecretOrigins are brokered secrets (in both versions) whose origins, header or
	// format changed.
	SecretOrigins []SecretOriginsChange `json:"secretOrigins,omitempty"`
	RaisedLimits  []LimitChange         `json:"raisedLimits,omitempty"`
	LoweredLimits []LimitChange         `json:"loweredLimits,omitempty"`
	// What agents see changed, though the skill asks for nothing more: the tool's
	// description and its input and output schemas (an API change for agents).
	Description  *Change `json:"description,omitempty"`
	InputSchema  bool    `json:"inputSchemaChanged,omitempty"`
	OutputSchema bool    `json:"outputSchemaChanged,omitempty"`
}

// SecretOriginsChange is a brokered secret sent to more (Added) or fewer (Removed)
// origins, in another header, or with another format (where in the header's value
// the secret goes, e.g. "Bearer {}" to "{}"; Format.Name is the new header). A new
// header or format asks more.
type SecretOriginsChange struct {
	Name    string   `json:"name"`
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	Header  *Change  `json:"header,omitempty"`
	Format  *Change  `json:"format,omitempty"`
}

// Change is a value that changed; Name says which (a file path, or empty).
type Change struct {
	Name string `json:"name,omitempty"`
	From string `json:"from"`
	To   string `json:"to"`
}

// LimitChange is a limit that moved.
type LimitChange struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Diff compares proposed with approved.
func Diff(approved, proposed *manifest.Manifest) Changes {
	c := Changes{FromVersion: approved.Version, ToVersion: proposed.Version}
	if a, p := Describe(approved).Sandbox, Describe(proposed).Sandbox; a != p {
		c.Sandbox = &Change{From: a, To: p}
	}
	c.AddedOrigins, c.RemovedOrigins = setDiff(origins(approved), origins(proposed))
	c.AddedEnv, c.RemovedEnv = setDiff(approved.Capabilities.Env, proposed.Capabilities.Env)
	c.AddedSecrets, c.RemovedSecrets = setDiff(approved.Capabilities.SecretNames(), proposed.Capabilities.SecretNames())
	for _, name := range proposed.Capabilities.SecretNames() {
		was, wasBrokered := approved.Capabilities.BrokeredNamed(name)
		now, nowBrokered := proposed.Capabilities.BrokeredNamed(name)
		wasPlain := slices.Contains(approved.Capabilities.Secrets, name)
		switch {
		case wasBrokered && !nowBrokered:
			c.NowPlain = append(c.NowPlain, name)
		case wasPlain && nowBrokered:
			c.NowBrokered = append(c.NowBrokered, name)
		case wasBrokered && nowBrokered:
			sc := SecretOriginsChange{Name: name}
			sc.Added, sc.Removed = setDiff(originStrings(was.Origins), originStrings(now.Origins))
			if was.Header != now.Header {
				sc.Header = &Change{From: was.Header, To: now.Header}
			}
			if was.Format != now.Format {
				sc.Format = &Change{Name: now.Header, From: was.Format, To: now.Format}
			}
			if len(sc.Added)+len(sc.Removed) > 0 || sc.Header != nil || sc.Format != nil {
				c.SecretOrigins = append(c.SecretOrigins, sc)
			}
		}
	}

	was := map[string]manifest.Access{}
	for _, f := range approved.Capabilities.Files {
		was[f.Path] = f.Access
	}
	now := map[string]bool{}
	for _, f := range proposed.Capabilities.Files {
		now[f.Path] = true
		old, ok := was[f.Path]
		switch {
		case !ok:
			c.AddedFiles = append(c.AddedFiles, FileItem{Path: f.Path, Access: string(f.Access)})
		case old == manifest.AccessRead && f.Access == manifest.AccessReadWrite:
			c.WidenedFiles = append(c.WidenedFiles, Change{Name: f.Path, From: string(old), To: string(f.Access)})
		case old == manifest.AccessReadWrite && f.Access == manifest.AccessRead:
			c.NarrowedFiles = append(c.NarrowedFiles, Change{Name: f.Path, From: string(old), To: string(f.Access)})
		}
	}
	for _, f := range approved.Capabilities.Files {
		if !now[f.Path] {
			c.RemovedFiles = append(c.RemovedFiles, FileItem{Path: f.Path, Access: string(f.Access)})
		}
	}

	a, p := approved.Limits, proposed.Limits
	limit := func(name string, from, to float64, fs, ts string) {
		switch {
		case to > from:
			c.RaisedLimits = append(c.RaisedLimits, LimitChange{name, fs, ts})
		case to < from:
			c.LoweredLimits = append(c.LoweredLimits, LimitChange{name, fs, ts})
		}
	}
	limit("timeout", float64(a.Timeout), float64(p.Timeout), a.Timeout.String(), p.Timeout.String())
	limit("memory", float64(a.Memory), float64(p.Memory), a.Memory.String(), p.Memory.String())
	limit("output", float64(a.Output), float64(p.Output), a.Output.String(), p.Output.String())
	limit("cpu", a.CPU, p.CPU, fmt.Sprintf("%g", a.CPU), fmt.Sprintf("%g", p.CPU))
	limit("requests", float64(a.Requests), float64(p.Requests), fmt.Sprint(a.Requests), fmt.Sprint(p.Requests))

	if approved.Description != proposed.Description {
		c.Description = &Change{From: approved.Description, To: proposed.Description}
	}
	c.InputSchema = !sameJSON(approved.Input, proposed.Input)
	c.OutputSchema = !sameJSON(approved.Output, proposed.Output)
	return c
}

// sameJSON compares two schemas as JSON values (encoding/json sorts map keys).
func sameJSON(a, b map[string]any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// AsksMore reports whether proposed asks for anything approved did not grant.
func (c Changes) AsksMore() bool {
	for _, s := range c.SecretOrigins {
		if len(s.Added) > 0 || s.Header != nil || s.Format != nil {
			return true
		}
	}
	return c.Sandbox != nil || len(c.AddedOrigins)+len(c.AddedFiles)+len(c.WidenedFiles)+
		len(c.AddedEnv)+len(c.AddedSecrets)+len(c.NowPlain)+len(c.RaisedLimits) > 0
}

// Empty reports whether nothing changed at all (versions aside).
func (c Changes) Empty() bool {
	return !c.AsksMore() && len(c.RemovedOrigins)+len(c.NarrowedFiles)+len(c.RemovedFiles)+
		len(c.RemovedEnv)+len(c.RemovedSecrets)+len(c.NowBrokered)+len(c.SecretOrigins)+len(c.LoweredLimits) == 0 &&
		!c.APIChanged()
}

// APIChanged reports whether what agents read of the tool changed: its description
// or its schemas.
func (c Changes) APIChanged() bool { return c.Description != nil || c.InputSchema || c.OutputSchema }

// Text renders the changes, asks first ("+" new, "^" widened or raised), then
// removals ("-", "v").
func (c Changes) Text() string {
	var b strings.Builder
	c.writeText(&b)
	return b.String()
}

// Items renders the changes as Text does, without its heading: for a caller that
// has already said what they are compared with. Empty when there are none.
func (c Changes) Items() string {
	var b strings.Builder
	c.writeItems(&b)
	return b.String()
}

func (c Changes) writeText(b *strings.Builder) {
	fmt.Fprintf(b, "Changes since the approved version %s:\n", c.FromVersion)
	if c.Empty() {
		b.WriteString("  none\n")
		return
	}
	c.writeItems(b)
}

func (c Changes) writeItems(b *strings.Builder) {
	if c.Sandbox != nil {
		fmt.Fprintf(b, "  ^ sandbox %s (was %s)\n", c.Sandbox.To, c.Sandbox.From)
	}
	for _, o := range c.AddedOrigins {
		fmt.Fprintf(b, "  + connect to %s\n", o)
	}
	for _, f := range c.AddedFiles {
		fmt.Fprintf(b, "  + files %s (%s)\n", f.Path, f.Access)
	}
	for _, f := range c.WidenedFiles {
		fmt.Fprintf(b, "  ^ files %s: %s -> %s\n", f.Name, f.From, f.To)
	}
	for _, e := range c.AddedEnv {
		fmt.Fprintf(b, "  + env %s\n", e)
	}
	for _, s := range c.AddedSecrets {
		fmt.Fprintf(b, "  + secret %s\n", s)
	}
	for _, s := range c.NowPlain {
		fmt.Fprintf(b, "  ^ secret %s: now handed to the skill (was brokered): %s\n", s, PlainSecretRisk)
	}
	for _, s := range c.SecretOrigins {
		for _, o := range s.Added {
			fmt.Fprintf(b, "  + secret %s sent to %s\n", s.Name, o)
		}
		if s.Header != nil {
			fmt.Fprintf(b, "  ^ secret %s sent as %s (was %s)\n", s.Name, s.Header.To, s.Header.From)
		}
		if s.Format != nil {
			fmt.Fprintf(b, "  ^ secret %s sent as %s: %q -> %q\n", s.Name, s.Format.Name, s.Format.From, s.Format.To)
		}
	}
	for _, l := range c.RaisedLimits {
		fmt.Fprintf(b, "  ^ limit %s: %s -> %s\n", l.Name, l.From, l.To)
	}
	for _, o := range c.RemovedOrigins {
		fmt.Fprintf(b, "  - connect to %s\n", o)
	}
	for _, f := range c.RemovedFiles {
		fmt.Fprintf(b, "  - files %s (%s)\n", f.Path, f.Access)
	}
	for _, f := range c.NarrowedFiles {
		fmt.Fprintf(b, "  v files %s: %s -> %s\n", f.Name, f.From, f.To)
	}
	for _, e := range c.RemovedEnv {
		fmt.Fprintf(b, "  - env %s\n", e)
	}
	for _, s := range c.RemovedSecrets {
		fmt.Fprintf(b, "  - secret %s\n", s)
	}
	for _, s := range c.NowBrokered {
		fmt.Fprintf(b, "  v secret %s: now brokered (was handed to the skill)\n", s)
	}
	for _, s := range c.SecretOrigins {
		for _, o := range s.Removed {
			fmt.Fprintf(b, "  - secret %s sent to %s\n", s.Name, o)
		}
	}
	for _, l := range c.LoweredLimits {
		fmt.Fprintf(b, "  v limit %s: %s -> %s\n", l.Name, l.From, l.To)
	}
	if c.Description != nil {
		fmt.Fprintf(b, "  ~ description (what agents read to choose the tool): %q (was %q)\n", c.Description.To, c.Description.From)
	}
	if c.InputSchema {
		b.WriteString("  ~ input schema changed: agents must send other arguments\n")
	}
	if c.OutputSchema {
		b.WriteString("  ~ output schema changed: agents get another result shape\n")
	}
}

func origins(m *manifest.Manifest) []string { return originStrings(m.Capabilities.Network) }

func originStrings(os []manifest.Origin) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = o.String()
	}
	return out
}

// setDiff returns what is in b but not a, and in a but not b, each sorted.
func setDiff(a, b []string) (added, removed []string) {
	in := func(xs []string) map[string]bool {
		m := map[string]bool{}
		for _, x := range xs {
			m[x] = true
		}
		return m
	}
	ia, ib := in(a), in(b)
	for x := range ib {
		if !ia[x] {
			added = append(added, x)
		}
	}
	for x := range ia {
		if !ib[x] {
			removed = append(removed, x)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	return added, removed
}
