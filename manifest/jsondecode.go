package manifest

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// decodeJSON decodes one JSON document into the values the schema validator takes:
// exactly what jsonschema.UnmarshalJSON returns (encoding/json into any, numbers as
// json.Number), with the same errors. Every call's input and output pass through here,
// so the common documents (no \u escapes, valid UTF-8, nesting under maxFastDepth) are
// decoded by a small parser straight from the bytes; anything else, including every
// document that is not valid JSON, goes to jsonschema.UnmarshalJSON, so its errors
// (and their offsets) are encoding/json's. FuzzDecodeJSON holds the two together.
func decodeJSON(data []byte) (any, error) {
	d := fastDecoder{data: data}
	if v, ok := d.value(0); ok {
		d.space()
		if d.pos == len(data) {
			return v, nil
		}
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(data))
}

// maxFastDepth is the deepest nesting the fast parser takes; deeper documents go to
// encoding/json, which has its own limit.
const maxFastDepth = 64

// fastDecoder parses the subset of JSON decodeJSON takes; ok false means "not in the
// subset" (or not JSON), never a value that differs from encoding/json's.
type fastDecoder struct {
	data []byte
	pos  int
}

func (d *fastDecoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *fastDecoder) value(depth int) (any, bool) {
	d.space()
	if d.pos >= len(d.data) || depth > maxFastDepth {
		return nil, false
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.object(depth)
	case c == '[':
		return d.array(depth)
	case c == '"':
		s, ok := d.string()
		return s, ok
	case c == '-' || ('0' <= c && c <= '9'):
		return d.number()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	}
	return nil, false
}

func (d *fastDecoder) literal(word string) bool {
	if !bytes.HasPrefix(d.data[d.pos:], []byte(word)) {
		return false
	}
	d.pos += len(word)
	return true
}

func (d *fastDecoder) object(depth int) (any, bool) {
	d.pos++ // {
	m := make(map[string]any)
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return m, true
	}
	for {
		d.space()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, false
		}
		k, ok := d.string()
		if !ok {
			return nil, false
		}
		d.space()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, false
		}
		d.pos++
		v, ok := d.value(depth + 1)
		if !ok {
			return nil, false
		}
		m[k] = v // a repeated key: the last one wins, as in encoding/json
		d.space()
		if d.pos >= len(d.data) {
			return nil, false
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return m, true
		default:
			return nil, false
		}
	}
}

func (d *fastDecoder) array(depth int) (any, bool) {
	d.pos++ // [
	a := make([]any, 0)
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return a, true
	}
	for {
		v, ok := d.value(depth + 1)
		if !ok {
			return nil, false
		}
		a = append(a, v)
		d.space()
		if d.pos >= len(d.data) {
			return nil, false
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			return a, true
		default:
			return nil, false
		}
	}
}

// string parses a string without \u escapes whose bytes are valid UTF-8 (encoding/json
// replaces invalid bytes and lone surrogates; those cases are left to it).
func (d *fastDecoder) string() (string, bool) {
	d.pos++ // "
	start := d.pos
	plain := true // no escape: the bytes are the string
	for i := d.pos; i < len(d.data); {
		c := d.data[i]
		switch {
		case c == '"':
			if plain {
				d.pos = i + 1
				return string(d.data[start:i]), true
			}
			return d.unescape(start, i)
		case c == '\\':
			if i+1 >= len(d.data) {
				return "", false
			}
			switch d.data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				plain = false
				i += 2
			default: // \u and anything else
				return "", false
			}
		case c < 0x20:
			return "", false
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(d.data[i:])
			if r == utf8.RuneError && n == 1 {
				return "", false
			}
			i += n
		}
	}
	return "", false
}

// unescape builds the string of data[start:end], whose escapes string checked.
func (d *fastDecoder) unescape(start, end int) (string, bool) {
	b := make([]byte, 0, end-start)
	for i := start; i < end; i++ {
		c := d.data[i]
		if c != '\\' {
			b = append(b, c)
			continue
		}
		i++
		switch d.data[i] {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		default: // " \ /
			b = append(b, d.data[i])
		}
	}
	d.pos = end + 1
	return string(b), true
}

// number parses a number as the JSON grammar has it and keeps its text, as
// encoding/json does with UseNumber.
func (d *fastDecoder) number() (any, bool) {
	start, i := d.pos, d.pos
	digits := func() int {
		n := 0
		for i < len(d.data) && '0' <= d.data[i] && d.data[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if d.data[i] == '-' {
		i++
	}
	switch {
	case i < len(d.data) && d.data[i] == '0':
		i++
	case digits() == 0:
		return nil, false
	}
	if i < len(d.data) && d.data[i] == '.' {
		i++
		if digits() == 0 {
			return nil, false
		}
	}
	if i < len(d.data) && (d.data[i] == 'e' || d.data[i] == 'E') {
		i++
		if i < len(d.data) && (d.data[i] == '+' || d.data[i] == '-') {
			i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	d.pos = i
	return json.Number(d.data[start:i]), true
}
