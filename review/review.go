// Package review turns a manifest into what an operator reads before granting it: what
// the skill can reach, touch and receive, its limits, the risks worth a second look,
// and what a new version asks beyond the approved one.
package review

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/manifest"
)

// Thresholds above which a limit earns a risk note.
const (
	highTimeout  = manifest.Duration(time.Minute)
	highMemory   = manifest.Size(512 << 20)
	highOutput   = manifest.Size(16 << 20)
	highCPU      = 2.0
	highRequests = 100
)

// Report is a skill described for an operator. Signer and the digests are filled in by
// callers that verified them; empty Signer renders as "unsigned".
type Report struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Description string `json:"description"`
	Sandbox     string `json:"sandbox"` // e.g. "wasm module module.wasm"
	// WasmKind is a wasm module's kind: "command" (a fresh instance per call) or
	// "reactor" (initialised once, reset after every call); "" when unknown.
	WasmKind       string       `json:"wasmKind,omitempty"`
	Signer         string       `json:"signer"`
	ManifestDigest string       `json:"manifestDigest,omitempty"`
	CodeDigest     string       `json:"codeDigest,omitempty"`
	Network        []OriginItem `json:"network"`
	Files          []FileItem   `json:"files"`
	Env            []string     `json:"env"`
	// Secrets are the plain secrets: the skill gets their values.
	Secrets []string `json:"secrets"`
	// Brokered are the secrets skillbox adds at egress; the skill never sees them.
	Brokered []BrokeredItem `json:"brokered"`
	Limits   []LimitItem    `json:"limits"`
	// Risks collects every note, prefixed with what it is about.
	Risks   []string `json:"risks"`
	Changes *Changes `json:"changes,omitempty"`
}

// OriginItem is one outbound origin and what to notice about it.
type OriginItem struct {
	Origin string   `json:"origin"`
	Notes  []string `json:"notes,omitempty"`
}

// BrokeredItem is one brokered secret: where its value may be sent, and how.
type BrokeredItem struct {
	Name    string   `json:"name"`
	Origins []string `json:"origins"`
	Header  string   `json:"header"`
	Format  string   `json:"format"`
}

// PlainSecretRisk is what review says of a plain secret.
const PlainSecretRisk = "the skill can read this value and send it anywhere it can reach"

// Note says where a brokered secret goes.
func (b BrokeredItem) Note() string {
	return fmt.Sprintf("sent only to %s as %s, never visible to the skill", strings.Join(b.Origins, ", "), b.Header)
}

// FileItem is one guest path, its access mode and notes.
type FileItem struct {
	Path   string   `json:"path"`
	Access string   `json:"access"`
	Notes  []string `json:"notes,omitempty"`
}

// LimitItem is one per-call limit.
type LimitItem struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Note  string `json:"note,omitempty"`
}

// Unsigned is how an empty Signer reads.
const Unsigned = "unsigned"

// Describe builds the report for m. It does not check signatures or digests.
func Describe(m *manifest.Manifest) Report {
	r := Report{
		Name: m.Name, Version: m.Version, Description: strings.TrimSpace(m.Description),
		Signer: Unsigned, Network: []OriginItem{}, Files: []FileItem{},
		Env: append([]string{}, m.Capabilities.Env...), Secrets: append([]string{}, m.Capabilities.Secrets...),
		Brokered: []BrokeredItem{}, Risks: []string{},
	}
	switch {
	case m.Sandbox.Wasm != nil:
		r.Sandbox = "wasm module " + m.Sandbox.Wasm.Module
		r.WasmKind = m.Sandbox.Wasm.Kind
	case m.Sandbox.Container != nil:
		r.Sandbox = "container image " + m.Sandbox.Container.Image
	}
	for _, o := range m.Capabilities.Network {
		it := OriginItem{Origin: o.String(), Notes: originNotes(o)}
		r.Network = append(r.Network, it)
		for _, n := range it.Notes {
			r.Risks = append(r.Risks, it.Origin+": "+n)
		}
	}
	for _, f := range m.Capabilities.Files {
		it := FileItem{Path: f.Path, Access: string(f.Access)}
		if f.Access == manifest.AccessReadWrite {
			it.Notes = append(it.Notes, "read-write: can change and delete files there")
		}
		r.Files = append(r.Files, it)
		for _, n := range it.Notes {
			r.Risks = append(r.Risks, it.Path+": "+n)
		}
	}
	if len(r.Secrets) > 0 {
		r.Risks = append(r.Risks, fmt.Sprintf("secrets: receives %s: %s", strings.Join(r.Secrets, ", "), PlainSecretRisk))
	}
	for _, b := range m.Capabilities.Brokered {
		it := BrokeredItem{Name: b.Name, Header: b.Header, Format: b.Format}
		for _, o := range b.Origins {
			it.Origins = append(it.Origins, o.String())
			if o.Scheme == "http" {
				r.Risks = append(r.Risks, fmt.Sprintf("secret %s: sent over plain http to %s, where it can be read on the way", b.Name, o))
			}
			if o.Wildcard {
				r.Risks = append(r.Risks, fmt.Sprintf("secret %s: sent to any host under %s", b.Name, o.Host))
			}
		}
		r.Brokered = append(r.Brokered, it)
	}
	l := m.Limits
	add := func(name, value string, high bool, note string) {
		it := LimitItem{Name: name, Value: value}
		if high {
			it.Note = note
			r.Risks = append(r.Risks, "limit "+name+" "+value+": "+note)
		}
		r.Limits = append(r.Limits, it)
	}
	add("timeout", l.Timeout.String(), l.Timeout > highTimeout, "over "+highTimeout.String())
	add("memory", l.Memory.String(), l.Memory > highMemory, "over "+highMemory.String())
	add("output", l.Output.String(), l.Output > highOutput, "over "+highOutput.String())
	if m.Sandbox.Container != nil {
		add("cpu", fmt.Sprintf("%g", l.CPU), l.CPU > highCPU, fmt.Sprintf("over %g cores", highCPU))
	}
	if len(m.Capabilities.Network) > 0 {
		add("requests", fmt.Sprint(l.Requests), l.Requests > highRequests, fmt.Sprintf("over %d requests a call", highRequests))
	}
	return r
}

