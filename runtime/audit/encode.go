package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// A line is encoded in two steps, so that the part that is the same wherever the line
// lands in the chain is encoded once, by the appender, outside the Log's lock:
//
//	body:  "time":"…",<the record's fields>          (appendBody, by Append/Enqueue)
//	line:  {"seq":N,<body>,"prev":"…","hash":"…"}\n   (appendLine, by the batch leader)
//
// The bytes are exactly encoding/json's encoding of unhashed with the hash spliced in
// (TestEncodeMatchesEncodingJSON and FuzzEncode hold the two together): lines written
// before and after this encoder are the same, and a verifier in any language reads
// them the same way.

// appendBody appends the body of a line holding r at time t (RFC 3339 with
// nanoseconds, UTC, as a string): what follows `{"seq":N,` up to `,"prev":`. It fails
// only for a Details value JSON cannot encode.
func appendBody(dst []byte, t string, r *Record) ([]byte, error) {
	dst = append(dst, `"time":`...)
	dst = appendJSONString(dst, t)
	return appendFields(dst, r)
}

// appendBodyAt is appendBody at t, written as RFC 3339 with nanoseconds in UTC.
func appendBodyAt(dst []byte, t time.Time, r *Record) ([]byte, error) {
	dst = append(dst, `"time":"`...)
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano) // digits and -:.TZ, nothing to escape
	dst = append(dst, '"')
	return appendFields(dst, r)
}

// appendFields appends the record's fields, from the comma before "event".
func appendFields(dst []byte, r *Record) ([]byte, error) {
	dst = append(dst, `,"event":`...)
	dst = appendJSONString(dst, r.Event)
	for _, f := range [...]struct{ key, val string }{
		{`,"caller":`, r.Caller},
		{`,"skill":`, r.Skill},
		{`,"version":`, r.Version},
		{`,"manifestDigest":`, r.ManifestDigest},
		{`,"codeDigest":`, r.CodeDigest},
		{`,"callId":`, r.CallID},
		{`,"outcome":`, r.Outcome},
		{`,"reason":`, r.Reason},
	} {
		if f.val != "" {
			dst = append(dst, f.key...)
			dst = appendJSONString(dst, f.val)
		}
	}
	if u := r.Usage; u != nil {
		dst = append(dst, `,"usage":{"wallMs":`...)
		dst = strconv.AppendInt(dst, u.WallMS, 10)
		dst = append(dst, `,"peakMemoryBytes":`...)
		dst = strconv.AppendInt(dst, u.PeakMemoryBytes, 10)
		dst = append(dst, `,"outputBytes":`...)
		dst = strconv.AppendInt(dst, u.OutputBytes, 10)
		dst = append(dst, `,"requests":`...)
		dst = strconv.AppendInt(dst, int64(u.Requests), 10)
		dst = append(dst, `,"deniedRequests":`...)
		dst = strconv.AppendInt(dst, int64(u.DeniedRequests), 10)
		dst = append(dst, '}')
	}
	if len(r.Details) > 0 {
		dst = append(dst, `,"details":`...)
		var err error
		if dst, err = appendDetails(dst, r.Details); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// appendDetails encodes a details map as encoding/json does: keys in sorted order.
// The values skillbox writes on every call (strings and integers) are encoded here;
// any other value goes through encoding/json.
func appendDetails(dst []byte, d map[string]any) ([]byte, error) {
	var small [8]string
	keys := small[:0]
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		switch v := d[k].(type) {
		case string:
			dst = appendJSONString(dst, v)
		case int:
			dst = strconv.AppendInt(dst, int64(v), 10)
		case int64:
			dst = strconv.AppendInt(dst, v, 10)
		case bool:
			dst = strconv.AppendBool(dst, v)
		case nil:
			dst = append(dst, "null"...)
		default:
			b, err := json.Marshal(v)
			if err != nil {
				return dst, err
			}
			dst = append(dst, b...)
		}
	}
	return append(dst, '}'), nil
}

// appendJSONString appends s as a JSON string, exactly as encoding/json writes it. A
// string of printable ASCII that needs no escape (every string skillbox writes on a
// call's path) is copied; any other goes through encoding/json.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// lineLen is the length of the line (newline included) holding a body of n bytes at
// sequence number seq.
func lineLen(seq uint64, n int) int {
	return len(`{"seq":`) + digits(seq) + 1 + n + len(`,"prev":"`) + 64 + len(`"`) + hashSuffixLen + 1
}

func digits(n uint64) int {
	d := 1
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
}

// appendLine appends the whole line of body at seq after a line whose sha256 is prev
// (hex), and returns it with the sha256 of the new line (without its newline: the next
// line's prev).
func appendLine(dst []byte, seq uint64, body, prev []byte) ([]byte, [sha256.Size]byte) {
	start := len(dst)
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, ',')
	dst = append(dst, body...)
	dst = append(dst, `,"prev":"`...)
	dst = append(dst, prev...)
	dst = append(dst, `"}`...)
	sum := sha256.Sum256(dst[start:])
	dst = dst[:len(dst)-1] // the hash goes in as the last field
	dst = append(dst, `,"hash":"`...)
	dst = hex.AppendEncode(dst, sum[:])
	dst = append(dst, `"}`...)
	lineSum := sha256.Sum256(dst[start:])
	return append(dst, '\n'), lineSum
}

// encode returns the full line of u, newline included.
func encode(u unhashed) ([]byte, error) {
	body, err := appendBody(nil, u.Time, &u.Record)
	if err != nil {
		return nil, err
	}
	line, _ := appendLine(make([]byte, 0, lineLen(u.Seq, len(body))), u.Seq, body, []byte(u.Prev))
	return line, nil
}

// hexOf is a sha256 in hex, as prev and hash are written.
func hexOf(sum [sha256.Size]byte) (h [64]byte) {
	hex.Encode(h[:], sum[:])
	return h
}
