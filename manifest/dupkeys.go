package manifest

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// repeatedKey finds the first object key that appears twice in one object of data,
// which must be valid JSON, decoded as v (maps and slices, as encoding/json decodes
// into an interface): the location of that object (JSON pointer tokens) and the key.
// JSON parsers disagree on such a document (most keep the last value, some the first;
// a schema validator judges one of them), so a validator, an approver and a skill
// could each read a different value: it is refused. Keys that differ only in case
// count as one: Go's encoding/json (the skill SDK's) matches a struct field's name
// without regard to case, so `{"count":5,"COUNT":1000000}` is judged 5 by a schema
// and read 1000000 by such a skill.
//
// It walks the tokens of encoding/json's streaming decoder, which unescapes keys, so
// "a" and "\u0061" are one key. Most documents are not walked: every key in the text
// ends with a quote followed by a colon (whitespace between), so when there are no more
// such quote-colons than v has keys (a repeated key leaves one entry in a map, so v then
// has fewer keys than the text), and no two keys of one map fold to the same, no key
// repeats.
func repeatedKey(data []byte, v any) (at []string, key Repeat, found bool) {
	if n, folds := keysIn(v); !folds && quoteColons(data) <= n {
		return nil, Repeat{}, false
	}
	return walkRepeatedKey(data)
}

// Repeat is a key given again in one object: Key as written the second time, Earlier
// as written the first (the same, or differing only in case).
type Repeat struct{ Key, Earlier string }

// foldKey is k with every letter replaced by one member of its Unicode simple
// case-folding orbit (the lower case of its smallest), so two keys equal under case
// folding (as encoding/json matches them, the Kelvin sign and long s included) have one
// foldKey. ASCII-only keys without upper case, the usual ones, are their own.
func foldKey(k string) string {
	plain := true
	for i := 0; i < len(k); i++ {
		if c := k[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			plain = false
			break
		}
	}
	if plain {
		return k
	}
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return unicode.ToLower(least) // one rune per orbit, an ASCII letter's lower case
	}, k)
}

// walkRepeatedKey is repeatedKey's walk over the tokens.
func walkRepeatedKey(data []byte) (at []string, key Repeat, found bool) {
	var stack []*jsonFrame
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers stay text: nothing is converted only to be dropped
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, Repeat{}, false // io.EOF; anything else was refused before
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
			if earlier, ok := top.repeats(t); ok {
				for _, f := range stack[:len(stack)-1] {
					at = append(at, f.label)
				}
				return at, Repeat{Key: t, Earlier: earlier}, true
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
	wantKey bool              // an object's next string is a key
	label   string            // where the current value sits: its key, or its index in an array
	index   int               // an array's next index
	keys    [][2]string       // the keys so far: folded (foldKey) and as written
	set     map[string]string // the keys, folded to as written, once there are more than smallObject
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

// repeats returns the key of this object k repeats (compared as foldKey compares:
// the earlier key as written), or adds k.
func (f *jsonFrame) repeats(k string) (earlier string, ok bool) {
	fk := foldKey(k)
	if f.set != nil {
		if earlier, ok = f.set[fk]; !ok {
			f.set[fk] = k
		}
		return earlier, ok
	}
	for _, have := range f.keys {
		if have[0] == fk {
			return have[1], true
		}
	}
	f.keys = append(f.keys, [2]string{fk, k})
	if len(f.keys) > smallObject {
		f.set = make(map[string]string, 2*len(f.keys))
		for _, have := range f.keys {
			f.set[have[0]] = have[1]
		}
		f.keys = nil
	}
	return "", false
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

// keysIn counts the keys of every object in v, a decoded JSON value, and reports
// whether two keys of one object fold to the same (foldKey).
func keysIn(v any) (n int, folds bool) {
	switch v := v.(type) {
	case map[string]any:
		n = len(v)
		folds = foldTogether(v)
		for _, x := range v {
			m, f := keysIn(x)
			n, folds = n+m, folds || f
		}
	case []any:
		for _, x := range v {
			m, f := keysIn(x)
			n, folds = n+m, folds || f
		}
	}
	return n, folds
}

// foldTogether reports whether two keys of v have one foldKey. A map's keys differ, so
// when every key is its own foldKey (the usual lower-case ASCII keys) none can.
func foldTogether(v map[string]any) bool {
	unfolded := false
	for k := range v {
		if foldKey(k) != k {
			unfolded = true
			break
		}
	}
	if !unfolded {
		return false
	}
	seen := make(map[string]struct{}, len(v))
	for k := range v {
		fk := foldKey(k)
		if _, dup := seen[fk]; dup {
			return true
		}
		seen[fk] = struct{}{}
	}
	return false
}
