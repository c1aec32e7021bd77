package egress

import (
	"net/url"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/manifest"
)

// FuzzCheck: whatever the URL, Check does not panic, an allowed target really sits
// under the origin that matched, and normalisation is idempotent.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"https://api.example.com/", "https://a.b.wikipedia.org/x", "http://2130706433:9000/",
		"http://[::ffff:127.0.0.1]:9000/", "https://bücher.example/", "http://0x7f.1:9000",
		"https://user@api.example.com/", "https://api.example.com./", "http://127.1:9000/",
	} {
		f.Add(s)
	}
	origins := []manifest.Origin{
		{Scheme: "https", Host: "api.example.com", Port: 443},
		{Scheme: "https", Host: "wikipedia.org", Port: 443, Wildcard: true},
		{Scheme: "http", Host: "127.0.0.1", Port: 9000},
		{Scheme: "https", Host: "xn--bcher-kva.example", Port: 443},
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		tg, o, err := Check(origins, u)
		if err != nil {
			return
		}
		if u.User != nil {
			t.Fatalf("%q allowed with userinfo", s)
		}
		if tg.Scheme != o.Scheme || tg.Port != o.Port {
			t.Fatalf("%q: target %+v under origin %+v", s, tg, o)
		}
		if o.Wildcard {
			if tg.IP.IsValid() || !strings.HasSuffix(tg.Host, "."+o.Host) {
				t.Fatalf("%q: %q is not under *.%s", s, tg.Host, o.Host)
			}
		} else if tg.Host != originHost(o) {
			t.Fatalf("%q: %q is not %q", s, tg.Host, o.Host)
		}
		again, err := ParseTarget(&url.URL{Scheme: tg.Scheme, Host: tg.HostPort()})
		if err != nil || again != tg {
			t.Fatalf("%q: not idempotent: %+v then %+v (%v)", s, tg, again, err)
		}
	})
}
