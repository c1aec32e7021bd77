package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

const (
	brokeredValue = "gh-Xy7/q+Pz=" // with characters JSON and URLs escape
	placeholder   = "[skillbox:secret GH_TOKEN]"
)

// seen is what one test origin received.
type seen struct {
	mu   sync.Mutex
	reqs []http.Header
	raw  []string // header values and bodies, for a search for the value
}

func (s *seen) add(r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, r.Header.Clone())
	s.raw = append(s.raw, r.URL.String(), string(b))
	for k, vs := range r.Header {
		s.raw = append(s.raw, k+": "+strings.Join(vs, ","))
	}
}

func (s *seen) auth() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, h := range s.reqs {
		out = append(out, h.Get("Authorization"))
	}
	return out
}

func (s *seen) holds(v string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.raw {
		if strings.Contains(r, v) {
			return true
		}
	}
	return false
}

// brokerPair is a listed origin (it echoes what it got, redirects on /go, and can
// answer compressed) and a granted origin that is not listed for the secret.
type brokerPair struct {
	listed, other         *countingServer
	listedSeen, otherSeen seen
	g                     *Guard
}

func newBrokerPair(t *testing.T) *brokerPair {
	t.Helper()
	p := &brokerPair{}
	p.other = newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.otherSeen.add(r)
		if r.URL.Path == "/back" {
			http.Redirect(w, r, p.listed.URL+"/echo", http.StatusFound)
			return
		}
		io.WriteString(w, "other")
	}), false)
	p.listed = newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.listedSeen.add(r)
		auth := r.Header.Get("Authorization")
		switch r.URL.Path {
		case "/go":
			http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
			return
		case "/gzip":
			w.Header().Set("Content-Encoding", "gzip")
			io.WriteString(w, "not really gzip: "+auth)
			return
		case "/loc":
			http.Redirect(w, r, p.other.URL+"/leak?t="+url.QueryEscape(auth), http.StatusFound)
			return
		}
		// The echo: in a header, and in the body split over several writes so the
		// value spans reads, raw and as JSON.
		w.Header().Set("X-Echo", auth)
		w.Header().Set("X-Range", r.Header.Get("Range")+"|"+r.Header.Get("Accept-Encoding"))
		f, _ := w.(http.Flusher)
		half := len(auth) / 2
		io.WriteString(w, "you sent: "+auth[:half])
		f.Flush()
		io.WriteString(w, auth[half:]+fmt.Sprintf(" json: {\"a\":%q}", auth))
	}), false)
	listedO := origin("http", "127.0.0.1", p.listed.port)
	otherO := origin("http", "127.0.0.1", p.other.port)
	p.g = NewGuard([]manifest.Origin{listedO, otherO}, roomy, WithSecrets([]isolation.BrokeredSecret{{
		Name: "GH_TOKEN", Origins: []manifest.Origin{listedO}, Header: "Authorization",
		Value: "Bearer " + brokeredValue, Secret: brokeredValue,
	}}))
	return p
}

