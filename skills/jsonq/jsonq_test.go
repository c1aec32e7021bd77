package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/skills/sdk"
)

const doc = `{
  "store": "north",
  "id": 12345678901234567890,
  "items": [
    {"name": "apple",  "price": 0.10, "tags": ["fruit", "red"], "stock": 5},
    {"name": "pear",   "price": 0.20, "tags": ["fruit"], "stock": 0},
    {"name": "bread",  "price": 2.50, "tags": [], "stock": 12, "note": null},
    {"name": "cheese", "price": 10,   "tags": ["dairy"]}
  ],
  "owner": {"name": "Ada", "since": 2019},
  "x y": true,
  "empty": []
}`

func query(t *testing.T, q string) (string, error) {
	t.Helper()
	out, err := run(context.Background(), Input{Data: json.RawMessage(doc), Query: q})
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(out.Results)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), nil
}

func TestQueries(t *testing.T) {
	tests := []struct{ q, want string }{
		{".", ""}, // checked below: the whole document
		{".store", `["north"]`},
		{".id", `[12345678901234567890]`}, // no float rounding
		{".missing", `[null]`},
		{".missing.deeper", `[null]`},
		{".owner.name", `["Ada"]`},
		{`."x y"`, `[true]`},
		{`.owner["name"]`, `["Ada"]`},
		{`.["store"]`, `["north"]`},
		{".items[0].name", `["apple"]`},
		{".items[-1].name", `["cheese"]`},
		{".items[9]", `[null]`},
		{".items[].name", `["apple","pear","bread","cheese"]`},
		{".items[*].name", `["apple","pear","bread","cheese"]`},
		{".items.*.name", `["apple","pear","bread","cheese"]`},
		{".items.[1].name", `["pear"]`},
		{".items[].price", `[0.10,0.20,2.50,10]`}, // numbers as written
		{".items[1:3][].name", `["pear","bread"]`},
		{".items[:1][].name", `["apple"]`},
		{".items[-2:][].name", `["bread","cheese"]`},
		{".items[5:9]", `[[]]`},
		{".store[1:3]", `["or"]`},
		{".owner[]", `["Ada",2019]`}, // values in key order: name, since
		{".items[].tags[]", `["fruit","red","fruit","dairy"]`},
		{".empty[]", `[]`},
		{"[.items[].name]", `[["apple","pear","bread","cheese"]]`},
		{"[]", `[[]]`},
		{"[.empty[]]", `[[]]`},
		{".items | length", `[4]`},
		{".store | length", `[5]`},
		{".owner | length", `[2]`},
		{".missing | length", `[0]`},
		{".owner | keys", `[["name","since"]]`},
		{".empty | keys", `[[]]`},
		{".items[0].tags | keys", `[[0,1]]`},
		{".items | map(.name)", `[["apple","pear","bread","cheese"]]`},
		{".items | map(.tags[])", `[["fruit","red","fruit","dairy"]]`},
		{".items | sort_by(.price) | map(.name)", `[["apple","pear","bread","cheese"]]`},
		{".items | sort_by(.name) | map(.name)", `[["apple","bread","cheese","pear"]]`},
		{".items | sort_by(.stock) | map(.name)", `[["cheese","pear","apple","bread"]]`}, // missing stock is null: first
		{".items | map(.price) | sort | reverse", `[[10,2.50,0.20,0.10]]`},
		{".items | map(.price) | add", `[12.8]`},
		{".items | map(.price) | max", `[10]`},
		{".items | map(.price) | min", `[0.10]`},
		{".items | map(.name) | add", `["applepearbreadcheese"]`},
		{".items | map(.tags) | add", `[["fruit","red","fruit","dairy"]]`},
		{".items | map(.tags[]) | unique", `[["dairy","fruit","red"]]`},
		{".items | first | .name", `["apple"]`},
		{".items | last | .name", `["cheese"]`},
		{".empty | first", `[null]`},
		{".empty | add", `[null]`},
		{".items[] | select(.price > 1) | .name", `["bread","cheese"]`},
		{".items[] | select(.price >= 0.2 and .price <= 2.5) | .name", `["pear","bread"]`},
		{".items[] | select(.stock == 0 or .price == 10) | .name", `["pear","cheese"]`},
		{`.items[] | select(.name == "pear") | .stock`, `[0]`},
		{`.items[] | select(.name != "pear") | .name`, `["apple","bread","cheese"]`},
		{".items[] | select(.price == 0.1) | .name", `["apple"]`}, // 0.10 == 0.1
		{".items[] | select(.price == 1e1) | .name", `["cheese"]`},
		{".items[] | select(.stock) | .name", `["apple","pear","bread"]`}, // 0 is true, null is false
		{".items[] | select(.stock | not) | .name", `["cheese"]`},
		{".items[] | select(has(\"note\")) | .name", `["bread"]`},
		{".items[] | select(.tags | length == 0) | .name", `["bread"]`},
		{".items[] | select(.tags[] == \"fruit\") | .name", `["apple","pear"]`},
		{".items[0].tags | has(1)", `[true]`},
		{".items[0].tags | has(2)", `[false]`},
		{".items | map(.note | type)", `[["null","null","null","null"]]`},
		{".owner.since | type", `["number"]`},
		{"(.owner).name", `["Ada"]`},
		{".owner | (.name)", `["Ada"]`},
		{"true", `[true]`},
		{"null", `[null]`},
		{`"s"`, `["s"]`},
		{"-1.5", `[-1.5]`},
		{".owner.since > 2000", `[true]`},
		{`"b" > "a" and null < false and false < true and true < 0 and 0 < "" and "" < []`, `[true]`},
		{"[.items[].stock] | sort", `[[null,0,5,12]]`},
		{". | .store", `["north"]`},
		{".items | map(select(.tags | length == 0)) | length", `[1]`},
		{".items[] | select(.price > 1 and .stock > 0) | .name", `["bread"]`},
	}
	for _, tt := range tests {
		if tt.want == "" {
			continue
		}
		t.Run(tt.q, func(t *testing.T) {
			got, err := query(t, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("%s\n got %s\nwant %s", tt.q, got, tt.want)
			}
		})
	}
	got, err := query(t, ".")
	var whole []any
	if err != nil || json.Unmarshal([]byte(got), &whole) != nil || len(whole) != 1 {
		t.Fatalf(". gave %s, %v", got, err)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct{ q, want string }{
		{"", "query: at 0: empty query"},
		{"   ", "query: at 0: empty query"},
		{".items[", `query: at 7: unexpected end of query, expected an index`},
		{".items[0", `query: at 8: unexpected end of query, expected ":"`},
		{".items[0:1", `query: at 10: unexpected end of query, expected "]"`},
		{".items[1.5]", `query: at 7: index 1.5: want an integer`},
		{".items[true]", `query: at 7: unexpected "true", expected an index`},
		{"(.store", `query: at 7: unexpected end of query, expected ")"`},
		{".store)", `query: at 6: unexpected ")", expected end of query`},
		{"[0.1, 0.2]", `query: at 4: unexpected character ','`}, // no comma operator
		{"foo", `query: at 0: unknown function "foo" (known: add, first, has, keys, last, length, map`},
		{"sort_by", `query: at 0: sort_by needs an argument, as in sort_by(.price)`},
		{"length(.x)", `query: at 0: length takes no argument`},
		{".a = 1", `query: at 3: unknown operator "="`},
		{".a == 1 == 2", `query: at 8: comparisons do not chain`},
		{`"abc`, `query: at 0: unterminated string`},
		{`"\q"`, `query: at 0: bad string`},
		{".a | 01", `query: at 5: bad number "01"`},
		{"#", `query: at 0: unexpected character '#'`},
		{".store.name", `query: at 6: cannot get "name" of string`},
		{".items.name", `query: at 6: cannot get "name" of array`},
		{".store[0]", `query: at 6: cannot index string with 0`},
		{".owner[0]", `query: at 6: cannot index object with 0`},
		{".owner.since[]", `query: at 12: cannot iterate over number`},
		{".missing[]", `query: at 8: cannot iterate over null`},
		{".owner.since[1:]", `query: at 12: cannot slice number`},
		{".owner | sort", `query: at 9: sort: input is object, want an array`},
		{".missing | map(.x)", `query: at 11: map: input is null, want an array`},
		{".owner.since | length", `query: at 15: length: number has no length`},
		{".store | keys", `query: at 9: keys: input is string, want an object or an array`},
		{`.items[0] | has(0)`, `has: an object's key must be a string, not number`},
		{`.items[0].tags | has("a")`, `has: an array's index must be an integer`},
		{strings.Repeat("(", MaxDepth+1) + "." + strings.Repeat(")", MaxDepth+1), "nested more than 64 deep"},
		{strings.Repeat(".a", MaxQuery), "at most 4096"},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			got, err := query(t, tt.q)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%q: got %s, %v; want error containing %q", tt.q, got, err, tt.want)
			}
		})
	}
}

