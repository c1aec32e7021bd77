package manifest

import (
	"encoding/json"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestParseOrigin(t *testing.T) {
	for _, tc := range []struct {
		in, canon string
		host      string
		port      int
		wild      bool
		err       string
	}{
		{in: "https://api.example.com", canon: "https://api.example.com", host: "api.example.com", port: 443},
		{in: "HTTPS://API.Example.COM:443/", canon: "https://api.example.com", host: "api.example.com", port: 443},
		{in: "http://example.com", canon: "http://example.com", host: "example.com", port: 80},
		{in: "http://example.com:8080", canon: "http://example.com:8080", host: "example.com", port: 8080},
		{in: "https://example.com:80", canon: "https://example.com:80", host: "example.com", port: 80},
		{in: "https://*.wikipedia.org", canon: "https://*.wikipedia.org", host: "wikipedia.org", port: 443, wild: true},
		{in: "https://bücher.example", canon: "https://xn--bcher-kva.example", host: "xn--bcher-kva.example", port: 443},
		{in: "https://*.BÜCHER.example", canon: "https://*.xn--bcher-kva.example", host: "xn--bcher-kva.example", port: 443, wild: true},
		{in: "http://127.0.0.1:8080", canon: "http://127.0.0.1:8080", host: "127.0.0.1", port: 8080},
		{in: "http://[::1]:8080", canon: "http://[::1]:8080", host: "::1", port: 8080},
		{in: "https://[2001:DB8::1]", canon: "https://[2001:db8::1]", host: "2001:db8::1", port: 443},
		{in: "http://localhost:9000", canon: "http://localhost:9000", host: "localhost", port: 9000},
		{in: "ftp://x", err: `"ftp://x": scheme must be http or https`},
		{in: "example.com", err: `"example.com": want scheme://host[:port]`},
		{in: "https://", err: `"https://": empty host`},
		{in: "https://x.org/path", err: `"https://x.org/path": a path is not allowed`},
		{in: "https://x.org//", err: `"https://x.org//": a path is not allowed`},
		{in: "https://x.org?q", err: `"https://x.org?q": a query is not allowed`},
		{in: "https://x.org#f", err: `"https://x.org#f": a fragment is not allowed`},
		{in: "https://user@x.org", err: `"https://user@x.org": userinfo is not allowed`},
		{in: "https://x.*.org", err: `"https://x.*.org": only one leading "*." label is allowed`},
		{in: "https://*", err: `"https://*": only one leading "*." label is allowed`},
		{in: "https://*.com", err: `"https://*.com": a wildcard must cover a domain of at least two labels`},
		{in: "https://*.10.0.0.1", err: `"https://*.10.0.0.1": a wildcard cannot cover an IP address`},
		{in: "https://x.org:0", err: `"https://x.org:0": bad port "0"`},
		{in: "https://x.org:", err: `"https://x.org:": empty port`},
		{in: "https://x.org:+80", err: `"https://x.org:+80": bad port "+80"`},
		{in: "https://::1", err: `"https://::1": IPv6 addresses must be in brackets`},
		{in: "https://[::1", err: `"https://[::1": unclosed [ in IPv6 address`},
		{in: "https://[fe80::1%eth0]", err: `"https://[fe80::1%eth0]": bad IPv6 address in brackets`},
		{in: "https://[1.2.3.4]", err: `"https://[1.2.3.4]": bad IPv6 address in brackets`},
		{in: "https://x.org.", err: `"https://x.org.": trailing dot in host`},
		{in: "https://a..b", err: `"https://a..b": empty label in host`},
		{in: "https://under_score.org", err: `"https://under_score.org": bad host name: idna: disallowed rune U+005F`},
		{in: "https://0x7f.1", err: `"https://0x7f.1": numeric host that is not a valid IPv4 address`},
		{in: "https://1.2.3", err: `"https://1.2.3": numeric host that is not a valid IPv4 address`},
		{in: "https://a b.org", err: `"https://a b.org": spaces and control characters are not allowed`},
	} {
		o, err := ParseOrigin(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s: got %v (%v), want error %s", tc.in, err, o, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if o.String() != tc.canon || o.Host != tc.host || o.Port != tc.port || o.Wildcard != tc.wild {
			t.Errorf("%s: got %#v %s", tc.in, o, o)
		}
		// The canonical form parses back to itself.
		if o2, err := ParseOrigin(o.String()); err != nil || o2 != o {
			t.Errorf("%s: canonical %s re-parses to %v, %v", tc.in, o, o2, err)
		}
	}
}

func TestSize(t *testing.T) {
	for _, tc := range []struct {
		in    string
		n     int64
		canon string
		err   bool
	}{
		{in: "64MiB", n: 64 << 20, canon: "64MiB"},
		{in: "512KiB", n: 512 << 10, canon: "512KiB"},
		{in: "1GB", n: 1e9, canon: "1GB"},
		{in: "1kB", n: 1000, canon: "1KB"},
		{in: "1024", n: 1024, canon: "1KiB"},
		{in: "1000", n: 1000, canon: "1KB"},
		{in: "1001", n: 1001, canon: "1001"},
		{in: "3B", n: 3, canon: "3"},
		{in: "4GiB", n: 4 << 30, canon: "4GiB"},
		{in: "2TiB", n: 2 << 40, canon: "2TiB"},
		{in: "0", n: 0, canon: "0"},
		{in: "1.5GiB", err: true},
		{in: "-1", err: true},
		{in: "64 MiB", err: true},
		{in: "64mib", err: true},
		{in: "MiB", err: true},
		{in: "", err: true},
		{in: "99999999999TiB", err: true},
		{in: "99999999999999999999", err: true},
	} {
		s, err := ParseSize(tc.in)
		if tc.err {
			if err == nil {
				t.Errorf("%q: parsed as %d", tc.in, s)
			}
			continue
		}
		if err != nil || int64(s) != tc.n || s.String() != tc.canon {
			t.Errorf("%q: got %d %q %v, want %d %q", tc.in, s, s, err, tc.n, tc.canon)
		}
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in  string
		d   time.Duration
		err bool
	}{
		{in: "10s", d: 10 * time.Second},
		{in: "1m30s", d: 90 * time.Second},
		{in: "500ms", d: 500 * time.Millisecond},
		{in: "10", err: true},
		{in: "ten seconds", err: true},
		{in: "", err: true},
	} {
		d, err := ParseDuration(tc.in)
		if tc.err != (err != nil) || time.Duration(d) != tc.d {
			t.Errorf("%q: got %v, %v", tc.in, d, err)
		}
	}
}

// Durations print as people write them (UX review B9): no zero units at the end.
func TestDurationString(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Minute: "10m", time.Hour: "1h", 90 * time.Second: "1m30s", 500 * time.Millisecond: "500ms",
		150 * time.Minute: "2h30m", time.Hour + 5*time.Second: "1h0m5s", 2500 * time.Millisecond: "2.5s", 0: "0s", 10 * time.Second: "10s",
	} {
		got := Duration(d).String()
		if got != want {
			t.Errorf("Duration(%v).String() = %q, want %q", d, got, want)
		}
		if back, err := ParseDuration(got); err != nil || time.Duration(back) != d {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", got, back, err, d)
		}
	}
}

