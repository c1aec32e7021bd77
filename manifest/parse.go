package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/textproto"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/skillbox-dev/skillbox/internal/strictyaml"
)

// Defaults applied by Parse when a limit is absent, and the bounds a manifest may ask.
// The operator and the caller can only lower these.
const (
	DefaultTimeout  = Duration(10 * time.Second)
	DefaultMemory   = Size(64 << 20)
	DefaultOutput   = Size(1 << 20)
	DefaultCPU      = 1.0
	DefaultRequests = 20 // only when network is granted; 0 otherwise

	MaxTimeout         = Duration(15 * time.Minute)
	MinMemory          = Size(1 << 20)
	MinContainerMemory = Size(6 << 20) // Docker refuses less
	MaxWasmMemory      = Size(4 << 30) // wasm32 address space
	MaxContainerMemory = Size(64 << 30)
	MaxOutput          = Size(64 << 20)
	MaxCPU             = 64.0
	MaxRequests        = 10000

	// MaxManifestBytes bounds skill.yaml itself.
	MaxManifestBytes = 1 << 20
	// MaxDescription bounds the description, in bytes.
	MaxDescription = 4096

	// MinCPU is the smallest CPU budget, Docker's floor: a CFS quota of 1 ms per 100 ms
	// period. Below it the quota rounds to zero, which the kernel reads as no quota at
	// all, so a smaller budget would mean an unlimited one.
	MinCPU = 0.01

	// MaxSchemaDepth bounds how deeply an input or output schema nests (mappings and
	// lists, the schema itself being level 1), and MaxSchemaBytes its size as JSON.
	// Compiling a schema costs far more than linear time in its depth (a schema nested
	// 1,600 levels took 36 s) and about 30 µs per byte even when flat, and every start
	// parses installed manifests again: these bound one parse to a fraction of a second.
	MaxSchemaDepth = 64
	MaxSchemaBytes = 64 << 10
	// maxSchemaNodes bounds the walk that measures depth (aliases can make a small
	// document a large tree).
	maxSchemaNodes = 50000
)

var (
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	envRE    = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	semverRE = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
	repoRE   = regexp.MustCompile(`^[a-z0-9]+(?:[._:/-][a-z0-9]+)*$`)
)

// LoadFile reads and parses a skill.yaml, returning the manifest and the exact bytes
// (what is signed and digested).
func LoadFile(name string) (*Manifest, []byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxManifestBytes+1))
	if err != nil {
		return nil, nil, err
	}
	m, err := Parse(data)
	if err != nil {
		return nil, data, err
	}
	return m, data, nil
}

// Parse reads skill.yaml strictly: unknown fields, duplicate keys and wrong types are
// errors. It validates everything, fills in default limits, compiles the input and
// output schemas, and on failure returns a *Error listing every problem.
func Parse(data []byte) (*Manifest, error) { return ParseWith(data, nil) }

// SchemaChecks remembers input and output schemas that passed the check against
// their draft's metaschema, so that parsing the same schema again skips compiling the
// metaschema: 2-4 ms for draft 2020-12, most of what `skillbox run DIR` spends in
// skillbox itself. The schema is still compiled and every input and output still
// validated. Known reports a schema that passed before; Passed records one.
type SchemaChecks interface {
	Known(sum [32]byte) bool
	Passed(sum [32]byte)
}

// ParseWith is Parse remembering metaschema checks in checks (nil remembers none).
func ParseWith(data []byte, checks SchemaChecks) (*Manifest, error) {
	p := &parser{checks: checks}
	m := p.parse(data)
	if len(p.problems) > 0 {
		return nil, &Error{Problems: p.problems}
	}
	return m, nil
}

type parser struct {
	problems []Problem
	checks   SchemaChecks // nil: none
	// networkAsked is set when capabilities.network is present, valid or not, so a
	// broken network list does not also produce a "requests without network" problem.
	networkAsked bool
}