func TestAddMixed(t *testing.T) {
	data := `{"a":[1,"x"],"n":[0.1,0.2,null],"f":[1e2,0.5],"s":["a",null,"b"]}`
	for q, want := range map[string]string{
		".a | add": "add: cannot add string to number (element 1)",
		".n | add": "[0.3]",   // exact, unlike float64's 0.30000000000000004
		".f | add": "[100.5]", // with an exponent: float64
		".s | add": `["ab"]`,
	} {
		out, err := run(context.Background(), Input{Data: json.RawMessage(data), Query: q})
		got := fmt.Sprint(err)
		if err == nil {
			b, _ := json.Marshal(out.Results)
			got = string(b)
		}
		if !strings.Contains(got, want) {
			t.Errorf("%s: got %s, want %s", q, got, want)
		}
	}
}

func TestLimits(t *testing.T) {
	// 400 elements: a comparison between two 400-value streams is 160,000 values.
	var b strings.Builder
	b.WriteString("[")
	for i := range 400 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprint(&b, i)
	}
	b.WriteString("]")
	_, err := run(context.Background(), Input{Data: json.RawMessage(b.String()), Query: ".[] == .[]"})
	if err == nil || !strings.Contains(err.Error(), "comparison of 400 by 400 values") {
		t.Fatalf("err %v", err)
	}
}

