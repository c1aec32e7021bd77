package egress

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/idna"

	"github.com/skillbox-dev/skillbox/manifest"
)

// Target is a URL's origin after normalisation: what the policy compares.
type Target struct {
	Scheme string     // "http" or "https"
	Host   string     // lowercase ASCII name, or the canonical text of IP
	Port   int        // explicit or the scheme's default
	IP     netip.Addr // set when the host is an IP literal (in any accepted form)
}

// HostPort is the "host:port" to dial, with IPv6 literals bracketed.
func (t Target) HostPort() string {
	if t.IP.IsValid() {
		return netip.AddrPortFrom(t.IP, uint16(t.Port)).String()
	}
	return t.Host + ":" + strconv.Itoa(t.Port)
}

// ParseTarget normalises u's origin or says why it is refused. It refuses userinfo,
// schemes other than http and https, empty hosts, a trailing dot, IPv6 zones and
// malformed numeric hosts; it turns IDNs into punycode and odd IPv4 forms (decimal,
// octal, hex, IPv4-mapped IPv6) into the address they really denote.
func ParseTarget(u *url.URL) (Target, error) {
	var t Target
	if u == nil {
		return t, fmt.Errorf("no URL")
	}
	t.Scheme = strings.ToLower(u.Scheme)
	if t.Scheme != "http" && t.Scheme != "https" {
		return t, fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.User != nil {
		return t, fmt.Errorf("credentials in the URL are not allowed")
	}
	if u.Opaque != "" {
		return t, fmt.Errorf("opaque URL is not allowed")
	}
	port, err := parsePort(u.Port(), t.Scheme)
	if err != nil {
		return t, err
	}
	t.Port = port
	host := u.Hostname()
	if host == "" {
		return t, fmt.Errorf("empty host")
	}
	// A bracketed host is IPv6 and nothing else.
	if strings.HasPrefix(u.Host, "[") {
		if strings.Contains(host, "%") {
			return t, fmt.Errorf("IPv6 zone in host %q is not allowed", host)
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return t, fmt.Errorf("invalid IPv6 literal %q", host)
		}
		t.IP = a.Unmap()
		t.Host = t.IP.String()
		return t, nil
	}
	if strings.HasSuffix(host, ".") {
		// "example.com." names the same host, but also sidesteps resolver search lists
		// and string compares; one spelling per host keeps the policy simple.
		return t, fmt.Errorf("host %q ends with a dot; write it without", host)
	}
	if a, ok, err := parseIPv4Loose(host); err != nil {
		return t, err
	} else if ok {
		t.IP = a
		t.Host = a.String()
		return t, nil
	}
	name, err := normaliseName(host)
	if err != nil {
		return t, err
	}
	t.Host = name
	return t, nil
}

func parsePort(p, scheme string) (int, error) {
	if p == "" {
		if scheme == "https" {
			return 443, nil
		}
		return 80, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || p[0] == '0' {
		return 0, fmt.Errorf("invalid port %q", p)
	}
	return n, nil
}

// normaliseName lowercases and converts an IDN to punycode under the IDNA lookup
// profile, refusing anything that is not a valid DNS name.
func normaliseName(host string) (string, error) {
	a := strings.ToLower(host)
	if !isLDH(a) {
		// Only non-ASCII names need IDNA; ASCII ones are checked label by label below.
		var err error
		if a, err = idna.Lookup.ToASCII(host); err != nil {
			return "", fmt.Errorf("invalid host %q: %v", host, err)
		}
		a = strings.ToLower(a)
	}
	if a == "" || len(a) > 253 || strings.HasSuffix(a, ".") {
		return "", fmt.Errorf("invalid host %q", host)
	}
	for _, label := range strings.Split(a, ".") {
		if label == "" || len(label) > 63 {
			return "", fmt.Errorf("invalid host %q: bad label", host)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("invalid host %q: character %q", host, c)
			}
		}
	}
	return a, nil
}

// parseIPv4Loose reads a host the way inet_aton and browsers do when its last label
// is numeric (decimal, 0-octal or 0x-hex, 1 to 4 parts). ok is false for a host that
// is a name; err is set for a numeric-looking host that is not a valid address, which
// some resolver would otherwise interpret in its own way.
func parseIPv4Loose(host string) (netip.Addr, bool, error) {
	if !isNumericLabel(host[strings.LastIndexByte(host, '.')+1:]) {
		return netip.Addr{}, false, nil
	}
	parts := strings.Split(host, ".")
	bad := fmt.Errorf("invalid IPv4 literal %q", host)
	if len(parts) > 4 {
		return netip.Addr{}, true, bad
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		v, ok := parseNumber(p)
		if !ok {
			return netip.Addr{}, true, bad
		}
		vals[i] = v
	}
	// All but the last part are single bytes; the last fills the remaining bytes.
	var n uint64
	for _, v := range vals[:len(vals)-1] {
		if v > 255 {
			return netip.Addr{}, true, bad
		}
		n = n<<8 | v
	}
	rest := uint(8 * (5 - len(vals)))
	last := vals[len(vals)-1]
	if last >= 1<<rest {
		return netip.Addr{}, true, bad
	}
	n = n<<rest | last
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true, nil
}

func isNumericLabel(s string) bool {
	if s == "" {
		return false
	}
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		return true // "0x" alone or with non-hex digits is still refused, not resolved
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func parseNumber(s string) (uint64, bool) {
	base := 10
	switch {
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		s, base = s[2:], 16
		if s == "" {
			return 0, true // "0x" is zero for inet_aton
		}
	case len(s) > 1 && s[0] == '0':
		s, base = s[1:], 8
	}
	if s == "" {
		return 0, false
	}
	v, err := strconv.ParseUint(s, base, 32)
	if err != nil {
		return 0, false
	}
	return v, true
}

// Match returns the granted origin that t falls under. An exact (non-wildcard) origin
// wins over a wildcard one, because only exact origins may reach special addresses.
func Match(origins []manifest.Origin, t Target) (manifest.Origin, bool) {
	var wild *manifest.Origin
	for i := range origins {
		o := origins[i]
		if !strings.EqualFold(o.Scheme, t.Scheme) || o.Port != t.Port {
			continue
		}
		oh := originHost(o)
		if !o.Wildcard {
			if oh == t.Host {
				return o, true
			}
			continue
		}
		// A wildcard covers names only, never IP literals, and needs at least one label.
		if !t.IP.IsValid() && len(t.Host) > len(oh)+1 && strings.HasSuffix(t.Host, "."+oh) && wild == nil {
			wild = &origins[i]
		}
	}
	if wild != nil {
		return *wild, true
	}
	return manifest.Origin{}, false
}

// originHost is the origin's host in the same canonical form as Target.Host, so an
// origin written "[::ffff:7f00:1]" or "0x7f.1" compares as the address it denotes.
func originHost(o manifest.Origin) string {
	h := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(o.Host, "["), "]"))
	if !strings.Contains(h, ":") && !isNumericLabel(h[strings.LastIndexByte(h, '.')+1:]) {
		return h // a name: the common case, without parsing
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().String()
	}
	if a, ok, err := parseIPv4Loose(h); ok && err == nil {
		return a.String()
	}
	return h
}

// Check parses u and matches it against origins: the whole origin policy short of the
// dialled-address check, which happens at dial time (see CheckAddr).
func Check(origins []manifest.Origin, u *url.URL) (Target, manifest.Origin, error) {
	t, err := ParseTarget(u)
	if err != nil {
		return t, manifest.Origin{}, err
	}
	o, ok := Match(origins, t)
	if !ok {
		return t, o, fmt.Errorf("origin %s://%s is not granted", t.Scheme, t.HostPort())
	}
	return t, o, nil
}

// isLDH reports whether s holds only lowercase letters, digits, '-', '_' and '.'.
func isLDH(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
