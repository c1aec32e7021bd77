package isolation

import (
	"bytes"
	"io"
	"slices"
	"unicode/utf8"
)

// Placeholder is the text a brokered secret's value is replaced with wherever skillbox
// redacts it: "[skillbox:secret NAME]". It needs no escaping in JSON, so redacted JSON
// stays JSON.
func Placeholder(name string) string { return "[skillbox:secret " + name + "]" }

// Redactor replaces the values of brokered secrets with their placeholders. It is the
// one redaction every part of skillbox uses: the egress Guard on response headers and
// bodies (wasm host function and container proxy alike), the engine on a call's
// output, logs, refusal messages and audit records.
//
// It finds each value as it is and in the spellings programs echo it in, character by
// character and in any mix: percent-encoded (either case of hex digit, '+' for a
// space), JSON-escaped (\uXXXX in either case, surrogate pairs, \/ and the other short
// escapes) and as an HTML character reference (&#NN;, &#xHH;, &amp; and its kin). So
// every encoder's JSON and URL escaping is covered, not one library's. It cannot find
// a value that was transformed otherwise (compressed, base64, hashed, split, reversed,
// case-changed); see docs/secrets.md for what that means. A nil *Redactor redacts
// nothing.
type Redactor struct {
	targets []target
	first   []byte // the bytes a spelling of some value can begin with, each once
	max     int    // length of the longest spelling of any value
}

// target is one value to find: its characters and its placeholder.
type target struct {
	runes []rune
	raw   [][]byte // each rune's UTF-8 bytes
	repl  []byte
}

// NewRedactor returns the Redactor for secrets, or nil when there is nothing to redact
// (no secrets, or only empty values).
func NewRedactor(secrets []BrokeredSecret) *Redactor {
	r := &Redactor{}
	seen := map[string]bool{}
	add := func(v, name string) {
		if v == "" || seen[v] {
			return
		}
		seen[v] = true
		t := target{repl: []byte(Placeholder(name))}
		longest := 0
		for i, w := 0, 0; i < len(v); i += w {
			c, n := utf8.DecodeRuneInString(v[i:])
			w = n
			t.runes = append(t.runes, c)
			t.raw = append(t.raw, []byte(v[i:i+n]))
			longest += maxSpelling(c, n)
			if i == 0 {
				for _, b := range firstBytes(c, v[:n]) {
					if bytes.IndexByte(r.first, b) < 0 {
						r.first = append(r.first, b)
					}
				}
			}
		}
		r.targets = append(r.targets, t)
		r.max = max(r.max, longest)
	}
	for _, s := range secrets {
		v := s.Secret
		if v == "" {
			v = s.Value
		}
		if v == "" {
			continue
		}
		add(v, s.Name)
		if s.Value != "" && !bytes.Contains([]byte(s.Value), []byte(v)) {
			add(s.Value, s.Name)
		}
	}
	if len(r.targets) == 0 {
		return nil
	}
	return r
}

// maxSpelling is the length of the longest spelling match accepts for c (n UTF-8
// bytes): %XX per byte, a \uXXXX escape or a surrogate pair, or a character reference.
func maxSpelling(c rune, n int) int {
	l := max(3*n, 6, len("&#x;")+len(hexDigits(c)), len("&#;")+len(decDigits(c)), len("&quot;"))
	if c > 0xFFFF {
		l = max(l, 12)
	}
	return l
}

// firstBytes are the bytes a spelling of c (raw: its UTF-8 bytes) may begin with.
func firstBytes(c rune, raw string) []byte {
	out := []byte{raw[0], '%', '\\', '&'}
	if c == ' ' {
		out = append(out, '+')
	}
	return out
}

// Empty reports whether r redacts nothing.
func (r *Redactor) Empty() bool { return r == nil }

// Bytes returns b with every value replaced. b is returned as it is when nothing
// matched.
func (r *Redactor) Bytes(b []byte) []byte {
	if r == nil {
		return b
	}
	out, rest := r.scan(nil, b, len(b))
	if out == nil {
		return b
	}
	return append(out, rest...)
}

// String returns s with every value replaced.
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	out, rest := r.scan(nil, []byte(s), len(s))
	if out == nil {
		return s
	}
	return string(append(out, rest...))
}