// do sends a GET with the skill's own headers and returns the response as the skill
// sees it: status, headers and body.
func (p *brokerPair) do(t *testing.T, rawURL string, h http.Header) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := p.g.Do(context.Background(), req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// The listed origin gets the header (replacing the skill's, whatever its case); the
// echo comes back with the placeholder in headers and body; the record names it.
func TestBrokeredAttachedAndEchoRedacted(t *testing.T) {
	p := newBrokerPair(t)
	resp, body, err := p.do(t, p.listed.URL+"/echo", http.Header{"authorization": {"skill's own"}, "Authorization": {placeholder}})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.listedSeen.auth(); !slices.Equal(got, []string{"Bearer " + brokeredValue}) {
		t.Fatalf("listed origin received Authorization %q", got)
	}
	if n := len(p.listedSeen.reqs[0]["Authorization"]); n != 1 {
		t.Fatalf("listed origin received %d Authorization headers", n)
	}
	if strings.Contains(body, brokeredValue) || strings.Contains(resp.Header.Get("X-Echo"), brokeredValue) {
		t.Fatalf("the skill saw the value: body %q, X-Echo %q", body, resp.Header.Get("X-Echo"))
	}
	want := "you sent: Bearer " + placeholder + ` json: {"a":"Bearer ` + placeholder + `"}`
	if body != want || resp.Header.Get("X-Echo") != "Bearer "+placeholder {
		t.Fatalf("body %q (want %q), X-Echo %q", body, want, resp.Header.Get("X-Echo"))
	}
	if resp.ContentLength != -1 || resp.Header.Get("Content-Length") != "" {
		t.Fatalf("a redacted body keeps a length: %d %q", resp.ContentLength, resp.Header.Get("Content-Length"))
	}
	recs := p.g.Records()
	if len(recs) != 1 || !slices.Equal(recs[0].Secrets, []string{"GH_TOKEN"}) {
		t.Fatalf("records %+v", recs)
	}
}

// A granted origin that is not listed gets no secret; a header the skill set with
// the placeholder goes as the skill wrote it, never substituted.
func TestBrokeredNotSentToOtherOrigins(t *testing.T) {
	p := newBrokerPair(t)
	if _, _, err := p.do(t, p.other.URL+"/x", http.Header{"Authorization": {placeholder}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.do(t, p.other.URL+"/y", nil); err != nil {
		t.Fatal(err)
	}
	if got := p.otherSeen.auth(); !slices.Equal(got, []string{placeholder, ""}) {
		t.Fatalf("other origin received Authorization %q", got)
	}
	if p.otherSeen.holds(brokeredValue) {
		t.Fatal("other origin received the value")
	}
	for _, r := range p.g.Records() {
		if len(r.Secrets) != 0 {
			t.Fatalf("record names a secret for an unlisted origin: %+v", r)
		}
	}
}

// A redirect from the listed origin to another drops the secret on that hop; one
// back to the listed origin gets it again; each hop is recorded with what it carried.
func TestBrokeredRedirects(t *testing.T) {
	p := newBrokerPair(t)
	_, body, err := p.do(t, p.listed.URL+"/go?to="+url.QueryEscape(p.other.URL+"/back"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.otherSeen.holds(brokeredValue) || len(p.otherSeen.auth()) != 1 || p.otherSeen.auth()[0] != "" {
		t.Fatalf("the redirect hop to the other origin carried %q", p.otherSeen.auth())
	}
	if got := p.listedSeen.auth(); !slices.Equal(got, []string{"Bearer " + brokeredValue, "Bearer " + brokeredValue}) {
		t.Fatalf("listed origin hops received %q", got)
	}
	if strings.Contains(body, brokeredValue) {
		t.Fatal("the skill saw the value")
	}
	var carried [][]string
	for _, r := range p.g.Records() {
		carried = append(carried, r.Secrets)
	}
	if want := [][]string{{"GH_TOKEN"}, nil, {"GH_TOKEN"}}; fmt.Sprint(carried) != fmt.Sprint(want) {
		t.Fatalf("hops carried %v, want %v", carried, want)
	}
}

// A Location that holds the value is redacted before the Guard follows it: the value
// never goes into a URL, to any origin.
func TestBrokeredLocationRedactedBeforeFollowing(t *testing.T) {
	p := newBrokerPair(t)
	resp, _, err := p.do(t, p.listed.URL+"/loc", nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.otherSeen.holds(brokeredValue) || p.otherSeen.holds(url.QueryEscape(brokeredValue)) {
		t.Fatalf("the followed redirect carried the value: %q", p.otherSeen.raw)
	}
	// The redacted Location carries the placeholder (with a space, so the hop that
	// follows it is refused by the other origin itself, 400): no hop carries the value.
	for _, r := range p.g.Records() {
		if strings.Contains(r.URL, brokeredValue) || strings.Contains(r.URL, url.QueryEscape(brokeredValue)) {
			t.Fatalf("a hop went to %s", r.URL)
		}
	}
	if recs := p.g.Records(); len(recs) != 2 || !strings.Contains(recs[1].URL, "skillbox:secret") {
		t.Fatalf("records %+v", recs)
	}
	for k, vs := range resp.Header {
		if strings.Contains(strings.Join(vs, ","), brokeredValue) {
			t.Fatalf("response header %s holds the value", k)
		}
	}
}

// A request that carries a secret loses the skill's Range and Accept-Encoding, and a
// compressed answer to it is refused: either could carry the value past redaction.
func TestBrokeredNoPartialOrEncodedEcho(t *testing.T) {
	p := newBrokerPair(t)
	resp, _, err := p.do(t, p.listed.URL+"/echo", http.Header{"Range": {"bytes=10-12"}, "Accept-Encoding": {"gzip"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("X-Range"); got != "|" {
		t.Fatalf("listed origin received Range|Accept-Encoding %q", got)
	}
	_, _, err = p.do(t, p.listed.URL+"/gzip", nil)
	var ee *encodedError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "is gzip-encoded; a response to a request that carried a secret must be unencoded") {
		t.Fatalf("compressed answer: %v", err)
	}
	// An origin without the secret keeps the skill's headers.
	if _, _, err := p.do(t, p.other.URL+"/x", http.Header{"Range": {"bytes=1-2"}}); err != nil {
		t.Fatal(err)
	}
	if h := p.otherSeen.reqs[0]; h.Get("Range") != "bytes=1-2" {
		t.Fatalf("other origin: Range %q", h.Get("Range"))
	}
}

func TestGuardBrokers(t *testing.T) {
	p := newBrokerPair(t)
	for u, want := range map[string]bool{
		p.listed.URL + "/any":                               true,
		p.other.URL + "/any":                                false,
		fmt.Sprintf("https://127.0.0.1:%d/", p.listed.port): false, // another scheme is another origin
	} {
		pu, _ := url.Parse(u)
		tg, err := ParseTarget(pu)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.g.Brokers(tg); got != want {
			t.Errorf("Brokers(%s) = %v, want %v", u, got, want)
		}
	}
	if NewGuard(nil, roomy).Brokers(Target{Scheme: "http", Host: "127.0.0.1", Port: p.listed.port}) {
		t.Error("a Guard without secrets brokers")
	}
}
