// Package strictyaml decodes an operator's YAML file (trust.yaml, an approval, a grant)
// into a Go struct strictly, and words every problem for the person who wrote the file:
// its line, its field path and what is allowed there, never a Go type name
// ("line 3: signers[0]: unknown field "nmae" (allowed: name, key, keyless)").
//
// It is a leaf: it imports nothing of skillbox's, so the signing leaf may use it without
// depending on anything with domain knowledge.
package strictyaml

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Bounds on what an error says, so a hostile file cannot make a huge one.
const (
	maxProblems = 10
	maxKeyLen   = 64
	maxMsgLen   = 300
)

// Error lists what is wrong with a file, in document order. Error() is one line.
type Error struct {
	Problems []string
	More     int // problems found beyond those listed
}

func (e *Error) Error() string {
	s := strings.Join(e.Problems, "; ")
	if e.More > 0 {
		s += fmt.Sprintf("; and %d more", e.More)
	}
	return s
}

type checker struct {
	probs []string
	more  int
}

func (c *checker) add(n *yaml.Node, path, format string, args ...any) {
	if len(c.probs) >= maxProblems {
		c.more++
		return
	}
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	if n != nil && n.Line > 0 {
		msg = fmt.Sprintf("line %d: %s", n.Line, msg)
	}
	c.probs = append(c.probs, Cut(msg, maxMsgLen))
}

// Decode reads one YAML document from data into v, a pointer to a struct. Unknown
// fields, duplicate keys, a value of the wrong kind (a list where a string belongs) and
// a second document are errors (*Error, or a syntax error in the same words). Types that
// decode themselves (yaml.Unmarshaler, encoding.TextUnmarshaler) must be written as one
// scalar; their own error message is kept, with its line and field path.
func Decode(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty file")
		}
		return errors.New(SyntaxMessage(data, err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("strictyaml: Decode needs a non-nil pointer")
	}
	c := &checker{}
	c.walk(root, rv.Type().Elem(), "", 0)
	if len(c.probs) > 0 {
		return &Error{Problems: c.probs, More: c.more}
	}
	if err := root.Decode(v); err != nil {
		// walk accepted the document, so this is a case it does not know: still no type
		// names.
		return &Error{Problems: []string{Cut(clean(err), maxMsgLen)}}
	}
	return nil
}

var (
	unmarshalerType     = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	timeType            = reflect.TypeFor[time.Time]()
)

// selfDecoding reports whether t decodes itself from a scalar.
func selfDecoding(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return t == timeType || p.Implements(unmarshalerType) || p.Implements(textUnmarshalerType)
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// walk checks n against t. depth stops an alias loop or an absurdly deep document.
func (c *checker) walk(n *yaml.Node, t reflect.Type, path string, depth int) {
	n = deref(n)
	if n == nil || depth > 64 || len(c.probs) >= maxProblems {
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // the zero value
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if selfDecoding(t) {
		if n.Kind != yaml.ScalarNode {
			c.add(n, path, "want %s, got %s", want(t), Describe(n))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			var te *yaml.TypeError
			if t == timeType {
				// time's own message shows Go's reference layout ("2006-01-02T15:04:05Z07:00").
				c.add(n, path, "want %s, got %q", want(t), Cut(n.Value, maxKeyLen))
			} else if errors.As(err, &te) {
				c.add(n, path, "want %s, got %s", want(t), Describe(n))
			} else {
				c.add(n, path, "%s", clean(err))
			}
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.add(n, path, "want a mapping, got %s", Describe(n))
			return
		}
		fields, names := structFields(t)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := deref(n.Content[i])
			key := Cut(k.Value, maxKeyLen)
			if line, dup := seen[k.Value]; dup {
				c.add(k, join(path, key), "duplicate key (first at line %d)", line)
				continue
			}
			seen[k.Value] = k.Line
			f, ok := fields[k.Value]
			if !ok {
				c.add(k, path, "unknown field %q (allowed: %s)", key, strings.Join(names, ", "))
				continue
			}
			c.walk(n.Content[i+1], f, join(path, k.Value), depth+1)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.add(n, path, "want a mapping, got %s", Describe(n))
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := deref(n.Content[i])
			key := Cut(k.Value, maxKeyLen)
			if k.Kind != yaml.ScalarNode {
				c.add(k, path, "keys must be plain names")
				continue
			}
			if line, dup := seen[k.Value]; dup {
				c.add(k, join(path, key), "duplicate key (first at line %d)", line)
				continue
			}
			seen[k.Value] = k.Line
			c.walk(n.Content[i+1], t.Elem(), join(path, key), depth+1)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			c.add(n, path, "want a list, got %s", Describe(n))
			return
		}
		for i, e := range n.Content {
			c.walk(e, t.Elem(), path+"["+strconv.Itoa(i)+"]", depth+1)
		}
	case reflect.Interface:
		// Anything goes.
	default:
		if n.Kind != yaml.ScalarNode {
			c.add(n, path, "want %s, got %s", want(t), Describe(n))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			c.add(n, path, "want %s, got %s", want(t), Describe(n))
		}
	}
}

// structFields maps yaml keys to field types, and lists the keys in declaration order.
func structFields(t reflect.Type) (map[string]reflect.Type, []string) {
	fields := map[string]reflect.Type{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
		names = append(names, name)
	}
	return fields, names
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// want names what a Go type is written as, in YAML words.
func want(t reflect.Type) string {
	switch {
	case t == timeType:
		return "a timestamp such as 2025-01-02T15:04:05Z"
	case selfDecoding(t):
		return "a single value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return "another kind of value"
}

// Describe names what a node holds, in YAML words ("a list", "a string", "nothing"):
// the "got" half of a "want X, got Y" message.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "a string"
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "nothing"
		case "!!timestamp":
			return "a timestamp"
		}
		return "a " + strings.TrimPrefix(n.ShortTag(), "!!")
	}
	return "something else"
}

// clean words a decoding error without the YAML library's Go type names: a type error
// ("cannot unmarshal !!map into string") becomes what was wanted; other errors (a
// type's own, such as a bad origin) are kept.
func clean(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return "a value of the wrong kind"
	}
	msg := strings.TrimPrefix(strings.ReplaceAll(err.Error(), "\n", "; "), "yaml: ")
	if strings.Contains(msg, "cannot unmarshal") {
		return "a value of the wrong kind"
	}
	return msg
}

// SyntaxMessage words a YAML syntax error on one bounded line. The library's message
// for a tab used as indentation ("found character that cannot start any token") does
// not say what is wrong, and its line can be off by one: this names the first line a
// tab indents instead.
func SyntaxMessage(data []byte, err error) string {
	msg := strings.TrimPrefix(strings.ReplaceAll(err.Error(), "\n", "; "), "yaml: ")
	if strings.Contains(msg, "cannot start any token") || strings.Contains(msg, "tab character") {
		if line := tabIndentedLine(data); line > 0 {
			return fmt.Sprintf("line %d: indented with a tab; YAML allows only spaces for indentation", line)
		}
	}
	return Cut(msg, maxMsgLen)
}

// tabIndentedLine is the number of the first line whose indentation holds a tab, or 0.
func tabIndentedLine(data []byte) int {
	for i, line := range bytes.Split(data, []byte("\n")) {
		indent := line[:len(line)-len(bytes.TrimLeft(line, " \t"))]
		if bytes.IndexByte(indent, '\t') >= 0 {
			return i + 1
		}
	}
	return 0
}

// Cut shortens s to at most n bytes on a rune boundary, marking the cut.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	end := n - len("…")
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end] + "…"
}