func (p *parser) add(path, format string, args ...any) {
	p.problems = append(p.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func join(parent, key string) string {
	if parent == "" {
		return key
	}
	if key == "" {
		return parent
	}
	return parent + "." + key
}

func index(parent string, i int) string { return parent + "[" + strconv.Itoa(i) + "]" }

func yamlMessage(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return strings.Join(te.Errors, "; ")
	}
	return strings.TrimPrefix(strings.ReplaceAll(err.Error(), "\n", "; "), "yaml: ")
}

func (p *parser) parse(data []byte) *Manifest {
	if len(data) > MaxManifestBytes {
		p.add("", "larger than %d bytes", MaxManifestBytes)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.add("", "empty document")
		} else {
			p.add("", "%s", strictyaml.SyntaxMessage(data, err))
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		p.add("", "more than one YAML document")
		return nil
	}
	root := deref(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = deref(root.Content[0])
	}
	f := p.mapping("", root, "apiVersion", "name", "version", "description", "sandbox", "input", "output", "capabilities", "limits")
	if f == nil {
		return nil
	}
	m := &Manifest{}
	if s, ok := p.str("apiVersion", f["apiVersion"], true); ok {
		if s != APIVersion {
			p.add("apiVersion", "%q: want %q", s, APIVersion)
		}
		m.APIVersion = s
	}
	if s, ok := p.str("name", f["name"], true); ok {
		if !nameRE.MatchString(s) {
			p.add("name", "%q: must match ^[a-z][a-z0-9-]{0,62}$ (lowercase letters, digits and hyphens, starting with a letter)", s)
		}
		m.Name = s
	}
	if s, ok := p.scalarText("version", f["version"]); ok {
		if !semverRE.MatchString(s) {
			p.add("version", "%q: not a semantic version (want MAJOR.MINOR.PATCH, e.g. 1.2.0)", s)
		}
		m.Version = s
	}
	if s, ok := p.str("description", f["description"], true); ok {
		switch {
		case strings.TrimSpace(s) == "":
			p.add("description", "must not be empty")
		case len(s) > MaxDescription:
			p.add("description", "longer than %d bytes", MaxDescription)
		}
		m.Description = s
	}
	p.sandbox(m, f["sandbox"])
	// Each schema is compiled once, here: compiling is the costly part of a parse.
	var s schemas
	m.Input, s.input = p.schema("input", f["input"])
	m.Output, s.output = p.schema("output", f["output"])
	p.capabilities(m, f["capabilities"])
	p.limits(m, f["limits"])
	if len(p.problems) > 0 {
		return nil
	}
	m.schemas = &s
	return m
}

// deref follows aliases so anchors work like copies.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// mapping checks n is a mapping, reports unknown and duplicate keys, and returns the
// known fields by key. It returns nil (after reporting) when n is not a mapping.
func (p *parser) mapping(path string, n *yaml.Node, known ...string) map[string]*yaml.Node {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		where := path
		p.add(where, "want a mapping, got %s", strictyaml.Describe(n))
		return nil
	}
	out := map[string]*yaml.Node{}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		key := k.Value
		if k.Kind != yaml.ScalarNode {
			p.add(path, "keys must be strings (line %d)", k.Line)
			continue
		}
		if line, dup := seen[key]; dup {
			p.add(join(path, key), "duplicate key (first at line %d)", line)
			continue
		}
		seen[key] = k.Line
		ok := false
		for _, kn := range known {
			if kn == key {
				ok = true
				break
			}
		}
		if !ok {
			p.add(join(path, strictyaml.Cut(key, maxTokenLen)), "unknown field (allowed: %s)", strings.Join(known, ", "))
			continue
		}
		out[key] = v
	}
	return out
}

// str reads a string scalar; a missing or null value is reported when required.
func (p *parser) str(path string, n *yaml.Node, required bool) (string, bool) {
	if isNull(n) {
		if required {
			p.add(path, "required")
		}
		return "", false
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		p.add(path, "want a string, got %s", strictyaml.Describe(n))
		return "", false
	}
	return n.Value, true
}

