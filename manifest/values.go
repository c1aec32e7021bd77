package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/net/idna"
)

// ParseOrigin parses scheme://host[:port] into its canonical form: lowercase scheme and
// host, IDNs in punycode, the default port filled in, at most one leading "*." label.
// A lone trailing "/" is tolerated (people paste it); any other path, a query, a
// fragment or userinfo is refused.
func ParseOrigin(s string) (Origin, error) {
	o, err := parseOrigin(s)
	if err != nil {
		return Origin{}, fmt.Errorf("%q: %s", s, err)
	}
	return o, nil
}

func parseOrigin(s string) (Origin, error) {
	var o Origin
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return o, errors.New("want scheme://host[:port]")
	}
	o.Scheme = strings.ToLower(scheme)
	switch o.Scheme {
	case "https":
		o.Port = 443
	case "http":
		o.Port = 80
	default:
		return o, errors.New("scheme must be http or https")
	}
	if strings.ContainsAny(rest, "@") {
		return o, errors.New("userinfo is not allowed")
	}
	if strings.ContainsAny(rest, "?") {
		return o, errors.New("a query is not allowed")
	}
	if strings.ContainsAny(rest, "#") {
		return o, errors.New("a fragment is not allowed")
	}
	rest = strings.TrimSuffix(rest, "/")
	if strings.ContainsAny(rest, "/\\") {
		return o, errors.New("a path is not allowed")
	}
	for _, r := range rest {
		if r <= ' ' || r == 0x7f {
			return o, errors.New("spaces and control characters are not allowed")
		}
	}
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 {
			return o, errors.New("unclosed [ in IPv6 address")
		}
		host, port = rest[1:end], rest[end+1:]
		if port != "" {
			if !strings.HasPrefix(port, ":") {
				return o, errors.New("unexpected text after ]")
			}
			port = port[1:]
			if port == "" {
				return o, errors.New("empty port")
			}
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return o, errors.New("bad IPv6 address in brackets")
		}
		o.Host = a.String()
	} else {
		if i := strings.LastIndex(rest, ":"); i >= 0 {
			host, port = rest[:i], rest[i+1:]
			if port == "" {
				return o, errors.New("empty port")
			}
		}
		if host == "" {
			return o, errors.New("empty host")
		}
		if strings.Contains(host, ":") {
			return o, errors.New("IPv6 addresses must be in brackets")
		}
		if strings.HasPrefix(host, "*.") {
			o.Wildcard = true
			host = host[2:]
		}
		if strings.Contains(host, "*") {
			return o, errors.New("only one leading \"*.\" label is allowed")
		}
		if a, err := netip.ParseAddr(host); err == nil {
			if !a.Is4() {
				return o, errors.New("IPv6 addresses must be in brackets")
			}
			o.Host = a.String()
		} else {
			h, err := canonicalHost(host)
			if err != nil {
				return o, err
			}
			o.Host = h
		}
		if o.Wildcard {
			if _, err := netip.ParseAddr(o.Host); err == nil {
				return o, errors.New("a wildcard cannot cover an IP address")
			}
			if !strings.Contains(o.Host, ".") {
				return o, errors.New("a wildcard must cover a domain of at least two labels")
			}
		}
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '+' || port[0] == '0' {
			return o, fmt.Errorf("bad port %q", port)
		}
		o.Port = n
	}
	return o, nil
}