// Strings returns ss with every value replaced, as a new slice when any was.
func (r *Redactor) Strings(ss []string) []string {
	if r == nil {
		return ss
	}
	var out []string
	for i, s := range ss {
		if t := r.String(s); t != s {
			if out == nil {
				out = slices.Clone(ss)
			}
			out[i] = t
		}
	}
	if out == nil {
		return ss
	}
	return out
}

// scan appends to out the redaction of b's bytes before cut, replacing every match
// that starts before cut (it must lie wholly in b), and returns what is left of b
// from where it stopped: at cut, or past a match that ran beyond it. When nothing
// matched, out stays nil and rest starts at cut. At a position the longest match of
// any value wins.
func (r *Redactor) scan(out, b []byte, cut int) ([]byte, []byte) {
	// next[k] is where r.first[k] next occurs at or after i (cut when it does not
	// before cut): found with bytes.IndexByte, so text without any of them is skipped
	// at memchr speed rather than looked at byte by byte.
	var nextBuf [16]int
	next := nextBuf[:0]
	for range r.first {
		next = append(next, -1)
	}
	i, done := 0, 0 // done: b[:done] is in out (or unchanged when out is nil)
	for i < cut {
		at := cut
		for k, c := range r.first {
			if next[k] < i {
				if j := bytes.IndexByte(b[i:cut], c); j >= 0 {
					next[k] = i + j
				} else {
					next[k] = cut
				}
			}
			at = min(at, next[k])
		}
		if at >= cut {
			break
		}
		i = at
		end, ti := -1, -1
		for k := range r.targets {
			if e := r.targets[k].match(b, i); e > end {
				end, ti = e, k
			}
		}
		if end < 0 {
			i++
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(b))
		}
		out = append(out, b[done:i]...)
		out = append(out, r.targets[ti].repl...)
		i, done = end, end
	}
	if out == nil {
		return nil, b[cut:]
	}
	if done < cut {
		out = append(out, b[done:cut]...)
		done = cut
	}
	return out, b[done:]
}

// match returns the end of the longest spelling of t that begins at b[at:], or -1.
// It walks the value a character at a time, keeping the set of offsets the spellings
// so far can end at (each offset once), so a value whose characters begin several
// spellings ('%', '\\', '&') cannot make it slow.
func (t *target) match(b []byte, at int) int {
	var bufA, bufB [8]int
	cur := append(bufA[:0], at)
	next := bufB[:0]
	var sp [4]int
	for k := range t.runes {
		next = next[:0]
		for _, off := range cur {
			for _, n := range spellings(sp[:0], b[off:], t.runes[k], t.raw[k]) {
				if !slices.Contains(next, off+n) {
					next = append(next, off+n)
				}
			}
		}
		if len(next) == 0 {
			return -1
		}
		cur, next = next, cur
	}
	return slices.Max(cur)
}

// spellings returns the lengths of the spellings of c (raw: its UTF-8 bytes) that b
// begins with.
func spellings(ns []int, b []byte, c rune, raw []byte) []int {
	if bytes.HasPrefix(b, raw) {
		ns = append(ns, len(raw))
	}
	if len(b) == 0 {
		return ns
	}
	switch b[0] {
	case '%':
		if n := percent(b, raw); n > 0 {
			ns = append(ns, n)
		}
	case '+':
		if c == ' ' {
			ns = append(ns, 1)
		}
	case '\\':
		if n := jsonEscape(b, c); n > 0 {
			ns = append(ns, n)
		}
	case '&':
		if n := charRef(b, c); n > 0 {
			ns = append(ns, n)
		}
	}
	return ns
}

// percent is the length of raw's bytes each written %XX at the start of b, or 0.
func percent(b, raw []byte) int {
	if len(b) < 3*len(raw) {
		return 0
	}
	for i, x := range raw {
		p := b[3*i:]
		h, ok1 := unhex(p[1])
		l, ok2 := unhex(p[2])
		if p[0] != '%' || !ok1 || !ok2 || h<<4|l != x {
			return 0
		}
	}
	return 3 * len(raw)
}

