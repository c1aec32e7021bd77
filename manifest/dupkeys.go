package manifest

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// repeatedKey finds the first object key that appears twice in one object of data,
// which must be valid JSON, decoded as v (maps and slices, as encoding/json decodes
// into an interface): the location of that object (JSON pointer tokens) and the key.
// JSON parsers disagree on such a document (most keep the last value, some the first;
// a schema validator judges one of them), so a validator, an approver and a skill
// could each read a different value: it is refused.
//
// It walks the tokens of encoding/json's streaming decoder, which unescapes keys, so
// "a" and "\u0061" are one key. Most documents are not walked: every key in the text
// ends with a quote followed by a colon (whitespace between), so when there are no more
// such quote-colons than v has keys (a repeated key leaves one entry in a map, so v then
// has fewer keys than the text), no key repeats.
func repeatedKey(data []byte, v any) (at []string, key string, found bool) {
	if quoteColons(data) <= keysIn(v) {
		return nil, "", false
	}
	return walkRepeatedKey(data)
}

// walkRepeatedKey is repeatedKey's walk over the tokens.
func walkRepeatedKey(data []byte) (at []string, key string, found bool) {
	var stack []*jsonFrame
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers stay text: nothing is converted only to be dropped
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, "", false // io.EOF; anything else was refused before
		}
		var top *jsonFrame
		if n := len(stack); n > 0 {
			top = stack[n-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				top.value()
				stack = append(stack, &jsonFrame{object: t == '{', wantKey: t == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if top == nil || !top.object || !top.wantKey {
				top.value()
				continue
			}
			if top.repeats(t) {
				for _, f := range stack[:len(stack)-1] {
					at = append(at, f.label)
				}
				return at, t, true
			}
			top.label, top.wantKey = t, false
		default:
			top.value()
		}
	}
}

// jsonFrame is one open object or array of repeatedKey's walk.
type jsonFrame struct {
	object  bool
	wantKey bool   // an object's next string is a key
	label   string // where the current value sits: its key, or its index in an array
	index   int    // an array's next index
	keys    []string
	set     map[string]struct{} // the keys, once there are more than smallObject
}

// smallObject is how many keys an object's frame keeps in a slice before a map.
const smallObject = 16

// value notes that a value starts in f (nil: at the top level).
func (f *jsonFrame) value() {
	switch {
	case f == nil:
	case f.object:
		f.wantKey = true // after this value, a key
	default:
		f.label = strconv.Itoa(f.index)
		f.index++
	}
}

// repeats reports whether k is already a key of this object, and adds it.
func (f *jsonFrame) repeats(k string) bool {
	if f.set != nil {
		if _, ok := f.set[k]; ok {
			return true
		}
		f.set[k] = struct{}{}
		return false
	}
	for _, have := range f.keys {
		if have == k {
			return true
		}
	}
	f.keys = append(f.keys, k)
	if len(f.keys) > smallObject {
		f.set = make(map[string]struct{}, 2*len(f.keys))
		for _, have := range f.keys {
			f.set[have] = struct{}{}
		}
		f.keys = nil
	}
	return false
}

// quoteColons counts the colons of data that follow a quote (JSON whitespace between):
// at least one for each key in the text.
func quoteColons(data []byte) int {
	n := 0
	for i := 0; ; i++ {
		j := bytes.IndexByte(data[i:], ':')
		if j < 0 {
			return n
		}
		i += j
		k := i - 1
		for k >= 0 && (data[k] == ' ' || data[k] == '\t' || data[k] == '\n' || data[k] == '\r') {
			k--
		}
		if k >= 0 && data[k] == '"' {
			n++
		}
	}
}

// keysIn counts the keys of every object in v, a decoded JSON value.
func keysIn(v any) int {
	switch v := v.(type) {
	case map[string]any:
		n := len(v)
		for _, x := range v {
			n += keysIn(x)
		}
		return n
	case []any:
		n := 0
		for _, x := range v {
			n += keysIn(x)
		}
		return n
	}
	return 0
}