func TestInputErrors(t *testing.T) {
	if _, err := run(context.Background(), Input{Query: "."}); err == nil || !strings.Contains(err.Error(), "data is required") {
		t.Errorf("missing data: %v", err)
	}
	if _, err := run(context.Background(), Input{Data: json.RawMessage(`null`), Query: ".a"}); err != nil {
		t.Errorf("null data: %v", err)
	}
}

func TestMainJSON(t *testing.T) {
	var out, errb bytes.Buffer
	in := `{"data":{"a":[{"b":"<x>"}]},"query":".a[].b"}`
	code := sdk.Main(context.Background(), strings.NewReader(in), &out, &errb, run)
	if code != 0 || out.String() != "{\"results\":[\"<x>\"]}\n" {
		t.Fatalf("exit %d stdout %q stderr %q", code, out.String(), errb.String())
	}
	out.Reset()
	code = sdk.Main(context.Background(), strings.NewReader(`{"data":1,"query":".a"}`), &out, &errb, run)
	if code != 1 || errb.String() != "query: at 0: cannot get \"a\" of number\n" {
		t.Fatalf("exit %d stdout %q stderr %q", code, out.String(), errb.String())
	}
}

func FuzzQuery(f *testing.F) {
	for _, q := range []string{".items[].name", ".items | sort_by(.price) | map(.name)", `.items[] | select(.price > 1 and has("note"))`, "[.items[1:][]] | length", ".owner[]"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out, err := run(context.Background(), Input{Data: json.RawMessage(doc), Query: q})
		if err != nil {
			return
		}
		if _, err := json.Marshal(out); err != nil {
			t.Fatalf("%q: result does not encode: %v", q, err)
		}
	})
}
