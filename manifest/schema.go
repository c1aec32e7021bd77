package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// schemas holds the compiled input and output JSON Schemas; nil means "any JSON".
type schemas struct {
	input, output *jsonschema.Schema
}

// SchemaError is input or output that its JSON Schema refuses (or that is not JSON).
// Path names the failing value, e.g. "input.url" or "output.items[2]".
type SchemaError struct {
	Path    string
	Message string
}

func (e *SchemaError) Error() string { return e.Path + ": " + e.Message }

// noRemote refuses every $ref that is not inside the schema itself: a manifest never
// makes the runtime fetch anything, from the network or the disk.
type noRemote struct{}

func (noRemote) Load(url string) (any, error) {
	return nil, fmt.Errorf("external $ref %q is not allowed: a schema must be self-contained", url)
}

// compileSchema compiles one schema document (already JSON-clean). Draft 2020-12
// unless the schema names another with $schema.
func compileSchema(which string, doc []byte) (*jsonschema.Schema, error) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noRemote{})
	// A URL base (not a URN) so that relative $refs resolve to a URL and reach noRemote.
	loc := "https://skillbox.invalid/" + which + ".json"
	if err := c.AddResource(loc, v); err != nil {
		return nil, err
	}
	return c.Compile(loc)
}

// schemaProblem turns a compile error into a short message.
func schemaProblem(err error) string {
	var le *jsonschema.LoadURLError
	if errors.As(err, &le) {
		return le.Err.Error()
	}
	var sve *jsonschema.SchemaValidationError
	if errors.As(err, &sve) {
		var ve *jsonschema.ValidationError
		if errors.As(sve.Err, &ve) {
			leaf := firstLeaf(ve)
			return "not a valid JSON Schema: at " + pointer(leaf.InstanceLocation) + ": " + kindMessage(leaf.ErrorKind)
		}
	}
	return "not a valid JSON Schema: " + strings.ReplaceAll(err.Error(), "\n", " ")
}

func pointer(tokens []string) string {
	if len(tokens) == 0 {
		return "/"
	}
	return "/" + strings.Join(tokens, "/")
}

// ValidateInput checks data against the input schema. Without a schema, data must
// still be one JSON value.
func (m *Manifest) ValidateInput(data []byte) error {
	s, err := m.compiled()
	if err != nil {
		return err
	}
	return validate("input", s.input, data)
}

// ValidateOutput checks data against the output schema (any JSON value without one).
func (m *Manifest) ValidateOutput(data []byte) error {
	s, err := m.compiled()
	if err != nil {
		return err
	}
	return validate("output", s.output, data)
}

// compiled returns the schemas Parse compiled, or compiles them for a Manifest built
// some other way (not cached: a Manifest may be shared between goroutines).
func (m *Manifest) compiled() (*schemas, error) {
	if m.schemas != nil {
		return m.schemas, nil
	}
	s := &schemas{}
	for _, x := range []struct {
		which string
		doc   map[string]any
		dst   **jsonschema.Schema
	}{{"input", m.Input, &s.input}, {"output", m.Output, &s.output}} {
		if x.doc == nil {
			continue
		}
		b, err := json.Marshal(x.doc)
		if err != nil {
			return nil, fmt.Errorf("%s schema: %w", x.which, err)
		}
		if *x.dst, err = compileSchema(x.which, b); err != nil {
			return nil, fmt.Errorf("%s schema: %s", x.which, schemaProblem(err))
		}
	}
	return s, nil
}

func validate(which string, s *jsonschema.Schema, data []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return &SchemaError{Path: which, Message: "not valid JSON: " + err.Error()}
	}
	if s == nil {
		return nil
	}
	err = s.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &SchemaError{Path: which, Message: err.Error()}
	}
	leaf := firstLeaf(ve)
	msg := kindMessage(leaf.ErrorKind)
	if _, ok := leaf.ErrorKind.(*kind.Required); ok {
		msg = "missing property"
	}
	return &SchemaError{Path: instancePath(which, leafLocation(leaf)), Message: msg}
}

// firstLeaf picks one failure to report, deterministically (the library's causes follow
// map order): the deepest failing location, then the first by path.
func firstLeaf(ve *jsonschema.ValidationError) *jsonschema.ValidationError {
	var leaves []*jsonschema.ValidationError
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, e)
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	sort.SliceStable(leaves, func(i, j int) bool {
		a, b := leafLocation(leaves[i]), leafLocation(leaves[j])
		if len(a) != len(b) {
			return len(a) > len(b)
		}
		return strings.Join(a, "/") < strings.Join(b, "/")
	})
	return leaves[0]
}

// leafLocation is where a failure is, counting a missing property as its own location.
func leafLocation(e *jsonschema.ValidationError) []string {
	loc := e.InstanceLocation
	if r, ok := e.ErrorKind.(*kind.Required); ok && len(r.Missing) > 0 {
		missing := append([]string(nil), r.Missing...)
		sort.Strings(missing)
		loc = append(append([]string(nil), loc...), missing[0])
	}
	return loc
}

func instancePath(root string, tokens []string) string {
	var b strings.Builder
	b.WriteString(root)
	for _, t := range tokens {
		if _, err := strconv.Atoi(t); err == nil {
			b.WriteString("[" + t + "]")
		} else {
			b.WriteString("." + t)
		}
	}
	return b.String()
}

func kindMessage(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return fmt.Sprintf("got %s, want %s", k.Got, strings.Join(k.Want, " or "))
	case *kind.AdditionalProperties:
		return fmt.Sprintf("unexpected property %q", strings.Join(k.Properties, ", "))
	}
	return k.LocalizedString(message.NewPrinter(language.English))
}
