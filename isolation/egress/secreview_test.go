package egress

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// A listed origin that echoes the value as other encoders write it (PHP's "\/",
// .NET's "\u002B", Python's quote, lower-case percent hex), in its body and in a
// redirect to an unlisted origin that the Guard follows: the skill sees no spelling
// of the value and the unlisted origin receives none.
func TestBrokeredEchoInOtherEncodings(t *testing.T) {
	spell := map[string]string{
		"php":    strings.ReplaceAll(brokeredValue, "/", `\/`),
		"dotnet": strings.NewReplacer("+", `\u002B`, "=", `\u003D`).Replace(brokeredValue),
		"python": strings.NewReplacer("+", "%2B", "=", "%3D").Replace(brokeredValue),
		"lower":  strings.NewReplacer("/", "%2f", "+", "%2b", "=", "%3d").Replace(brokeredValue),
	}
	var otherSeen seen
	other := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherSeen.add(r)
		io.WriteString(w, "other")
	}), false)
	listed := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+brokeredValue {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		s := spell[strings.TrimPrefix(r.URL.Path, "/")]
		if r.URL.Query().Get("redirect") != "" {
			http.Redirect(w, r, other.URL+"/cb?code="+s, http.StatusFound)
			return
		}
		w.Header().Set("X-Echo", s)
		io.WriteString(w, `{"token":"`+s+`"}`)
	}), false)
	listedO := origin("http", "127.0.0.1", listed.port)
	otherO := origin("http", "127.0.0.1", other.port)
	for name, s := range spell {
		for _, q := range []string{"", "?redirect=1"} {
			g := NewGuard([]manifest.Origin{listedO, otherO}, roomy, WithSecrets([]isolation.BrokeredSecret{{
				Name: "GH_TOKEN", Origins: []manifest.Origin{listedO}, Header: "Authorization",
				Value: "Bearer " + brokeredValue, Secret: brokeredValue,
			}}))
			req, _ := http.NewRequest(http.MethodGet, listed.URL+"/"+name+q, nil)
			resp, err := g.Do(context.Background(), req)
			if err != nil {
				t.Fatalf("%s%s: %v", name, q, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), s) || strings.Contains(resp.Header.Get("X-Echo"), s) {
				t.Errorf("%s%s: the skill saw the value as %s: body %q, X-Echo %q", name, q, s, b, resp.Header.Get("X-Echo"))
			}
			if otherSeen.holds(s) {
				t.Errorf("%s%s: the unlisted origin received the value as %s", name, q, s)
			}
		}
	}
}

// A response to a request that carried a secret is refused when any of its
// Content-Encoding headers names a coding, not only the first.
func TestBrokeredEncodingInSecondHeader(t *testing.T) {
	listed := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Encoding"] = []string{"identity", "gzip"}
		io.WriteString(w, "not really gzip: "+r.Header.Get("Authorization"))
	}), false)
	listedO := origin("http", "127.0.0.1", listed.port)
	g := NewGuard([]manifest.Origin{listedO}, roomy, WithSecrets([]isolation.BrokeredSecret{{
		Name: "GH_TOKEN", Origins: []manifest.Origin{listedO}, Header: "Authorization",
		Value: "Bearer " + brokeredValue, Secret: brokeredValue,
	}}))
	req, _ := http.NewRequest(http.MethodGet, listed.URL+"/", nil)
	resp, err := g.Do(context.Background(), req)
	var ee *encodedError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "is gzip-encoded") {
		if resp != nil {
			resp.Body.Close()
		}
		t.Fatalf("an identity-then-gzip response was handed on: %v", err)
	}
}

// A listed origin that answers with bytes Go's HTTP client quotes in its error (a
// malformed status line echoing the request's Authorization): the error the skill gets
// (the wasm host's NETWORK reply, the proxy's 502 line) and the call's egress record
// (in the audit log) hold the placeholder, never the value.
func TestBrokeredEchoInTransportError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				io.WriteString(c, strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")+"\r\n\r\n") // one word: quoted whole
			}()
		}
	}()
	o := origin("http", "127.0.0.1", ln.Addr().(*net.TCPAddr).Port)
	g := NewGuard([]manifest.Origin{o}, roomy, WithSecrets([]isolation.BrokeredSecret{{
		Name: "GH_TOKEN", Origins: []manifest.Origin{o}, Header: "Authorization",
		Value: "Bearer " + brokeredValue, Secret: brokeredValue,
	}}))
	req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/x", nil)
	resp, err := g.Do(context.Background(), req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("a malformed response was taken as a response")
	}
	if strings.Contains(err.Error(), brokeredValue) {
		t.Errorf("the error holds the value: %v", err)
	} else if !strings.Contains(err.Error(), "[skillbox:secret GH_TOKEN]") {
		t.Fatalf("the origin's echo is not in the error, so the test proves nothing: %v", err)
	}
	for _, r := range g.Records() {
		if strings.Contains(r.Reason, brokeredValue) {
			t.Errorf("the egress record holds the value: %q", r.Reason)
		}
	}
}
