package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// encodeStd is the encoder lines were written with before the two-step one: all of
// unhashed through encoding/json, the hash of those bytes spliced in as the last field.
// The log's encoder must produce exactly these bytes.
func encodeStd(u unhashed) ([]byte, error) {
	body, err := json.Marshal(u)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	line := append([]byte(nil), body[:len(body)-1]...)
	line = append(line, `,"hash":"`...)
	line = hex.AppendEncode(line, sum[:])
	return append(line, "\"}\n"...), nil
}

// encodeCases are records with every kind of field and value, and strings that
// encoding/json escapes (HTML characters, control characters, invalid UTF-8, U+2028).
func encodeCases() []Record {
	hostile := []string{
		"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\there\nnew\rline\b\f",
		"\x00\x01\x1f\x7f", "a<b", "a>b", "a&b", "del\x7f", "unit\x1fsep", "caf\u00e9 \u65e5\u672c", "bad \xff\xfe utf8", "sep \u2028 \u2029", "emoji \U0001F600",
	}
	recs := []Record{
		{Event: EventReload},
		{Event: EventInvokeStart, Caller: "unix:uid=1000", Skill: "echo", Version: "1.0.0",
			ManifestDigest: "sha256:" + strings.Repeat("a", 64), CodeDigest: "sha256:" + strings.Repeat("b", 64),
			CallID: "c-0123456789abcdef", Details: map[string]any{"door": "grpc"}},
		{Event: EventInvokeEnd, Caller: "token:ci", Skill: "echo", Outcome: "ok",
			Usage: &Usage{WallMS: 3, PeakMemoryBytes: 1 << 20, OutputBytes: 13, Requests: 2, DeniedRequests: 1}},
		{Event: EventInvokeEnd, Outcome: "error", Reason: "TIMEOUT", Usage: &Usage{WallMS: -1},
			Details: map[string]any{"message": "the call took too long", "door": "mcp", "runtime": "runsc", "compileMs": int64(1800)}},
		{Event: EventEgressSecret, Details: map[string]any{"secrets": []string{"TOKEN", "B<>"}, "status": 200,
			"method": "GET", "url": "https://api.example.com/x?a=1&b=2"}},
		{Event: EventEgressDenied, Details: map[string]any{"count": 3, "f": 1.5, "big": math.MaxInt64, "neg": int64(-7),
			"t": true, "no": false, "nil": nil, "m": map[string]any{"z": 1, "a": []any{"x", 2.0}}, "u": uint8(9), "i32": int32(-3)}},
		{Event: EventApprove, Details: map[string]any{}}, // empty: omitted
	}
	for _, h := range hostile {
		recs = append(recs,
			Record{Event: h, Caller: h, Skill: h, Version: h, ManifestDigest: h, CodeDigest: h, CallID: h, Outcome: h, Reason: h},
			Record{Event: EventDisable, Details: map[string]any{h: h, "k" + h: []string{h}}})
	}
	return recs
}

// The log's encoder writes the bytes encoding/json wrote: a line written by this
// version and one written before are the same for the same record.
func TestEncodeMatchesEncodingJSON(t *testing.T) {
	prevs := []string{Genesis, strings.Repeat("f", 64)}
	for i, r := range encodeCases() {
		for _, seq := range []uint64{1, 10, 99999, math.MaxUint64} {
			u := unhashed{Seq: seq, Time: "2026-11-30T11:24:34.123456789Z", Record: r, Prev: prevs[i%2]}
			want, err := encodeStd(u)
			if err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
			got, err := encode(u)
			if err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("case %d seq %d:\ngot  %s\nwant %s", i, seq, got, want)
			}
			if n := lineLen(seq, len(got)-lineLen(seq, 0)); n != len(got) {
				t.Fatalf("case %d: lineLen says %d, the line is %d bytes", i, n, len(got))
			}
		}
	}
}

// The time is written as encoding/json writes the RFC 3339 string.
func TestAppendBodyAtMatchesString(t *testing.T) {
	r := Record{Event: EventReload}
	for _, tm := range []time.Time{time.Now(), time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)), time.Unix(0, 1)} {
		got, _ := appendBodyAt(nil, tm, &r)
		want, _ := appendBody(nil, tm.UTC().Format(time.RFC3339Nano), &r)
		if !bytes.Equal(got, want) {
			t.Fatalf("%v: %s, want %s", tm, got, want)
		}
	}
}

// A record JSON cannot encode fails in the new encoder as in encoding/json.
func TestEncodeRefusesWhatJSONRefuses(t *testing.T) {
	for _, v := range []any{func() {}, make(chan int), math.NaN(), map[string]any{"x": math.Inf(1)}} {
		u := unhashed{Seq: 1, Time: "t", Record: Record{Event: EventReload, Details: map[string]any{"v": v}}, Prev: Genesis}
		if _, err := encodeStd(u); err == nil {
			t.Fatalf("%T: encoding/json accepts it", v)
		}
		if _, err := encode(u); err == nil {
			t.Fatalf("%T: encoded", v)
		}
	}
}

// Every line the Log writes (appended, enqueued, from many goroutines, in batches)
// is encoding/json's line for its record, and the chain verifies.
func TestLogWritesEncodingJSONLines(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var cases []Record
	for _, r := range encodeCases() {
		if r.Event != "" {
			cases = append(cases, r)
		}
	}
	// Each line names its record by call id, to compare it with the record appended.
	var sent sync.Map
	done := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i, r := range cases {
				r.CallID = fmt.Sprintf("g%d-%d", g, i)
				sent.Store(r.CallID, r)
				if (i+g)%2 == 0 {
					if err := l.Enqueue(ctx, r); err != nil {
						done <- err
						return
					}
					continue
				}
				if _, err := l.Append(ctx, r); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileName)
	if err := Verify(path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := append(sc.Bytes(), '\n')
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		r, ok := sent.Load(e.CallID)
		if !ok {
			t.Fatalf("line %d: call id %q was not sent", n, e.CallID)
		}
		want, err := encodeStd(unhashed{Seq: e.Seq, Time: e.Time, Record: r.(Record), Prev: e.Prev})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(line, want) {
			t.Fatalf("line %d:\ngot  %s\nwant %s", n, line, want)
		}
	}
	if n != 8*len(cases) {
		t.Fatalf("%d lines, want %d", n, 8*len(cases))
	}
}

// Any strings and numbers encode as encoding/json encodes them.
func FuzzEncode(f *testing.F) {
	f.Add("invoke.end", "unix:uid=1", "echo", "door", "grpc", int64(3))
	f.Add("<&>", "\xff", "\u2028", "\x00", "\"\\", int64(-1))
	f.Fuzz(func(t *testing.T, event, caller, skill, key, val string, n int64) {
		if event == "" {
			return
		}
		u := unhashed{Seq: uint64(n), Time: val, Prev: Genesis, Record: Record{Event: event, Caller: caller, Skill: skill,
			Usage: &Usage{WallMS: n}, Details: map[string]any{key: val, key + "n": n, "z" + key: []string{val}}}}
		want, err := encodeStd(u)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encode(u)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("\ngot  %s\nwant %s", got, want)
		}
	})
}
