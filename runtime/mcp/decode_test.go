package mcp_test

// These tests guard the patched copy of github.com/segmentio/encoding
// (third_party/segmentio-encoding): the MCP SDK decodes every message through its
// json.Decoder, which now sizes its buffer from the message. Decoding must behave as
// upstream's does (sizes across the old 32 KiB buffer, exact field names, trailing
// data, truncation, the SDK's depth limit) and must no longer allocate 32 KiB for a
// small message.

import (
	stdjson "encoding/json"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/segmentio/encoding/json"
)

// callMessage is a tools/call request of exactly size bytes (size >= 100) and its
// params.
func callMessage(size int) (msg, params string) {
	const head = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":`
	pad := size - len(head) - len(`{"name":"echo","arguments":{"pad":""}}}`)
	params = `{"name":"echo","arguments":{"pad":"` + strings.Repeat("x", pad) + `"}}`
	return head + params + "}", params
}

func TestDecodeMessageAcrossBufferSizes(t *testing.T) {
	for _, size := range []int{100, 4095, 4096, 4097, 32767, 32768, 32769, 65536, 300_000} {
		msg, params := callMessage(size)
		if len(msg) != size {
			t.Fatalf("test message is %d bytes, want %d", len(msg), size)
		}
		m, err := jsonrpc.DecodeMessage([]byte(msg))
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		req, ok := m.(*jsonrpc.Request)
		if !ok || req.Method != "tools/call" || string(req.Params) != params {
			t.Fatalf("%d bytes: decoded %T %+v, want the tools/call request with its params", size, m, m)
		}
		// Cut short, at any size, it is an error.
		if _, err := jsonrpc.DecodeMessage([]byte(msg[:size-2])); err == nil {
			t.Fatalf("%d bytes cut short: no error", size)
		}
	}
}

func TestDecodeMatchesFieldNamesExactly(t *testing.T) {
	var exact, mismatched sdk.CallToolResult
	if err := exact.UnmarshalJSON([]byte(`{"content":[],"isError":true,"structuredContent":{"a":1}}`)); err != nil {
		t.Fatal(err)
	}
	if err := mismatched.UnmarshalJSON([]byte(`{"content":[],"IsError":true,"StructuredContent":{"a":1}}`)); err != nil {
		t.Fatal(err)
	}
	if !exact.IsError || exact.StructuredContent == nil {
		t.Fatalf("exact field names not decoded: %+v", exact)
	}
	if mismatched.IsError || mismatched.StructuredContent != nil {
		t.Fatalf("field names differing in case were matched: %+v", mismatched)
	}
	if _, err := jsonrpc.DecodeMessage([]byte(`{"JSONRPC":"2.0","id":1,"method":"ping"}`)); err == nil {
		t.Fatal(`"JSONRPC" was taken for "jsonrpc"`)
	}
}

func TestDecodeTrailingDataAndDepthAsUpstream(t *testing.T) {
	// The SDK decodes one value and, as upstream always did, ignores what follows it.
	for _, msg := range []string{`{"jsonrpc":"2.0","id":1,"method":"ping"} {"x":1}`, `{"jsonrpc":"2.0","id":1,"method":"ping"}]`} {
		m, err := jsonrpc.DecodeMessage([]byte(msg))
		if err != nil {
			t.Fatalf("%s: %v", msg, err)
		}
		if req, ok := m.(*jsonrpc.Request); !ok || req.Method != "ping" {
			t.Fatalf("%s: decoded %+v", msg, m)
		}
	}
	nested := func(depth int) []byte {
		return []byte(`{"jsonrpc":"2.0","id":1,"method":"ping","params":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "}")
	}
	if _, err := jsonrpc.DecodeMessage(nested(999)); err != nil {
		t.Fatalf("1000 levels: %v", err)
	}
	if _, err := jsonrpc.DecodeMessage(nested(1000)); err == nil || !strings.Contains(err.Error(), "depth") {
		t.Fatalf("1001 levels: %v, want the depth limit", err)
	}
}

// TestDecodeSmallMessageAllocatesLittle fails on upstream v0.5.4, whose decoder
// allocated a 32 KiB buffer for every message.
func TestDecodeSmallMessageAllocatesLittle(t *testing.T) {
	msg, _ := callMessage(200)
	const runs = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		if _, err := jsonrpc.DecodeMessage([]byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / runs
	if per > 8<<10 {
		t.Fatalf("decoding a %d-byte message allocates %d bytes", len(msg), per)
	}
	t.Logf("decoding a %d-byte message allocates %d bytes", len(msg), per)
}

// shortLen is a reader whose Len reports less than it holds: Len only sizes the
// decoder's first buffer, the rest is read as before.
type shortLen struct{ r *strings.Reader }

func (s shortLen) Read(p []byte) (int, error) { return s.r.Read(p) }
func (s shortLen) Len() int                   { return 3 }

// TestDecoderStreamsAsBefore reads several values from one reader, through both
// kinds of reader the patch looks at, against the standard library's decoder.
func TestDecoderStreamsAsBefore(t *testing.T) {
	big, _ := callMessage(40_000)
	stream := `{"a":1}  [1,2,3]` + "\n" + big + ` "s" 12 {"b":{"c":null}}`
	readers := map[string]func() io.Reader{
		"strings.Reader": func() io.Reader { return strings.NewReader(stream) },
		"short Len":      func() io.Reader { return shortLen{strings.NewReader(stream)} },
		"no Len":         func() io.Reader { return io.MultiReader(strings.NewReader(stream)) },
	}
	for name, r := range readers {
		want := stdjson.NewDecoder(strings.NewReader(stream))
		got := json.NewDecoder(r())
		decodeAlike(t, name, want, got)
	}
	// Nothing, or nothing but spaces, is the end of the stream (Len 0 keeps 32 KiB).
	for _, empty := range []string{"", "   "} {
		if err := json.NewDecoder(strings.NewReader(empty)).Decode(new(any)); !errors.Is(err, io.EOF) {
			t.Fatalf("%q: %v, want EOF", empty, err)
		}
	}
}

// decodeAlike decodes got's values until EOF and checks each against want's.
func decodeAlike(t *testing.T, name string, want *stdjson.Decoder, got *json.Decoder) {
	t.Helper()
	for i := 0; ; i++ {
		var w, g any
		werr, gerr := want.Decode(&w), got.Decode(&g)
		if errors.Is(werr, io.EOF) && errors.Is(gerr, io.EOF) {
			return
		}
		if werr != nil || gerr != nil {
			t.Fatalf("%s: value %d: errors %v (encoding/json) and %v", name, i, werr, gerr)
		}
		wb, _ := stdjson.Marshal(w)
		gb, _ := stdjson.Marshal(g)
		if string(wb) != string(gb) {
			t.Fatalf("%s: value %d differs: %.80s vs %.80s", name, i, wb, gb)
		}
	}
}
