package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/skills/sdk"
)

func TestExtractHTML(t *testing.T) {
	tests := []struct {
		name, page, title, text string
	}{
		{"basic",
			`<!doctype html><html><head><title> The  Title </title><style>p{color:red}</style><script>var x = "<p>no</p>";</script></head>
			<body><nav><a href="/">Home</a> <a href="/about">About</a></nav>
			<h1>Heading</h1><p>First   paragraph
			spans lines.</p><p>Second &amp; <b>bold</b>&nbsp;text.</p>
			<script>alert(1)</script><noscript>enable js</noscript></body></html>`,
			"The Title", "Heading\n\nFirst paragraph spans lines.\n\nSecond & bold text."},
		{"lists and breaks",
			`<ul><li>one</li><li>two <i>2</i></li></ul>line<br>next<div>block</div>`,
			"", "- one\n- two 2\n\nline\nnext\nblock"},
		{"table",
			`<table><tr><th>Name</th><th>Price</th></tr><tr><td>apple</td><td>0.10</td></tr></table>`,
			"", "Name | Price\napple | 0.10"},
		{"hidden",
			`<p>shown</p><div hidden>no</div><span aria-hidden="true">no</span><p style="display: none">no</p><template><p>no</p></template>`,
			"", "shown"},
		{"image alt and inline",
			`<p>a<img alt="cat" src=x>b <a href="#">link</a>.</p>`,
			"", "a cat b link."},
		{"broken html", `<p>unclosed <b>bold <p>next`, "", "unclosed bold\n\nnext"},
		{"no title text only", `just text`, "", "just text"},
		{"title in body", `<body><title>T</title>x</body>`, "T", "x"},
		{"empty", ``, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			title, text := ExtractHTML([]byte(tt.page))
			if title != tt.title {
				t.Errorf("title %q, want %q", title, tt.title)
			}
			if text != tt.text {
				t.Errorf("text\n%q\nwant\n%q", text, tt.text)
			}
		})
	}
}

func TestExtract(t *testing.T) {
	tests := []struct {
		ctype, body, media, title, text, err string
	}{
		{"text/html; charset=utf-8", "<title>t</title><p>x</p>", "text/html", "t", "x", ""},
		{"application/xhtml+xml", "<p>x</p>", "application/xhtml+xml", "", "x", ""},
		{"text/plain", "  keep   as is \n", "text/plain", "", "  keep   as is \n", ""},
		{"application/json", `{"a": 1}`, "application/json", "", `{"a": 1}`, ""},
		{"application/ld+json", `{}`, "application/ld+json", "", `{}`, ""},
		{"text/csv", "a,b\n", "text/csv", "", "a,b\n", ""},
		{"", "<html><body><p>sniffed</p></body></html>", "text/html", "", "sniffed", ""},
		{"", "plain words", "text/plain", "", "plain words", ""},
		{"text/plain", "bad \xff byte", "text/plain", "", "bad \uFFFD byte", ""},
		{"image/png", "\x89PNG", "", "", "", "content type image/png is not text"},
		{"", "\x89PNG\r\n\x1a\n\x00", "", "", "", "content type image/png is not text"},
		{"text/html; charset", "x", "", "", "", `content type "text/html; charset"`},
	}
	for _, tt := range tests {
		media, title, text, err := Extract(tt.ctype, []byte(tt.body))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want %q", tt.ctype, err, tt.err)
			}
			continue
		}
		if err != nil || media != tt.media || title != tt.title || text != tt.text {
			t.Errorf("%q %q: got %q %q %q %v", tt.ctype, tt.body, media, title, text, err)
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, tt := range []struct {
		s    string
		n    int
		want string
		cut  bool
	}{
		{"hello", 10, "hello", false},
		{"hello", 5, "hello", false},
		{"hello", 4, "hell", true},
		{"héllo wörld", 7, "héllo w", true}, // runes, not bytes
		{"日本語", 1, "日", true},
	} {
		got, cut := truncate(tt.s, tt.n)
		if got != tt.want || cut != tt.cut {
			t.Errorf("truncate(%q, %d) = %q %v", tt.s, tt.n, got, cut)
		}
	}
}

// TestFetch runs the skill logic against a real loopback server with an ordinary
// client; the path through the skillbox host is tested in skills/skills_test.go.
func TestFetch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("User-Agent") != "skillbox-fetch/0.1" {
			t.Errorf("user agent %q", r.Header.Get("User-Agent"))
		}
		switch r.URL.Path {
		case "/page":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(`<title>Page</title><nav>menu</nav><p>` + strings.Repeat("word ", 10) + `</p>`))
		case "/missing":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`<title>Not Found</title><h1>404</h1>`))
		case "/bin":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write([]byte{0, 1, 2})
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	out, err := Fetch(ctx, srv.Client(), Input{URL: srv.URL + "/page", MaxChars: 12})
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != 200 || out.Title != "Page" || out.Text != "word word wo" || !out.Truncated || out.ContentType != "text/html" || out.URL != srv.URL+"/page" {
		t.Errorf("got %+v", out)
	}
	out, err = Fetch(ctx, srv.Client(), Input{URL: srv.URL + "/missing"})
	if err != nil || out.Status != 404 || out.Title != "Not Found" || out.Text != "404" || out.Truncated {
		t.Errorf("404 page: %+v %v", out, err)
	}
	if _, err = Fetch(ctx, srv.Client(), Input{URL: srv.URL + "/bin"}); err == nil || !strings.Contains(err.Error(), "application/octet-stream is not text") {
		t.Errorf("binary: %v", err)
	}
	for _, bad := range []string{"", "ftp://example.com/x", "/relative", "http://", "://x"} {
		if _, err := Fetch(ctx, srv.Client(), Input{URL: bad}); err == nil || !strings.Contains(err.Error(), "want an absolute http or https URL") {
			t.Errorf("url %q: %v", bad, err)
		}
	}
}

// Outside a wasip1 build the SDK client cannot reach a host, and says so.
func TestFetchNotUnderSkillbox(t *testing.T) {
	_, err := Fetch(context.Background(), sdk.HTTPClient(), Input{URL: "http://127.0.0.1:1/"})
	if err == nil || !strings.Contains(err.Error(), "not running under skillbox") {
		t.Fatalf("err %v", err)
	}
}
