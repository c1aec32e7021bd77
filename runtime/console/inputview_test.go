package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/engine"
)

// overseenConsole serves a console with echo ("guarded") under oversight by token:ops.
func overseenConsole(t *testing.T) *consoleServer {
	return startConsole(t, func(s *consoleServer) {
		s.install(t, "guarded", "../engine/testdata/echo.wasm", echoBody, &approval.Grant{
			Oversight: &approval.Oversight{Approvers: []string{"token:ops"}, Reason: "sends money"}})
	})
}

// callGuarded starts a call of guarded by token:agent; its error arrives on ended and
// its output, if it ran, on out.
func callGuarded(s *consoleServer, input string) (ended chan error, out chan []byte) {
	ended, out = make(chan error, 1), make(chan []byte, 1)
	go func() {
		res, err := s.eng.Invoke(context.Background(), engine.Request{Skill: "guarded", Input: []byte(input), Caller: "token:agent", Door: "mcp"})
		if err == nil {
			out <- res.Output
		}
		ended <- err
	}()
	return ended, out
}

// The approver sees the input as its value, not as the caller's text: indented, with
// the caller's whitespace gone, and characters that reorder or hide text (a
// right-to-left override, isolates, zero-width and C1 characters) written as \uXXXX,
// on the overview and on the request's own page.
func TestConsoleInputEscapesDisguise(t *testing.T) {
	s := overseenConsole(t)
	ops := newBrowser(t, s.base)
	ops.login(opsToken)
	input := "{\"payee\":\"alice\u202e\u2066 001 tnuocca\u2069\",\"memo\":\"ok\u200b\u0085\"," + strings.Repeat("\n", 300) + "\"amount\":1000000}"
	ended, _ := callGuarded(s, input)
	id, _, _, page := ops.waitPending(t, ended)
	_, own := ops.get("/pending/" + id)
	for name, p := range map[string]string{"overview": page, "request page": own} {
		pre := inputRE.FindStringSubmatch(p)
		if pre == nil {
			t.Fatalf("%s: no input shown:\n%s", name, p)
		}
		if strings.Contains(pre[1], "\n\n") {
			t.Errorf("%s: keeps the caller's blank lines:\n%s", name, pre[1])
		}
		for _, bad := range []string{"\u202e", "\u2066", "\u2069", "\u200b", "\u0085"} {
			if strings.Contains(p, bad) {
				t.Errorf("%s: shows %+q raw", name, bad)
			}
		}
		for _, want := range []string{`&#34;payee&#34;: &#34;alice\u202e\u2066 001 tnuocca\u2069&#34;`, `&#34;memo&#34;: &#34;ok\u200b\u0085&#34;`,
			"{\n  &#34;amount&#34;: 1000000,\n"} {
			if !strings.Contains(p, want) {
				t.Errorf("%s: lacks %s", name, want)
			}
		}
	}
}

var inputRE = regexp.MustCompile(`(?s)<pre class="input[^"]*">(.*?)</pre>`)

var allowFormRE = regexp.MustCompile(`action="/pending/([0-9a-f]+)/allow"`)

// An input longer than the overview shows is not offered for Allow there: the
// overview links to the request's own page, which shows it whole, with Allow; Deny
// stays on the overview. A short input keeps its Allow on the overview.
func TestConsoleCutInputAllowsOnlyOnItsPage(t *testing.T) {
	s := overseenConsole(t)
	ops := newBrowser(t, s.base)
	ops.login(opsToken)
	long := `{"memo":"` + strings.Repeat("invoice 2024-117 ", 400) + `","payee":"mallory-at-the-end"}`
	ended, out := callGuarded(s, long)
	id, _, _, page := ops.waitPending(t, ended)
	if strings.Contains(page, "mallory-at-the-end") {
		t.Fatalf("the overview shows the whole long input; the test needs a cut one")
	}
	if m := allowFormRE.FindAllStringSubmatch(page, -1); len(m) != 0 {
		t.Errorf("the overview offers Allow beside a cut input: %q", m)
	}
	if !strings.Contains(page, `href="/pending/`+id+`">Read the whole input to allow this call`) || !strings.Contains(page, `action="/pending/`+id+`/deny"`) {
		t.Errorf("the overview does not link to the request's page, or lost Deny:\n%s", page)
	}
	code, own := ops.get("/pending/" + id)
	if code != http.StatusOK || !strings.Contains(own, "mallory-at-the-end") || !strings.Contains(own, `action="/pending/`+id+`/allow"`) ||
		strings.Contains(own, "…</pre>") {
		t.Fatalf("the request's page: %d, want the whole input and Allow:\n%s", code, own)
	}
	digest, csrf := digestRE.FindStringSubmatch(own)[1], csrfRE.FindStringSubmatch(own)[1]
	if code, _, _ := ops.post("/pending/"+id+"/allow", s.base, url.Values{"csrf": {csrf}, "digest": {digest}, "skill": {"guarded"}}); code != http.StatusSeeOther {
		t.Fatalf("allow from the request's page: %d", code)
	}
	if err := <-ended; err != nil || !strings.Contains(string(<-out), "mallory-at-the-end") {
		t.Fatalf("the allowed call: %v", err)
	}
	if code, body := ops.get("/pending/" + id); code != http.StatusNotFound || !strings.Contains(body, "No call waits") {
		t.Errorf("a decided request's page: %d\n%s", code, body)
	}

	ended, _ = callGuarded(s, `{"payee":"alice"}`)
	id, _, _, page = ops.waitPending(t, ended)
	if m := allowFormRE.FindAllStringSubmatch(page, -1); len(m) != 1 || m[0][1] != id {
		t.Errorf("a short input: Allow forms %q, want the one of %s", m, id)
	}
	if !strings.Contains(page, "data-hold") {
		t.Errorf("an overview listing a waiting call is not marked to hold still (data-hold)")
	}
}
