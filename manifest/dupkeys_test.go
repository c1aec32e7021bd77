package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// A key given twice in one object is refused, at any depth, in input and output, with
// or without a schema: a schema validator, an approver reading the text and the skill's
// parser could each take a different one of its values (the proof: a caller showed
// "amount":5 to an approver and ran "amount":1000000).
func TestRepeatedKeysRefused(t *testing.T) {
	withSchema, err := Parse([]byte(goodWasm))
	if err != nil {
		t.Fatal(err)
	}
	noSchema, err := Parse([]byte(goodContainer))
	if err != nil {
		t.Fatal(err)
	}
	var many strings.Builder // more keys than a small object's frame holds
	for i := range 40 {
		fmt.Fprintf(&many, `"k%d":%d,`, i, i)
	}
	for _, tc := range []struct{ in, want string }{
		{`{"url":"https://a","count":5,"memo":"` + strings.Repeat("x", 5000) + `","count":1000000}`, `input: key "count" appears twice in this object`},
		{`{"url":"https://a","url":"https://b"}`, `input: key "url" appears twice in this object`},
		{"{\"url\" :\"a\",\n\"url\"\r\n\t:\"b\"}", `input: key "url" appears twice in this object`},
		// The same key however it is escaped.
		{`{"url":"https://a","\u0075rl":"https://b"}`, `input: key "url" appears twice in this object`},
		{`{"url":"x","to":{"payee":"alice","note":{},"payee":"mallory"}}`, `input.to: key "payee" appears twice in this object`},
		{`{"url":"x","items":[{"a":1},{"b":[1,2],"c":{"d":1},"b":2}]}`, `input.items[1]: key "b" appears twice in this object`},
		{`{"url":"x","m":[[{"a":1}],[{"a":1,"a":2}]]}`, `input.m[1][0]: key "a" appears twice in this object`},
		{`{"url":"x",` + many.String() + `"k17":0}`, `input: key "k17" appears twice in this object`},
		// Keys that differ only in case are one key to Go's encoding/json (the SDK's),
		// which reads the last: the schema would judge "count" and the skill read "COUNT".
		{`{"url":"x","count":5,"COUNT":1000000}`, `input: keys "count" and "COUNT" differ only in case, which counts as the same key twice in this object`},
		{`{"url":"x","to":{"Payee":"alice","pAYEE":"mallory"}}`, `input.to: keys "Payee" and "pAYEE" differ only in case, which counts as the same key twice in this object`},
		{"{\"url\":\"x\",\"k\":1,\"\u212a\":2}", "input: keys \"k\" and \"\u212a\" differ only in case, which counts as the same key twice in this object"}, // the Kelvin sign folds to k
		{`{"url":"x",` + many.String() + `"K17":0}`, `input: keys "k17" and "K17" differ only in case, which counts as the same key twice in this object`},
		// A key with characters that could disguise it is named escaped.
		{`{"url":"x","a\u202eb":1,"a\u202eb":2}`, `input: key "a\u202eb" appears twice in this object`},
	} {
		for _, m := range []*Manifest{withSchema, noSchema} {
			err := m.ValidateInput([]byte(tc.in))
			var se *SchemaError
			if !errors.As(err, &se) || err.Error() != tc.want {
				t.Errorf("%.80s: got %v, want %s", tc.in, err, tc.want)
			}
		}
	}
	// The same key in different objects, or as a value, is no repetition.
	for _, in := range []string{
		`{"url":"x","count":1}`,
		`{"url":"x","a":{"url":"y","a":{"url":"z"}},"b":[{"a":1},{"a":1}],"c":"url","d":["a","a"]}`,
		`{"url":"a:b:c","count":3}`,
		`{"url":"x\":y","count":1,"z":"\"  :"}`, // quote-colons inside strings: walked, none repeats
		`{"url":"x",` + many.String() + `"k40":0}`,
		`{"url":"x","Count":1,"amount":2,"a":{"COUNT":1}}`, // case differs across objects only
	} {
		if err := withSchema.ValidateInput([]byte(in)); err != nil {
			t.Errorf("%.80s: %v", in, err)
		}
	}
	if err := withSchema.ValidateOutput([]byte(`{"ok":true,"result":{"to":"alice","to":"mallory"}}`)); err == nil ||
		err.Error() != `output.result: key "to" appears twice in this object` {
		t.Errorf("output with a repeated key: %v", err)
	}
}

// The shortcut (no more quote-colons in the text than keys in the decoded value: no
// repeated key) never hides one the walk finds.
func FuzzRepeatedKey(f *testing.F) {
	for _, seed := range []string{`{"a":1,"a":2}`, `{"a":"\":","b":{"a":1}}`, `[{"a":1},{"a":1,"b":{"c":":"},"a":3}]`,
		`{"a" : {"b":1, "b" :2}}`, `{"\u0061":1,"a":2}`, `"x:"`, `{}`, `{"a":1,"A":2}`, `{"k":{"K":1,"\u212a":2}}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			return
		}
		at, key, found := repeatedKey(data, v)
		wat, wkey, wfound := walkRepeatedKey(data)
		if found != wfound || key != wkey || strings.Join(at, "/") != strings.Join(wat, "/") {
			t.Fatalf("%q: shortcut %v %q %q, walk %v %q %q", data, found, at, key, wfound, wat, wkey)
		}
	})
}