// scalarText reads any scalar as its text (a version written 1.2 parses as a number).
func (p *parser) scalarText(path string, n *yaml.Node) (string, bool) {
	if isNull(n) {
		p.add(path, "required")
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		p.add(path, "want a string, got %s", strictyaml.Describe(n))
		return "", false
	}
	return n.Value, true
}

func (p *parser) list(path string, n *yaml.Node) []*yaml.Node {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.add(path, "want a list, got %s", strictyaml.Describe(n))
		return nil
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		out[i] = deref(c)
	}
	return out
}

// packagePath checks a file name inside the package directory.
// CheckPackagePath reports whether s may name a file inside a package (a clean
// relative path that stays inside it), in the words Parse uses.
func CheckPackagePath(s string) error { return packagePath(s) }

func packagePath(s string) error {
	if s == "" || s == "." || strings.HasPrefix(s, "/") || strings.ContainsAny(s, "\\\x00") ||
		path.Clean(s) != s || s == ".." || strings.HasPrefix(s, "../") || len(s) > 255 {
		return fmt.Errorf("%q: must be a clean relative path inside the package", s)
	}
	return nil
}

func (p *parser) sandbox(m *Manifest, n *yaml.Node) {
	if isNull(n) {
		p.add("sandbox", "required: one of wasm or container")
		return
	}
	f := p.mapping("sandbox", n, "wasm", "container")
	if f == nil {
		return
	}
	w, c := f["wasm"], f["container"]
	switch {
	case w == nil && c == nil:
		p.add("sandbox", "want exactly one of wasm or container, got neither")
		return
	case w != nil && c != nil:
		p.add("sandbox", "want exactly one of wasm or container, got both")
		return
	}
	if w != nil {
		wf := p.mapping("sandbox.wasm", w, "module", "sha256", "kind")
		if wf == nil {
			return
		}
		ws := &WasmSandbox{}
		if s, ok := p.str("sandbox.wasm.module", wf["module"], true); ok {
			if err := packagePath(s); err != nil {
				p.add("sandbox.wasm.module", "%v", err)
			}
			ws.Module = s
		}
		if s, ok := p.str("sandbox.wasm.sha256", wf["sha256"], true); ok {
			switch {
			case s == "":
				p.add("sandbox.wasm.sha256", "empty (run skillbox pack to fill it in)")
			default:
				if _, err := ParseHexDigest(s); err != nil {
					p.add("sandbox.wasm.sha256", "%v", err)
				}
			}
			ws.SHA256 = s
		}
		if s, ok := p.str("sandbox.wasm.kind", wf["kind"], false); ok {
			switch s {
			case WasmCommand, WasmReactor:
			default:
				p.add("sandbox.wasm.kind", "%q is not a kind; want %s or %s", s, WasmCommand, WasmReactor)
			}
			ws.Kind = s
		}
		m.Sandbox.Wasm = ws
		return
	}
	cf := p.mapping("sandbox.container", c, "image", "id", "command")
	if cf == nil {
		return
	}
	cs := &ContainerSandbox{}
	if s, ok := p.str("sandbox.container.image", cf["image"], true); ok {
		if err := imageRef(s); err != nil {
			p.add("sandbox.container.image", "%v", err)
		}
		cs.Image = s
	}
	if s, ok := p.str("sandbox.container.id", cf["id"], true); ok {
		switch {
		case s == "":
			p.add("sandbox.container.id", "empty (run skillbox pack to fill it in)")
		default:
			if _, err := ParseDigest(s); err != nil {
				p.add("sandbox.container.id", "%v", err)
			}
		}
		cs.ID = s
	}
	if cmd := cf["command"]; !isNull(cmd) {
		items := p.list("sandbox.container.command", cmd)
		if cmd.Kind == yaml.SequenceNode && len(items) == 0 {
			p.add("sandbox.container.command", "must not be an empty list (omit it to use the image's entrypoint)")
		}
		for i, it := range items {
			if s, ok := p.str(index("sandbox.container.command", i), it, true); ok {
				if s == "" || strings.ContainsRune(s, 0) {
					p.add(index("sandbox.container.command", i), "must be a non-empty string")
				}
				cs.Command = append(cs.Command, s)
			}
		}
	}
	m.Sandbox.Container = cs
}