func originNotes(o manifest.Origin) []string {
	var notes []string
	if o.Wildcard {
		notes = append(notes, "wildcard: any host under "+o.Host)
	}
	if o.Scheme == "http" {
		notes = append(notes, "plain http: traffic can be read and changed on the way")
	}
	if a, ok := o.IP(); ok {
		switch {
		case a.IsLoopback():
			notes = append(notes, "loopback address: reaches services on the host itself")
		case a.IsPrivate():
			notes = append(notes, "private network address")
		case a.IsLinkLocalUnicast():
			notes = append(notes, "link-local address (cloud metadata services live here)")
		case a.IsUnspecified() || a.IsMulticast():
			notes = append(notes, "unusual address")
		default:
			notes = append(notes, "IP address literal")
		}
	} else if o.Host == "localhost" || strings.HasSuffix(o.Host, ".localhost") {
		notes = append(notes, "localhost: reaches services on the host itself")
	} else if strings.HasSuffix(o.Host, ".internal") || strings.HasSuffix(o.Host, ".local") {
		notes = append(notes, "internal host name")
	}
	return notes
}

// JSON renders the report for machines, indented.
func (r Report) JSON() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

// Text renders the report for a person: changes first, then what the skill can do,
// its limits and the risk notes.
func (r Report) Text() string {
	var b strings.Builder
	r.WriteText(&b)
	return b.String()
}

// WriteText writes Text to w.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s\n", r.Name, r.Version, oneLine(r.Description))
	signer := r.Signer
	if signer == "" {
		signer = Unsigned
	}
	fmt.Fprintf(&b, "  signer:   %s\n", signer)
	if r.ManifestDigest != "" {
		fmt.Fprintf(&b, "  manifest: %s\n", r.ManifestDigest)
	}
	code := r.Sandbox
	if r.CodeDigest != "" {
		code += " " + r.CodeDigest
	}
	fmt.Fprintf(&b, "  code:     %s\n", code)
	switch r.WasmKind {
	case manifest.WasmCommand:
		b.WriteString("  kind:     command: a fresh instance for every call\n")
	case manifest.WasmReactor:
		b.WriteString("  kind:     reactor: initialised once, reset to that state after every call\n")
	}
	if r.Changes != nil && !r.Changes.Empty() {
		b.WriteString("\n")
		r.Changes.writeText(&b)
	}
	b.WriteString("\nIt can:\n")
	n := 0
	for _, o := range r.Network {
		fmt.Fprintf(&b, "  connect to %s\n", o.Origin)
		n++
	}
	for _, f := range r.Files {
		verb := "read"
		if f.Access == string(manifest.AccessReadWrite) {
			verb = "read and write"
		}
		fmt.Fprintf(&b, "  %s files under %s\n", verb, f.Path)
		n++
	}
	if len(r.Env) > 0 {
		fmt.Fprintf(&b, "  see environment variables %s\n", strings.Join(r.Env, ", "))
		n++
	}
	if len(r.Secrets) > 0 {
		fmt.Fprintf(&b, "  receive secrets %s (%s)\n", strings.Join(r.Secrets, ", "), PlainSecretRisk)
		n++
	}
	for _, s := range r.Brokered {
		fmt.Fprintf(&b, "  use secret %s: %s\n", s.Name, s.Note())
		n++
	}
	if n == 0 {
		b.WriteString("  nothing but compute on its input: no network, files, environment or secrets\n")
	}
	var lims []string
	for _, l := range r.Limits {
		lims = append(lims, l.Name+" "+l.Value)
	}
	fmt.Fprintf(&b, "\nLimits per call: %s\n", strings.Join(lims, ", "))
	if len(r.Risks) > 0 {
		b.WriteString("\nRisk notes:\n")
		for _, x := range r.Risks {
			fmt.Fprintf(&b, "  ! %s\n", x)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
