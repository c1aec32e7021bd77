// Package manifest holds skill.yaml as Go types: a strict parser, validation that
// reports every problem with its field path, and the JSON Schemas of a skill's input
// and output compiled at load time.
package manifest

import (
	"strings"
	"time"
)

// APIVersion is the only manifest apiVersion this build understands.
const APIVersion = "skillbox/v1"

// Manifest is a parsed, validated skill.yaml.
type Manifest struct {
	APIVersion   string         `yaml:"apiVersion" json:"apiVersion"`
	Name         string         `yaml:"name" json:"name"`
	Version      string         `yaml:"version" json:"version"`
	Description  string         `yaml:"description" json:"description"`
	Sandbox      Sandbox        `yaml:"sandbox" json:"sandbox"`
	Input        map[string]any `yaml:"input" json:"input"`
	Output       map[string]any `yaml:"output" json:"output"`
	Capabilities Capabilities   `yaml:"capabilities" json:"capabilities"`
	Limits       Limits         `yaml:"limits" json:"limits"`

	schemas *schemas // compiled Input and Output; set by Parse (see schema.go)
}

// Sandbox says how the skill's code runs: exactly one of Wasm or Container is set.
type Sandbox struct {
	Wasm      *WasmSandbox      `yaml:"wasm,omitempty" json:"wasm,omitempty"`
	Container *ContainerSandbox `yaml:"container,omitempty" json:"container,omitempty"`
}

// Sandbox kinds: the key a sandbox is registered under and a skill is run by.
const (
	KindWasm      = "wasm"
	KindContainer = "container"
)

// Kind is the kind of sandbox the skill's code needs (KindWasm or KindContainer), or
// "" when neither section is set (never for a parsed manifest).
func (s Sandbox) Kind() string {
	switch {
	case s.Wasm != nil:
		return KindWasm
	case s.Container != nil:
		return KindContainer
	}
	return ""
}

// WasmSandbox names a WASI preview1 module inside the package.
type WasmSandbox struct {
	Module string `yaml:"module" json:"module"`
	SHA256 string `yaml:"sha256" json:"sha256"` // lowercase hex of the module bytes
	// Kind is WasmCommand or WasmReactor as the author declares it, or "" when the
	// manifest leaves it to the module's exports. A declared kind the module does
	// not match is refused at install.
	Kind string `yaml:"kind,omitempty" json:"kind,omitempty"`
}

// Kinds of wasm module (sandbox.wasm.kind).
const (
	WasmCommand = "command" // exports _start: a fresh instance per call
	WasmReactor = "reactor" // exports _initialize and skillbox_handle: initialised once, reset after each call
)

// ContainerSandbox names a container image: a docker-save tarball inside the package or
// a registry reference pinned by digest.
type ContainerSandbox struct {
	Image   string   `yaml:"image" json:"image"`
	ID      string   `yaml:"id" json:"id"` // sha256:… image ID checked after loading
	Command []string `yaml:"command,omitempty" json:"command,omitempty"`
}

// FromRegistry reports whether Image is a registry reference (repo@sha256:…, pulled
// and checked against ID) rather than a docker-save tarball inside the package.
func (c *ContainerSandbox) FromRegistry() bool { return strings.Contains(c.Image, "@") }

// Capabilities is everything the skill may do; what is not listed is denied.
type Capabilities struct {
	Network []Origin    `yaml:"network,omitempty" json:"network,omitempty"`
	Files   []FileGrant `yaml:"files,omitempty" json:"files,omitempty"`
	Env     []string    `yaml:"env,omitempty" json:"env,omitempty"`
	// Secrets are the plain secrets: names whose values are handed to the skill as env
	// values, so the skill can read them and send them anywhere it can reach.
	Secrets []string `yaml:"secrets,omitempty" json:"secrets,omitempty"`
	// Brokered are the secrets written as objects in capabilities.secrets: added by
	// skillbox at egress to requests for their origins, never handed to the skill.
	Brokered []BrokeredSecret `yaml:"-" json:"brokered,omitempty"`
}

// BrokeredSecret is a secret the skill uses without seeing it: skillbox sets Header to
// Format with the value in place of "{}" on requests to Origins (each one of the
// skill's capabilities.network origins).
type BrokeredSecret struct {
	Name    string   `yaml:"name" json:"name"`
	Origins []Origin `yaml:"origins" json:"origins"`
	Header  string   `yaml:"header" json:"header"` // canonical form, e.g. "Authorization"
	Format  string   `yaml:"format" json:"format"` // holds "{}" once
}

// MarshalYAML writes capabilities as skill.yaml spells them: plain and brokered
// secrets in the one secrets list.
func (c Capabilities) MarshalYAML() (any, error) {
	type out struct {
		Network []Origin    `yaml:"network,omitempty"`
		Files   []FileGrant `yaml:"files,omitempty"`
		Env     []string    `yaml:"env,omitempty"`
		Secrets []any       `yaml:"secrets,omitempty"`
	}
	o := out{Network: c.Network, Files: c.Files, Env: c.Env}
	for _, s := range c.Secrets {
		o.Secrets = append(o.Secrets, s)
	}
	for _, b := range c.Brokered {
		o.Secrets = append(o.Secrets, b)
	}
	return o, nil
}

// DefaultSecretHeader and DefaultSecretFormat are a brokered secret's header and
// format when the manifest does not say.
const (
	DefaultSecretHeader = "Authorization"
	DefaultSecretFormat = "{}"
)

// HeaderValue is the header value that carries value: Format with "{}" replaced.
func (b BrokeredSecret) HeaderValue(value string) string {
	return strings.Replace(b.Format, "{}", value, 1)
}

// SecretNames are the names of every secret the manifest asks for, plain then brokered.
func (c Capabilities) SecretNames() []string {
	out := append([]string(nil), c.Secrets...)
	for _, b := range c.Brokered {
		out = append(out, b.Name)
	}
	return out
}

// BrokeredNamed is the brokered secret called name, if the manifest declares one.
func (c Capabilities) BrokeredNamed(name string) (BrokeredSecret, bool) {
	for _, b := range c.Brokered {
		if b.Name == name {
			return b, true
		}
	}
	return BrokeredSecret{}, false
}

// Origin is an outbound origin, scheme://host[:port]. Host is lowercase ASCII (IDNs in
// punycode); Wildcard means any one or more labels in front of Host ("*.example.com"
// is Host "example.com", Wildcard true). Port is always set (80/443 by default).
type Origin struct {
	Scheme   string
	Host     string
	Port     int
	Wildcard bool
}

// Access is how a granted file path may be used.
type Access string

// The two file access modes.
const (
	AccessRead      Access = "read"
	AccessReadWrite Access = "read-write"
)

// FileGrant is a path the skill sees (absolute, clean) and how it may use it.
type FileGrant struct {
	Path   string `yaml:"path" json:"path"`
	Access Access `yaml:"access" json:"access"`
}

// Limits is the most one call may use. Zero means "not set" before defaults apply;
// after Parse every field holds a value (see Defaults).
type Limits struct {
	Timeout  Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	Memory   Size     `yaml:"memory,omitempty" json:"memory,omitempty"`
	Output   Size     `yaml:"output,omitempty" json:"output,omitempty"`
	CPU      float64  `yaml:"cpu,omitempty" json:"cpu,omitempty"`
	Requests int      `yaml:"requests,omitempty" json:"requests,omitempty"`
}

// Size is a byte count written as 64MiB, 512KiB, 1GB or a plain integer.
type Size int64

// Duration is a Go duration written as 10s, 1m30s, 500ms.
type Duration time.Duration