func TestValueMarshalling(t *testing.T) {
	type doc struct {
		O Origin   `json:"o" yaml:"o"`
		S Size     `json:"s" yaml:"s"`
		D Duration `json:"d" yaml:"d"`
		A Access   `json:"a" yaml:"a"`
	}
	in := doc{Origin{"https", "wikipedia.org", 8443, true}, 64 << 20, Duration(90 * time.Second), AccessReadWrite}
	j, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(j) != `{"o":"https://*.wikipedia.org:8443","s":"64MiB","d":"1m30s","a":"read-write"}` {
		t.Errorf("json: %s", j)
	}
	var back doc
	if err := json.Unmarshal(j, &back); err != nil || back != in {
		t.Errorf("json back: %+v %v", back, err)
	}
	y, err := yaml.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(y) != "o: https://*.wikipedia.org:8443\ns: 64MiB\nd: 1m30s\na: read-write\n" {
		t.Errorf("yaml: %s", y)
	}
	var yback doc
	if err := yaml.Unmarshal(y, &yback); err != nil || yback != in {
		t.Errorf("yaml back: %+v %v", yback, err)
	}
	if err := json.Unmarshal([]byte(`{"o":"ftp://x"}`), &back); err == nil {
		t.Error("bad origin accepted from JSON")
	}
}