// canonicalHost lowercases a DNS name and converts it to punycode, refusing what a
// resolver might read differently (a trailing dot, an all-numeric last label).
func canonicalHost(h string) (string, error) {
	if strings.HasSuffix(h, ".") {
		return "", errors.New("trailing dot in host")
	}
	a, err := idna.Lookup.ToASCII(h)
	if err != nil {
		return "", fmt.Errorf("bad host name: %v", err)
	}
	a = strings.ToLower(a)
	if len(a) > 253 {
		return "", errors.New("host name longer than 253 characters")
	}
	labels := strings.Split(a, ".")
	for _, l := range labels {
		if l == "" {
			return "", errors.New("empty label in host")
		}
		if len(l) > 63 {
			return "", errors.New("host label longer than 63 characters")
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return "", fmt.Errorf("bad character %q in host", r)
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" || strings.HasPrefix(last, "0x") {
		return "", errors.New("numeric host that is not a valid IPv4 address")
	}
	return a, nil
}

// String gives the canonical form: https://*.example.com, the default port omitted,
// IPv6 literals in brackets.
func (o Origin) String() string {
	var b strings.Builder
	b.WriteString(o.Scheme)
	b.WriteString("://")
	if o.Wildcard {
		b.WriteString("*.")
	}
	if strings.Contains(o.Host, ":") {
		b.WriteString("[" + o.Host + "]")
	} else {
		b.WriteString(o.Host)
	}
	if !(o.Scheme == "https" && o.Port == 443 || o.Scheme == "http" && o.Port == 80) {
		b.WriteString(":" + strconv.Itoa(o.Port))
	}
	return b.String()
}

// IP returns the host as an address when it is an IP literal.
func (o Origin) IP() (netip.Addr, bool) {
	a, err := netip.ParseAddr(o.Host)
	return a, err == nil
}

// MarshalText implements encoding.TextMarshaler (JSON and YAML use the string form).
func (o Origin) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (o *Origin) UnmarshalText(b []byte) error {
	v, err := ParseOrigin(string(b))
	if err != nil {
		return err
	}
	*o = v
	return nil
}

// MarshalYAML writes the canonical string.
func (o Origin) MarshalYAML() (any, error) { return o.String(), nil }

// UnmarshalYAML reads the string form.
func (o *Origin) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	return o.UnmarshalText([]byte(s))
}

type sizeUnit struct {
	suffix string
	mult   int64
}

// ParseSize reads a byte count: a whole number, optionally followed by one of B, KB/kB,
// MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), with no space.
func ParseSize(s string) (Size, error) {
	num, mult := s, int64(1)
	// Longest suffixes first so "MiB" is tried before "B".
	for _, u := range [...]sizeUnit{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"kB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
		{"B", 1},
	} {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	if num == "" || strings.Trim(num, "0123456789") != "" {
		return 0, fmt.Errorf("%q: want a whole number with an optional unit (B, KiB, MiB, GiB, KB, MB, GB)", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return Size(n * mult), nil
}

// String gives the shortest exact form: a binary unit when it divides evenly, else a
// decimal one, else plain bytes.
func (s Size) String() string {
	n := int64(s)
	if n > 0 {
		for _, u := range []sizeUnit{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}} {
			if n%u.mult == 0 {
				return strconv.FormatInt(n/u.mult, 10) + u.suffix
			}
		}
	}
	return strconv.FormatInt(n, 10)
}

// Words is the size for a message: String, with "bytes" when it has no unit
// ("16 bytes", "1 byte", "64MiB"). Budgets are shown in the manifest's own units.
func (s Size) Words() string {
	str := s.String()
	switch {
	case s == 1:
		return "1 byte"
	case strings.Trim(str, "-0123456789") == "":
		return str + " bytes"
	}
	return str
}

// MarshalText implements encoding.TextMarshaler.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalJSON writes the string form.
func (s Size) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON accepts the string form or a plain number of bytes.
func (s *Size) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		var n int64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("size: want a string or a whole number")
		}
		*s = Size(n)
		return nil
	}
	return s.UnmarshalText([]byte(str))
}

// MarshalYAML writes the string form.
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }

// UnmarshalYAML accepts the string form or a plain integer.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	return s.UnmarshalText([]byte(n.Value))
}

// ParseDuration reads a Go duration (10s, 1m30s, 500ms).
func ParseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want a duration such as 10s, 1m30s or 500ms", s)
	}
	return Duration(d), nil
}

// String gives the form people write, which ParseDuration reads back: Go's without the
// zero units at its end (10m, 1h, 1m30s, 500ms; not 10m0s or 1h0m0s).
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes the string form.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads the string form.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error { return d.UnmarshalText([]byte(n.Value)) }

// Valid reports whether a is one of the two access modes.
func (a Access) Valid() bool { return a == AccessRead || a == AccessReadWrite }