func imageRef(s string) error {
	if repo, digest, ok := strings.Cut(s, "@"); ok {
		if !repoRE.MatchString(repo) {
			return fmt.Errorf("%q: bad repository name %q", s, repo)
		}
		if _, err := ParseDigest(digest); err != nil {
			return fmt.Errorf("%q: a registry image must be pinned as repo@sha256:<64 lowercase hex digits>", s)
		}
		return nil
	}
	if !strings.HasSuffix(s, ".tar") {
		return fmt.Errorf("%q: want a .tar file inside the package (docker save) or repo@sha256:<64 hex digits>", s)
	}
	return packagePath(s)
}

// schema reads an input or output JSON Schema written in YAML and compiles it, after
// checking its depth and size (compiling is what an oversized schema makes slow).
func (p *parser) schema(path string, n *yaml.Node) (map[string]any, *jsonschema.Schema) {
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		p.add(path, "want a mapping (a JSON Schema object), got %s", strictyaml.Describe(n))
		return nil, nil
	}
	if msg := schemaShape(path, n); msg != "" {
		p.add(path, "%s", msg)
		return nil, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		p.add(path, "%s", yamlMessage(err))
		return nil, nil
	}
	v, err := jsonClean(v)
	if err != nil {
		p.add(path, "%v", err)
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		p.add(path, "not expressible as JSON: %v", err)
		return nil, nil
	}
	if len(b) > MaxSchemaBytes {
		p.add(path, "the schema is %d bytes as JSON; at most %d are allowed", len(b), MaxSchemaBytes)
		return nil, nil
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		p.add(path, "%v", err)
		return nil, nil
	}
	// Words first: the compiler would ignore an unknown keyword and words the rest in
	// its own terms (JSON pointers, its regexp wrapper).
	if probs := schemaWords(path, out); len(probs) > 0 {
		for _, pr := range probs {
			p.add(pr[0], "%s", pr[1])
		}
		return nil, nil
	}
	// A schema that passed its metaschema before (same place, same bytes) skips that
	// check; one that is refused is never recorded, so it is refused every time.
	var sum [32]byte
	known := false
	if p.checks != nil {
		sum = sha256.Sum256(append([]byte(path+"\x00"), b...))
		known = p.checks.Known(sum)
	}
	compiled, err := compileSchema(path, b, known)
	if err != nil {
		at, msg := schemaProblem(err)
		p.add(join(path, at), "%s", msg)
		return nil, nil
	}
	if p.checks != nil && !known {
		p.checks.Passed(sum)
	}
	return out, compiled
}

// schemaShape refuses a schema nested deeper than MaxSchemaDepth, before it is decoded
// or compiled, naming where the limit was crossed. It stops counting at maxSchemaNodes.
func schemaShape(path string, root *yaml.Node) string {
	type item struct {
		n      *yaml.Node
		depth  int
		parent *item
		step   string // ".key" or "[i]" from the parent
	}
	stack := []*item{{n: root, depth: 1}}
	for seen := 0; len(stack) > 0; seen++ {
		if seen > maxSchemaNodes {
			return fmt.Sprintf("the schema has more than %d parts; simplify it", maxSchemaNodes)
		}
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := deref(it.n)
		if n == nil || (n.Kind != yaml.MappingNode && n.Kind != yaml.SequenceNode) {
			continue
		}
		if it.depth > MaxSchemaDepth {
			var steps []string
			for x := it; x != nil; x = x.parent {
				steps = append(steps, x.step)
			}
			slices.Reverse(steps)
			return fmt.Sprintf("nested more than %d levels deep (at %s)", MaxSchemaDepth, wholeSteps(path, steps, maxPathLen))
		}
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				stack = append(stack, &item{c, it.depth + 1, it, "[" + strconv.Itoa(i) + "]"})
			}
			continue
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := strictyaml.Cut(deref(n.Content[i]).Value, maxTokenLen)
			stack = append(stack, &item{n.Content[i+1], it.depth + 1, it, "." + key})
		}
	}
	return ""
}

