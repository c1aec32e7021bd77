package egress

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/manifest"
)

func TestCheck(t *testing.T) {
	origins := []manifest.Origin{
		{Scheme: "https", Host: "api.example.com", Port: 443},
		{Scheme: "https", Host: "wikipedia.org", Port: 443, Wildcard: true},
		{Scheme: "http", Host: "plain.example.com", Port: 8080},
		{Scheme: "http", Host: "127.0.0.1", Port: 9000},
		{Scheme: "http", Host: "::1", Port: 9001},
		{Scheme: "https", Host: "xn--bcher-kva.example", Port: 443},
	}
	tests := []struct {
		url     string
		allowed bool
		want    string // matched host, or a fragment of the refusal
	}{
		{"https://api.example.com/v1", true, "api.example.com"},
		{"https://API.Example.COM/v1", true, "api.example.com"},
		{"https://api.example.com:443/", true, "api.example.com"},
		{"HTTPS://api.example.com/", true, "api.example.com"},
		{"http://api.example.com/", false, "not granted"},            // scheme
		{"https://api.example.com:8443/", false, "not granted"},      // port
		{"https://example.com/", false, "not granted"},               // host
		{"https://evil-api.example.com/", false, "not granted"},      // prefix trick
		{"https://api.example.com.evil.test/", false, "not granted"}, // suffix trick
		{"https://en.wikipedia.org/wiki/Go", true, "wikipedia.org"},
		{"https://a.b.wikipedia.org/", true, "wikipedia.org"},
		{"https://wikipedia.org/", false, "not granted"},    // wildcard needs a label
		{"https://badwikipedia.org/", false, "not granted"}, // not a label boundary
		{"https://en.wikipedia.org:444/", false, "not granted"},
		{"https://api.example.com./", false, "ends with a dot"},
		{"https://user:pw@api.example.com/", false, "credentials"},
		{"https://user@api.example.com/", false, "credentials"},
		{"ftp://api.example.com/", false, "scheme"},
		{"file:///etc/passwd", false, "scheme"},
		{"javascript:alert(1)", false, "scheme"},
		{"https:///path", false, "empty host"},
		{"http://plain.example.com:8080/", true, "plain.example.com"},
		{"http://plain.example.com/", false, "not granted"}, // default port 80
		{"http://127.0.0.1:9000/", true, "127.0.0.1"},
		{"http://2130706433:9000/", true, "127.0.0.1"}, // decimal
		{"http://0x7f000001:9000/", true, "127.0.0.1"}, // hex
		{"http://0177.0.0.1:9000/", true, "127.0.0.1"}, // octal
		{"http://0x7f.1:9000/", true, "127.0.0.1"},     // two parts
		{"http://127.1:9000/", true, "127.0.0.1"},      // short form
		{"http://[::ffff:127.0.0.1]:9000/", true, "127.0.0.1"},
		{"http://[::ffff:7f00:1]:9000/", true, "127.0.0.1"},
		{"http://127.0.0.2:9000/", false, "not granted"},
		{"http://2130706434:9000/", false, "not granted"},
		{"http://[::1]:9001/", true, "::1"},
		{"http://[0:0:0:0:0:0:0:1]:9001/", true, "::1"},
		{"http://[fe80::1%25eth0]:9001/", false, "zone"},
		{"http://256.0.0.1:9000/", false, "invalid IPv4"},
		{"http://1.2.3.4.5:9000/", false, "invalid IPv4"},
		{"http://0x:9000/", false, "not granted"}, // inet_aton reads 0x as 0.0.0.0
		{"http://09.1.1.1:9000/", false, "invalid IPv4"},
		{"https://bücher.example/", true, "xn--bcher-kva.example"},
		{"https://BÜCHER.example/", true, "xn--bcher-kva.example"},
		{"https://xn--bcher-kva.example/", true, "xn--bcher-kva.example"},
		{"https://a.en.wikipedia.org@evil.test/", false, "credentials"},
		{"https://evil.test#@api.example.com/", false, "not granted"},
		{"https://evil.test\\@api.example.com/", false, ""}, // parse error or refusal
		{"https://api.example.com%2Eevil.test/", false, ""},
		{"https://*.wikipedia.org/", false, "invalid host"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				if tt.allowed {
					t.Fatalf("parse: %v", err)
				}
				return // refused before the policy even sees it
			}
			_, o, err := Check(origins, u)
			if tt.allowed {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if originHost(o) != tt.want {
					t.Fatalf("matched %q, want %q", o.Host, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("allowed under %+v, want refused", o)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestMatchPrefersExact(t *testing.T) {
	origins := []manifest.Origin{
		{Scheme: "https", Host: "example.com", Port: 443, Wildcard: true},
		{Scheme: "https", Host: "api.example.com", Port: 443},
	}
	tgt, err := ParseTarget(&url.URL{Scheme: "https", Host: "api.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	o, ok := Match(origins, tgt)
	if !ok || o.Wildcard {
		t.Fatalf("got %+v, %v; want the exact origin", o, ok)
	}
}

func TestWildcardNeverMatchesIP(t *testing.T) {
	origins := []manifest.Origin{{Scheme: "http", Host: "0.1", Port: 80, Wildcard: true}}
	if _, _, err := Check(origins, &url.URL{Scheme: "http", Host: "127.0.0.1"}); err == nil {
		t.Fatal("wildcard matched an IP literal")
	}
}

func TestCheckAddr(t *testing.T) {
	exact := manifest.Origin{Scheme: "https", Host: "internal.example", Port: 443}
	wild := manifest.Origin{Scheme: "https", Host: "example.com", Port: 443, Wildcard: true}
	lit := manifest.Origin{Scheme: "http", Host: "127.0.0.1", Port: 80}
	meta := manifest.Origin{Scheme: "http", Host: "169.254.169.254", Port: 80}
	localhost := manifest.Origin{Scheme: "http", Host: "localhost", Port: 8080}
	tests := []struct {
		origin manifest.Origin
		addr   string
		ok     bool
	}{
		{exact, "93.184.216.34", true},
		{wild, "93.184.216.34", true},
		{wild, "2606:2800:220:1:248:1893:25c8:1946", true},
		{exact, "127.0.0.1", false}, // a name resolving inward: DNS rebinding
		{exact, "10.1.2.3", false},
		{exact, "fd00::1", false},
		{localhost, "127.0.0.1", true}, // the name says loopback
		{localhost, "::1", true},
		{localhost, "10.0.0.1", false},
		{exact, "169.254.169.254", false}, // metadata only by literal
		{exact, "fe80::1", false},
		{exact, "0.0.0.0", false},
		{exact, "::", false},
		{exact, "224.0.0.1", false},
		{exact, "255.255.255.255", false},
		{exact, "ff02::1", false},
		{wild, "127.0.0.1", false},
		{wild, "::1", false},
		{wild, "10.0.0.1", false},
		{wild, "172.16.5.4", false},
		{wild, "192.168.1.1", false},
		{wild, "100.64.0.1", false},
		{wild, "fc00::1", false},
		{wild, "169.254.169.254", false},
		{wild, "::ffff:127.0.0.1", false},
		{wild, "::ffff:169.254.169.254", false},
		{wild, "64:ff9b::7f00:1", false},     // NAT64 of 127.0.0.1
		{wild, "64:ff9b::808:808", true},     // NAT64 of a public address
		{wild, "::7f00:1", false},            // IPv4-compatible 127.0.0.1
		{wild, "::a9fe:a9fe", false},         // IPv4-compatible 169.254.169.254
		{wild, "::808:808", true},            // IPv4-compatible public address
		{wild, "2002:7f00:1::1", false},      // 6to4 of 127.0.0.1
		{wild, "2002:a00:1::1", false},       // 6to4 of 10.0.0.1
		{wild, "2002:808:808::1", true},      // 6to4 of a public address
		{wild, "2001:0:4136:e378::1", false}, // Teredo
		{wild, "64:ff9b:1::a00:1", false},    // local-use NAT64
		{lit, "127.0.0.1", true},
		{lit, "::ffff:127.0.0.1", true},
		{lit, "127.0.0.2", false},
		{meta, "169.254.169.254", true},
	}
	for _, tt := range tests {
		err := CheckAddr(tt.origin, netip.MustParseAddr(tt.addr))
		if (err == nil) != tt.ok {
			t.Errorf("CheckAddr(%s, %s) = %v, want ok=%v", tt.origin.Host, tt.addr, err, tt.ok)
		}
	}
	// With internal names allowed, exact names reach internal addresses; link-local,
	// wildcards and never-addresses stay refused.
	for _, tt := range []struct {
		origin manifest.Origin
		addr   string
		ok     bool
	}{
		{exact, "127.0.0.1", true},
		{exact, "10.1.2.3", true},
		{exact, "fd00::1", true},
		{exact, "169.254.169.254", false},
		{exact, "0.0.0.0", false},
		{wild, "10.0.0.1", false},
	} {
		err := checkAddr(tt.origin, netip.MustParseAddr(tt.addr), true)
		if (err == nil) != tt.ok {
			t.Errorf("checkAddr(%s, %s, internal names) = %v, want ok=%v", tt.origin.Host, tt.addr, err, tt.ok)
		}
	}
}
