package skillpkg

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/skillbox-dev/skillbox/manifest"
)

// Fill computes the code digest (the module's sha256, or the image ID of a local
// image tar) and writes it into dir/skill.yaml, then validates the result. When the
// digest field already holds a scalar, only that scalar's bytes change; otherwise the
// YAML node tree is edited and re-encoded, which keeps comments and key order but
// normalises indentation. skill.yaml is rewritten only when the digest changed and the
// result is valid. A registry image's ID is the author's to write.
func Fill(dir string) (*Package, error) {
	mpath := filepath.Join(dir, ManifestFile)
	data, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		_, perr := manifest.Parse(data)
		if perr == nil {
			perr = fmt.Errorf("not a YAML mapping")
		}
		return nil, &ManifestError{File: mpath, Err: perr}
	}
	out, err := fillDoc(dir, data, &doc)
	if err != nil {
		return nil, err
	}
	if _, err := manifest.Parse(out); err != nil {
		return nil, &ManifestError{File: mpath, Err: err}
	}
	if !bytes.Equal(out, data) {
		if err := writeFileAtomic(mpath, out); err != nil {
			return nil, err
		}
	}
	return Load(dir)
}

// fillDoc returns skill.yaml with the digest set (data itself when nothing changes).
func fillDoc(dir string, data []byte, doc *yaml.Node) ([]byte, error) {
	m, key, value, err := digestField(dir, doc.Content[0])
	if err != nil || m == nil {
		return data, err
	}
	v := lookup(m, key)
	if v != nil && v.Kind == yaml.ScalarNode && v.Value == value && v.ShortTag() == "!!str" {
		return data, nil
	}
	if v != nil {
		if out, ok := replaceScalar(data, v, value); ok && holds(out, key, value) {
			return out, nil
		}
	}
	set(m, key, value)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// digestField finds the mapping and key to set (sandbox.wasm.sha256 or
// sandbox.container.id) and computes the value. A structure it does not recognise is
// left alone (nil mapping) for manifest.Parse to report with its field path.
func digestField(dir string, root *yaml.Node) (*yaml.Node, string, string, error) {
	sb := lookup(root, "sandbox")
	if w := lookup(sb, "wasm"); w != nil {
		mod := lookup(w, "module")
		// A path outside the package is left for Parse to name by its field.
		if mod == nil || mod.Kind != yaml.ScalarNode || manifest.CheckPackagePath(mod.Value) != nil {
			return nil, "", "", nil
		}
		sum, err := fileDigest(dir, mod.Value)
		return w, "sha256", sum.Hex(), err
	}
	if c := lookup(sb, "container"); c != nil {
		img := lookup(c, "image")
		if img == nil || img.Kind != yaml.ScalarNode || img.Value == "" || (&manifest.ContainerSandbox{Image: img.Value}).FromRegistry() ||
			manifest.CheckPackagePath(img.Value) != nil {
			return nil, "", "", nil
		}
		id, err := imageIDIn(dir, img.Value)
		return c, "id", id.String(), err
	}
	return nil, "", "", nil
}

// replaceScalar swaps the bytes of scalar n for value, when n is a plain or quoted
// scalar whose text sits where the parser says it does.
func replaceScalar(data []byte, n *yaml.Node, value string) ([]byte, bool) {
	if n.Kind != yaml.ScalarNode || n.Line < 1 || n.Column < 1 {
		return nil, false
	}
	pos := 0
	for line := 1; line < n.Line; line++ {
		i := bytes.IndexByte(data[pos:], '\n')
		if i < 0 {
			return nil, false
		}
		pos += i + 1
	}
	for col := 1; col < n.Column; col++ { // columns count characters
		if pos >= len(data) || data[pos] == '\n' {
			return nil, false
		}
		_, size := utf8.DecodeRune(data[pos:])
		pos += size
	}
	var old string
	switch n.Style {
	case 0:
		old = n.Value
	case yaml.DoubleQuotedStyle:
		old = `"` + n.Value + `"`
	case yaml.SingleQuotedStyle:
		old = "'" + n.Value + "'"
	default:
		return nil, false
	}
	if old == "" || !bytes.HasPrefix(data[pos:], []byte(old)) {
		return nil, false
	}
	out := make([]byte, 0, len(data)+len(value))
	out = append(out, data[:pos]...)
	out = append(out, value...)
	return append(out, data[pos+len(old):]...), true
}

// holds reports whether doc parses with key set to the string value (the check that
// a byte-level edit did what was meant).
func holds(doc []byte, key, value string) bool {
	var n yaml.Node
	if yaml.Unmarshal(doc, &n) != nil || len(n.Content) != 1 {
		return false
	}
	sb := lookup(n.Content[0], "sandbox")
	for _, kind := range []string{"wasm", "container"} {
		if v := lookup(lookup(sb, kind), key); v != nil {
			return v.Kind == yaml.ScalarNode && v.Value == value && v.ShortTag() == "!!str"
		}
	}
	return false
}

func lookup(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// set puts a string value under key, appending the key if it is absent, and reports
// whether anything changed.
func set(m *yaml.Node, key, value string) bool {
	if v := lookup(m, key); v != nil {
		if v.Kind == yaml.ScalarNode && v.Value == value && v.ShortTag() == "!!str" {
			return false
		}
		v.Kind, v.Tag, v.Value, v.Style, v.Content = yaml.ScalarNode, "!!str", value, 0, nil
		return true
	}
	m.Content = append(m.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value})
	return true
}

func writeFileAtomic(name string, data []byte) error {
	mode := os.FileMode(0o644)
	if st, err := os.Stat(name); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), ".skill.yaml-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