// wholeSteps joins path and steps (".key", "[i]"), stopping before the step that
// would pass limit bytes and marking the cut, so a name is never cut in half.
func wholeSteps(path string, steps []string, limit int) string {
	var b strings.Builder
	b.WriteString(path)
	for i, st := range steps {
		if b.Len()+len(st) > limit-len("…") {
			if i < len(steps) {
				b.WriteString("…")
			}
			break
		}
		b.WriteString(st)
	}
	return b.String()
}

// jsonClean checks a YAML-decoded value is plain JSON: string keys, finite numbers.
func jsonClean(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			c, err := jsonClean(e)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
		return x, nil
	case map[any]any:
		return nil, errors.New("mapping keys must be strings")
	case []any:
		for i, e := range x {
			c, err := jsonClean(e)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, errors.New("numbers must be finite")
		}
		return x, nil
	case time.Time:
		return nil, errors.New("timestamps are not JSON: quote them")
	case nil, bool, string, int, int64, uint64:
		return x, nil
	}
	return nil, fmt.Errorf("unsupported value %T", v)
}

func (p *parser) capabilities(m *Manifest, n *yaml.Node) {
	if isNull(n) {
		return
	}
	f := p.mapping("capabilities", n, "network", "files", "env", "secrets")
	if f == nil {
		return
	}
	p.networkAsked = !isNull(f["network"])
	firstOrigin := map[Origin]int{}
	for i, it := range p.list("capabilities.network", f["network"]) {
		at := index("capabilities.network", i)
		s, ok := p.str(at, it, true)
		if !ok {
			continue
		}
		o, err := ParseOrigin(s)
		if err != nil {
			p.add(at, "%v", err)
			continue
		}
		if j, dup := firstOrigin[o]; dup {
			p.add(at, "%q: same origin as capabilities.network[%d]", s, j)
			continue
		}
		firstOrigin[o] = i
		m.Capabilities.Network = append(m.Capabilities.Network, o)
	}
	type seenFile struct {
		path string
		at   int
	}
	var files []seenFile
	for i, it := range p.list("capabilities.files", f["files"]) {
		at := index("capabilities.files", i)
		ff := p.mapping(at, it, "path", "access")
		if ff == nil {
			continue
		}
		var g FileGrant
		pathOK := false
		if s, ok := p.str(at+".path", ff["path"], true); ok {
			g.Path = s
			switch {
			case !strings.HasPrefix(s, "/") || strings.ContainsRune(s, 0):
				p.add(at+".path", "%q: must be an absolute path", s)
			case path.Clean(s) != s:
				p.add(at+".path", "%q: must be a clean path (want %q)", s, path.Clean(s))
			case s == "/":
				p.add(at+".path", "\"/\": granting the whole filesystem is not allowed")
			default:
				pathOK = true
			}
		}
		if s, ok := p.str(at+".access", ff["access"], true); ok {
			g.Access = Access(s)
			if !g.Access.Valid() {
				p.add(at+".access", "%q: want read or read-write", s)
			}
		}
		if pathOK {
			for _, prev := range files {
				switch {
				case prev.path == g.Path:
					p.add(at+".path", "%q: duplicate of capabilities.files[%d]", g.Path, prev.at)
					pathOK = false
				case strings.HasPrefix(g.Path, prev.path+"/"):
					p.add(at+".path", "%q: inside capabilities.files[%d] (%q); grant one or the other", g.Path, prev.at, prev.path)
					pathOK = false
				case strings.HasPrefix(prev.path, g.Path+"/"):
					p.add(at+".path", "%q: contains capabilities.files[%d] (%q); grant one or the other", g.Path, prev.at, prev.path)
					pathOK = false
				}
				if !pathOK {
					break
				}
			}
			if pathOK {
				files = append(files, seenFile{g.Path, i})
			}
		}
		m.Capabilities.Files = append(m.Capabilities.Files, g)
	}
	envAt := map[string]string{}
	m.Capabilities.Env = p.names("capabilities.env", f["env"], envAt)
	p.secrets(m, f["secrets"], envAt)
}

