package isolation

import (
	"bytes"
	"encoding/json"
	"io"
	"net/url"
	"slices"
	"strings"
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
// It finds each value as it is and in the forms a value takes when a program echoes
// it: JSON-escaped (with and without HTML escaping) and URL-escaped. It cannot find a
// value that was transformed otherwise (compressed, encoded, split, reversed); see
// docs/secrets.md for what that means. A nil *Redactor redacts nothing.
type Redactor struct {
	pats []pattern // longest first, so the longest match at a position wins
	max  int       // length of the longest pattern
}

type pattern struct {
	find []byte
	repl []byte
}

// NewRedactor returns the Redactor for secrets, or nil when there is nothing to redact
// (no secrets, or only empty values).
func NewRedactor(secrets []BrokeredSecret) *Redactor {
	r := &Redactor{}
	seen := map[string]bool{}
	add := func(find, name string) {
		if find == "" || seen[find] {
			return
		}
		seen[find] = true
		r.pats = append(r.pats, pattern{find: []byte(find), repl: []byte(Placeholder(name))})
		r.max = max(r.max, len(find))
	}
	for _, s := range secrets {
		v := s.Secret
		if v == "" {
			v = s.Value
		}
		if v == "" {
			continue
		}
		for _, f := range forms(v) {
			add(f, s.Name)
		}
		if s.Value != "" && !strings.Contains(s.Value, v) {
			for _, f := range forms(s.Value) {
				add(f, s.Name)
			}
		}
	}
	if len(r.pats) == 0 {
		return nil
	}
	slices.SortStableFunc(r.pats, func(a, b pattern) int { return len(b.find) - len(a.find) })
	return r
}

// forms are the spellings of v that redaction looks for.
func forms(v string) []string {
	out := []string{v, url.QueryEscape(v), url.PathEscape(v)}
	for _, html := range []bool{true, false} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if enc.Encode(v) == nil {
			s := strings.TrimSuffix(b.String(), "\n")
			out = append(out, s[1:len(s)-1]) // without the quotes
		}
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
	if r == nil || !r.contains(s) {
		return s
	}
	return string(r.Bytes([]byte(s)))
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

// contains reports whether any value occurs in s.
func (r *Redactor) contains(s string) bool {
	for _, p := range r.pats {
		if strings.Contains(s, string(p.find)) {
			return true
		}
	}
	return false
}

// scan appends to out the redaction of b's bytes before cut, replacing every match
// that starts before cut (it must lie wholly in b), and returns what is left of b
// from where it stopped: at cut, or past a match that ran beyond it. When nothing
// matched, out stays nil and rest starts at cut.
func (r *Redactor) scan(out, b []byte, cut int) ([]byte, []byte) {
	i := 0
	for i < cut {
		at, pi := -1, -1
		for k, p := range r.pats {
			j := bytes.Index(b[i:], p.find)
			if j < 0 || i+j >= cut {
				continue
			}
			if at < 0 || i+j < at { // longest first: an equal start keeps the longer one
				at, pi = i+j, k
			}
		}
		if at < 0 {
			break
		}
		if out == nil {
			out = make([]byte, 0, len(b))
		}
		out = append(out, b[i:at]...)
		out = append(out, r.pats[pi].repl...)
		i = at + len(r.pats[pi].find)
	}
	if out == nil {
		return nil, b[cut:]
	}
	if i < cut {
		out = append(out, b[i:cut]...)
		i = cut
	}
	return out, b[i:]
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
