package egress

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/skillbox-dev/skillbox/manifest"
)

func benchOrigins() []manifest.Origin {
	var o []manifest.Origin
	for i := 0; i < 20; i++ {
		o = append(o, manifest.Origin{Scheme: "https", Host: fmt.Sprintf("api%d.example.com", i), Port: 443})
	}
	return append(o, manifest.Origin{Scheme: "https", Host: "wikipedia.org", Port: 443, Wildcard: true})
}

// BenchmarkURLParse is the baseline for BenchmarkCheck: parsing alone.
func BenchmarkURLParse(b *testing.B) {
	for b.Loop() {
		if _, err := url.Parse("https://en.wikipedia.org/wiki/Go"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	origins := benchOrigins()
	for b.Loop() {
		u, _ := url.Parse("https://en.wikipedia.org/wiki/Go")
		if _, _, err := Check(origins, u); err != nil {
			b.Fatal(err)
		}
	}
}

func benchGet(b *testing.B, do func(*http.Request) (*http.Response, error), u string) {
	for b.Loop() {
		req, _ := http.NewRequest("GET", u, nil)
		resp, err := do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkDirectNoKeepAlive is the baseline for BenchmarkGuardDo: a plain client
// that also dials per request.
func BenchmarkDirectNoKeepAlive(b *testing.B) {
	srv := newCountingServer(b, hello("x"), false)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	benchGet(b, c.Do, srv.URL)
}

func BenchmarkGuardDo(b *testing.B) {
	srv := newCountingServer(b, hello("x"), false)
	g := NewGuard([]manifest.Origin{origin("http", "127.0.0.1", srv.port)}, Limits{MaxRequests: 1 << 30, MaxResponseBytes: 1 << 20})
	benchGet(b, func(r *http.Request) (*http.Response, error) { return g.Do(context.Background(), r) }, srv.URL)
}