// secrets reads capabilities.secrets: each entry a name (a plain secret, handed to the
// skill) or a mapping {name, origins, header, format} (brokered: added at egress).
// Names share seen with capabilities.env, so a name is one or the other.
func (p *parser) secrets(m *Manifest, n *yaml.Node, seen map[string]string) {
	const path = "capabilities.secrets"
	network := map[Origin]bool{}
	var allowed []string
	for _, o := range m.Capabilities.Network {
		network[o] = true
		allowed = append(allowed, o.String())
	}
	// Which brokered secret sets a header for an origin: two must not both set one.
	type headerAt struct {
		header string
		origin Origin
	}
	setBy := map[headerAt]string{}
	for i, it := range p.list(path, n) {
		at := index(path, i)
		if it.Kind != yaml.MappingNode {
			s, ok := p.str(at, it, true)
			if ok && p.secretName(at, s, seen) {
				m.Capabilities.Secrets = append(m.Capabilities.Secrets, s)
			}
			continue
		}
		f := p.mapping(at, it, "name", "origins", "header", "format")
		if f == nil {
			continue
		}
		b := BrokeredSecret{Header: DefaultSecretHeader, Format: DefaultSecretFormat}
		ok := true
		if s, got := p.str(at+".name", f["name"], true); got && p.secretName(at+".name", s, seen) {
			b.Name = s
		} else {
			ok = false
		}
		origins := p.list(at+".origins", f["origins"])
		if len(origins) == 0 {
			ok = false
			if isNull(f["origins"]) || f["origins"].Kind == yaml.SequenceNode {
				p.add(at+".origins", "required: the origins this secret may be sent to, among capabilities.network; for a secret handed to the skill write just its name")
			}
		}
		for j, on := range origins {
			oat := index(at+".origins", j)
			s, got := p.str(oat, on, true)
			if !got {
				ok = false
				continue
			}
			o, err := ParseOrigin(s)
			switch {
			case err != nil:
				p.add(oat, "%v", err)
			case !network[o] && len(allowed) == 0:
				p.add(oat, "%q: not among capabilities.network, which grants no origin", s)
			case !network[o]:
				p.add(oat, "%q: not among capabilities.network (allowed: %s)", s, strings.Join(allowed, ", "))
			case slices.Contains(b.Origins, o):
				p.add(oat, "%q: listed twice", s)
			default:
				b.Origins = append(b.Origins, o)
				continue
			}
			ok = false
		}
		if s, got := p.str(at+".header", f["header"], false); got {
			if err := checkSecretHeader(s); err != nil {
				p.add(at+".header", "%q: %v", strictyaml.Cut(s, maxTokenLen), err)
				ok = false
			} else {
				b.Header = textproto.CanonicalMIMEHeaderKey(s)
			}
		}
		if s, got := p.str(at+".format", f["format"], false); got {
			if err := checkSecretFormat(s); err != nil {
				p.add(at+".format", "%q: %v", strictyaml.Cut(s, maxTokenLen), err)
				ok = false
			} else {
				b.Format = s
			}
		}
		if !ok {
			continue
		}
		for _, o := range b.Origins {
			k := headerAt{b.Header, o}
			if prev, dup := setBy[k]; dup {
				p.add(at+".header", "%s for %s is already set by %s", b.Header, o, prev)
				ok = false
				break
			}
			setBy[k] = at
		}
		if ok {
			m.Capabilities.Brokered = append(m.Capabilities.Brokered, b)
		}
	}
}