// jsonEscape is the length of a JSON escape of c at the start of b, or 0.
func jsonEscape(b []byte, c rune) int {
	if len(b) < 2 {
		return 0
	}
	if b[1] != 'u' {
		if shortEscape(b[1]) == c {
			return 2
		}
		return 0
	}
	u1, ok := hex4(b[2:])
	if !ok {
		return 0
	}
	if c <= 0xFFFF {
		if rune(u1) == c {
			return 6
		}
		return 0
	}
	if len(b) < 12 || b[6] != '\\' || b[7] != 'u' {
		return 0
	}
	u2, ok := hex4(b[8:])
	if !ok || u1 < 0xD800 || u1 > 0xDBFF || u2 < 0xDC00 || u2 > 0xDFFF {
		return 0
	}
	if 0x10000+(rune(u1)-0xD800)<<10+(rune(u2)-0xDC00) == c {
		return 12
	}
	return 0
}

// shortEscape is the character the JSON escape backslash-x stands for, or -1.
func shortEscape(x byte) rune {
	switch x {
	case '"', '\\', '/':
		return rune(x)
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return -1
}

// charRef is the length of an HTML character reference to c at the start of b (&#NN;
// or &#xHH; without leading zeros, or a named one for &<>"'), or 0.
func charRef(b []byte, c rune) int {
	for _, named := range []struct {
		s string
		c rune
	}{{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}} {
		if named.c == c && bytes.HasPrefix(b, []byte(named.s)) {
			return len(named.s)
		}
	}
	if len(b) < 3 || b[1] != '#' {
		return 0
	}
	digits, prefix := decDigits(c), 2
	if b[2] == 'x' || b[2] == 'X' {
		digits, prefix = hexDigits(c), 3
	}
	rest := b[prefix:]
	if len(rest) < len(digits)+1 || rest[len(digits)] != ';' || !bytes.EqualFold(rest[:len(digits)], []byte(digits)) {
		return 0
	}
	return prefix + len(digits) + 1
}

func decDigits(c rune) string {
	var buf [12]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + c%10)
		c /= 10
		if c == 0 {
			return string(buf[i:])
		}
	}
}

func hexDigits(c rune) string {
	const digits = "0123456789abcdef"
	var buf [8]byte
	i := len(buf)
	for {
		i--
		buf[i] = digits[c&0xF]
		c >>= 4
		if c == 0 {
			return string(buf[i:])
		}
	}
}

func hex4(b []byte) (uint16, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var v uint16
	for _, x := range b[:4] {
		d, ok := unhex(x)
		if !ok {
			return 0, false
		}
		v = v<<4 | uint16(d)
	}
	return v, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Reader returns a reader of rc's bytes with every value replaced, also one that
// spans two reads: it holds back the last bytes that could begin a value until more
// arrive. Close closes rc. With a nil Redactor it returns rc.
func (r *Redactor) Reader(rc io.ReadCloser) io.ReadCloser {
	if r == nil {
		return rc
	}
	return &redactReader{r: r, src: rc}
}

type redactReader struct {
	r       *Redactor
	src     io.ReadCloser
	pending []byte // read, not yet scanned to the end
	out     []byte // redacted, not yet returned
	err     error  // the source's error, returned once out and pending are drained
}

func (z *redactReader) Read(p []byte) (int, error) {
	for len(z.out) == 0 {
		if z.err != nil {
			if len(z.pending) > 0 {
				z.out = z.r.Bytes(z.pending)
				z.pending = nil
				continue
			}
			return 0, z.err
		}
		buf := make([]byte, max(len(p), 4<<10))
		n, err := z.src.Read(buf)
		z.pending = append(z.pending, buf[:n]...)
		z.err = err
		if err != nil {
			continue
		}
		// Bytes before cut can no longer be the start of a value that is not all here.
		if cut := len(z.pending) - (z.r.max - 1); cut > 0 {
			var out, rest []byte
			out, rest = z.r.scan(nil, z.pending, cut)
			if out == nil {
				out = z.pending[:len(z.pending)-len(rest)]
			}
			z.out = append([]byte(nil), out...)
			z.pending = append([]byte(nil), rest...)
		}
	}
	n := copy(p, z.out)
	z.out = z.out[n:]
	return n, nil
}

func (z *redactReader) Close() error { return z.src.Close() }
