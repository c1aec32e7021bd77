package manifest

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// decodeCases hold documents in and out of the fast parser's subset, and broken ones.
var decodeCases = []string{
	`{"q":"hello"}`, ` {"a" : [1, -2.5e+3, 0, -0, 1E9, true, false, null, "x"], "b": {}} `, `[]`, `{}`, `"s"`, `0`, `-1.25`,
	`{"a":1,"a":2}`, `{"esc":"a\"b\\c\/d\n\t\r\b\f"}`, `{"u":"\u00e9"}`, `{"s":"\ud800"}`, "{\"raw\":\"caf\u00e9 \u65e5\"}",
	"{\"bad\":\"\xff\"}", "{\"del\":\"\x7f\"}", "{\"ctl\":\"\x01\"}", "{\"sur\":\"\xed\xa0\x80\"}",
	`01`, `1.`, `-`, `.5`, `1e`, `1e+`, `+1`, `tru`, `truex`, `nul`, `[1,]`, `{"a":1,}`, `{"a"}`, `{a:1}`, `[1 2]`,
	`{"a":1} x`, `{"a":1}{}`, ``, ` `, "\ufeff{}", `"unterminated`, `"bad \x escape"`, `{"a":[`,
	strings.Repeat("[", 70) + strings.Repeat("]", 70), strings.Repeat("[", 64) + strings.Repeat("]", 64),
	strings.Repeat(`{"a":`, 30) + "1" + strings.Repeat("}", 30), `[1e400, 123456789012345678901234567890]`,
}

// decodeJSON returns what jsonschema.UnmarshalJSON returns, value and error alike.
func TestDecodeJSONMatchesUnmarshalJSON(t *testing.T) {
	for _, c := range decodeCases {
		checkDecode(t, []byte(c))
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, data) })
}

func checkDecode(t *testing.T, data []byte) {
	t.Helper()
	want, werr := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	got, gerr := decodeJSON(data)
	if fmt.Sprint(werr) != fmt.Sprint(gerr) {
		t.Fatalf("%q: error %v, want %v", data, gerr, werr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: %#v, want %#v", data, got, want)
	}
}

// The fast parser takes the documents a call usually carries (a wrong parse there
// would go unnoticed by the comparison if it always fell back).
func TestDecodeJSONFastPath(t *testing.T) {
	for _, c := range []string{`{"q":"hello"}`, `{"a":[1,{"b":null}],"c":"x\ny"}`, "{\"t\":\"caf\u00e9\"}"} {
		d := fastDecoder{data: []byte(c)}
		if _, ok := d.value(0); !ok || d.pos != len(c) {
			t.Fatalf("%s: not taken by the fast parser", c)
		}
	}
}

func BenchmarkDecodeJSON(b *testing.B) {
	in := []byte(`{"url":"https://en.wikipedia.org/wiki/Go","count":3}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeJSON(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalJSON(b *testing.B) {
	in := []byte(`{"url":"https://en.wikipedia.org/wiki/Go","count":3}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jsonschema.UnmarshalJSON(bytes.NewReader(in)); err != nil {
			b.Fatal(err)
		}
	}
}