// secretName checks an env or secret name and that it is not listed already.
func (p *parser) secretName(at, s string, seen map[string]string) bool {
	if !envRE.MatchString(s) {
		p.add(at, "%q: must match ^[A-Z_][A-Z0-9_]*$", strictyaml.Cut(s, maxTokenLen))
		return false
	}
	if prev, dup := seen[s]; dup {
		p.add(at, "%q: already listed at %s", s, prev)
		return false
	}
	seen[s] = at
	return true
}

// checkSecretHeader refuses a header a brokered secret may not be sent in: not an
// HTTP token, or one that belongs to a connection or a proxy, or that frames the
// request, rather than to the request itself.
func checkSecretHeader(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return errors.New("must be an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)")
		}
	}
	c := textproto.CanonicalMIMEHeaderKey(s)
	switch {
	case strings.HasPrefix(c, "Proxy-"):
		return errors.New("Proxy-* headers go to a proxy, not the origin")
	case slices.Contains(forbiddenSecretHeaders, c):
		return fmt.Errorf("%s belongs to the connection or the message framing; choose a request header such as Authorization", c)
	}
	return nil
}

// forbiddenSecretHeaders are the hop-by-hop headers, Host and the framing headers.
var forbiddenSecretHeaders = []string{
	"Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Host", "Content-Length",
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// checkSecretFormat refuses a format that does not hold the value exactly once or
// that could break out of its header line.
func checkSecretFormat(s string) error {
	if n := strings.Count(s, "{}"); n != 1 {
		return fmt.Errorf("must contain {} (where the value goes) exactly once, found %d", n)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' || c == 0 || (c < 0x20 && c != '\t') || c == 0x7f {
			return errors.New("must not contain line breaks or control characters")
		}
	}
	return nil
}

// names reads env or secret names; seen spans both lists so a name is one or the other.
func (p *parser) names(path string, n *yaml.Node, seen map[string]string) []string {
	var out []string
	for i, it := range p.list(path, n) {
		at := index(path, i)
		s, ok := p.str(at, it, true)
		if !ok {
			continue
		}
		if !envRE.MatchString(s) {
			p.add(at, "%q: must match ^[A-Z_][A-Z0-9_]*$", s)
			continue
		}
		if prev, dup := seen[s]; dup {
			p.add(at, "%q: already listed at %s", s, prev)
			continue
		}
		seen[s] = at
		out = append(out, s)
	}
	return out
}

func (p *parser) limits(m *Manifest, n *yaml.Node) {
	l := &m.Limits
	container := m.Sandbox.Container != nil
	networked := len(m.Capabilities.Network) > 0
	var f map[string]*yaml.Node
	if !isNull(n) {
		f = p.mapping("limits", n, "timeout", "memory", "output", "cpu", "requests")
	}
	if v := f["timeout"]; !isNull(v) {
		if s, ok := p.scalarText("limits.timeout", v); ok {
			d, err := ParseDuration(s)
			switch {
			case err != nil:
				p.add("limits.timeout", "%v", err)
			case d < Duration(time.Millisecond):
				p.add("limits.timeout", "%q: must be at least 1ms", s)
			case d > MaxTimeout:
				p.add("limits.timeout", "%q: at most %s", s, MaxTimeout)
			default:
				l.Timeout = d
			}
		}
	} else {
		l.Timeout = DefaultTimeout
	}
	minMem, maxMem := MinMemory, MaxWasmMemory
	if container {
		minMem, maxMem = MinContainerMemory, MaxContainerMemory
	}
	l.Memory = p.size("limits.memory", f["memory"], DefaultMemory, minMem, maxMem)
	l.Output = p.size("limits.output", f["output"], DefaultOutput, 1, MaxOutput)
	if v := f["cpu"]; !isNull(v) {
		if v.Kind != yaml.ScalarNode || (v.ShortTag() != "!!int" && v.ShortTag() != "!!float") {
			p.add("limits.cpu", "want a number of cores, got %s", strictyaml.Describe(v))
		} else if c, err := strconv.ParseFloat(v.Value, 64); err != nil || math.IsNaN(c) || c < MinCPU || c > MaxCPU {
			p.add("limits.cpu", "%s: want a number of cores from %g to %g", strictyaml.Cut(v.Value, maxTokenLen), MinCPU, MaxCPU)
		} else {
			l.CPU = c
		}
	} else {
		l.CPU = DefaultCPU
	}
	if v := f["requests"]; !isNull(v) {
		r, err := strconv.Atoi(v.Value)
		switch {
		case v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || err != nil:
			p.add("limits.requests", "want a whole number, got %s", strictyaml.Describe(v))
		case !p.networkAsked:
			p.add("limits.requests", "set, but capabilities.network grants no origin")
		case r < 1 || r > MaxRequests:
			p.add("limits.requests", "%d: want 1 to %d", r, MaxRequests)
		default:
			l.Requests = r
		}
	} else if networked {
		l.Requests = DefaultRequests
	}
}

func (p *parser) size(path string, n *yaml.Node, def, lo, hi Size) Size {
	if isNull(n) {
		return def
	}
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!str" && n.ShortTag() != "!!int") {
		p.add(path, "want a size such as 64MiB, got %s", strictyaml.Describe(n))
		return 0
	}
	s, err := ParseSize(n.Value)
	switch {
	case err != nil:
		p.add(path, "%v", err)
	case s < lo && s > 0 && strings.Trim(n.Value, "0123456789") == "":
		p.add(path, "%q is %s, below the %s minimum; write a unit (e.g. %s)", n.Value, s.Words(), lo.Words(), def)
	case s < lo:
		p.add(path, "%q is below the %s minimum", n.Value, lo.Words())
	case s > hi:
		p.add(path, "%q is above the %s maximum", n.Value, hi.Words())
	default:
		return s
	}
	return 0
}

// CheckName reports whether s is a valid skill name, ^[a-z][a-z0-9-]{0,62}$.
func CheckName(s string) error {
	if !nameRE.MatchString(s) {
		return fmt.Errorf("%q: a skill name must match ^[a-z][a-z0-9-]{0,62}$ (lowercase letters, digits and hyphens, starting with a letter)", s)
	}
	return nil
}

// CheckLowering checks limits an operator's grant or a caller asks for to lower a
// manifest's. A zero field does not lower and passes; anything else must be a budget a
// sandbox can enforce: never negative, never below the floors a manifest may ask
// (MinCPU, MinMemory or MinContainerMemory, 1ms), so that no value rounds to "no
// limit" further down. at prefixes each field path ("grant.limits", "limits").
func CheckLowering(l Limits, container bool, at string) error {
	p := &parser{}
	field := func(name string) string { return join(at, name) }
	if l.Timeout < 0 {
		p.add(field("timeout"), "must not be negative")
	} else if l.Timeout > 0 && l.Timeout < Duration(time.Millisecond) {
		p.add(field("timeout"), "%s: want at least 1ms (or leave it out to keep the manifest's)", l.Timeout)
	}
	minMem := MinMemory
	if container {
		minMem = MinContainerMemory
	}
	if l.Memory < 0 {
		p.add(field("memory"), "must not be negative")
	} else if l.Memory > 0 && l.Memory < minMem {
		p.add(field("memory"), "%s: want at least %s (or leave it out to keep the manifest's)", l.Memory, minMem)
	}
	if l.Output < 0 {
		p.add(field("output"), "must not be negative")
	}
	switch c := l.CPU; {
	case math.IsNaN(c) || math.IsInf(c, 0):
		p.add(field("cpu"), "want a number of cores")
	case c < 0:
		p.add(field("cpu"), "must not be negative")
	case c > 0 && c < MinCPU:
		p.add(field("cpu"), "%g: want at least %g cores (or leave it out to keep the manifest's)", c, MinCPU)
	}
	if l.Requests < 0 {
		p.add(field("requests"), "must not be negative")
	}
	if len(p.problems) > 0 {
		return &Error{Problems: p.problems}
	}
	return nil
}
