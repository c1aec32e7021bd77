package console_test

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/review"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/console"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
	"github.com/skillbox-dev/skillbox/runtime/server"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

const (
	opsToken   = "ops-token-0123456789abcdef"
	agentToken = "agent-token-0123456789abcd"
	leadToken  = "lead-token-0123456789abcde"
)

// consoleServer is a console over a real engine (wasm sandbox), served on a loopback
// listener with a token file naming ops (an admin) and agent (not one).
type consoleServer struct {
	eng  *engine.Engine
	kit  *testkit.Home
	base string // http://127.0.0.1:PORT
}

func (s *consoleServer) install(t testing.TB, name, module, body string, grant *approval.Grant) {
	t.Helper()
	ctx := context.Background()
	dir := s.kit.Build(t, testkit.Package{Name: name, Version: "1.0.0", Module: module, Body: body})
	if _, err := s.eng.Install(ctx, dir, "test"); err != nil {
		t.Fatal(err)
	}
	cand, err := s.eng.Candidate(ctx, name, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.eng.Approve(ctx, cand, grant, "test"); err != nil {
		t.Fatal(err)
	}
}

const (
	echoBody = "input: {type: object}\noutput: {type: object}\nlimits: {timeout: 5s, memory: 16MiB}\n"
	spinBody = "input: {type: object}\noutput: {type: object}\nlimits: {timeout: 60s, memory: 16MiB}\n"
)

func startConsole(t *testing.T, setup func(s *consoleServer)) *consoleServer {
	t.Helper()
	kit := testkit.NewHome(t)
	s := &consoleServer{eng: kit.Engine(t, engine.Config{}), kit: kit}
	if setup != nil {
		setup(s)
	}
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("ops "+opsToken+"\nagent "+agentToken+"\nlead "+leadToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lis, err := transport.ListenHTTP(context.Background(), transport.ServerConfig{Addr: "127.0.0.1:0", TokenFile: tokens})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(s.eng, transport.Caller, server.WithAdmins("token:ops", "token:lead"))
	c, err := console.New(console.Config{Engine: s.eng, Admission: lis, CheckAdmin: srv.CheckAdmin,
		Refused: func(r *http.Request, err error) {
			srv.Unauthenticated(r.Context(), transport.HTTPPeer(r), "console "+r.URL.Path, err)
		}})
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: c.Handler()}
	go hs.Serve(lis)
	t.Cleanup(func() { hs.Close(); srv.Shutdown() })
	s.base = "http://" + lis.Addr().String()
	return s
}

// browser is an HTTP client that keeps cookies and sends what a browser would on a
// form post: the page's own Origin.
type browser struct {
	t    *testing.T
	c    *http.Client
	base string
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) do(req *http.Request) (int, string, http.Header) {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body), res.Header
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.base+path, nil)
	code, body, _ := b.do(req)
	return code, body
}

// post sends a form with origin as its Origin ("" sends none).
func (b *browser) post(path, origin string, form url.Values) (int, string, http.Header) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return b.do(req)
}

func (b *browser) login(token string) {
	b.t.Helper()
	code, body, _ := b.post("/login", b.base, url.Values{"token": {token}})
	if code != http.StatusSeeOther {
		b.t.Fatalf("login: %d %s, want 303 to /", code, body)
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token of the forms on a page.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	code, body := b.get(path)
	m := csrfRE.FindStringSubmatch(body)
	if code != 200 || m == nil {
		b.t.Fatalf("GET %s: %d, no CSRF token in:\n%s", path, code, body)
	}
	return m[1]
}

func records(t *testing.T, eng *engine.Engine, event string) []audit.Entry {
	t.Helper()
	snap, err := audit.ReadSnapshot(eng.AuditPath(), 1000)
	if err != nil || snap.Err != nil {
		t.Fatalf("audit: %v %v", err, snap.Err)
	}
	var out []audit.Entry
	for _, e := range snap.Last {
		if e.Event == event {
			out = append(out, e)
		}
	}
	return out
}

func disabled(t *testing.T, eng *engine.Engine, name string) bool {
	t.Helper()
	in, err := eng.Get(context.Background(), name, "")
	if err != nil {
		t.Fatal(err)
	}
	return in.Disabled
}

// Viewing needs admission and an admin identity; refusals say why and are audited.
func TestAdmission(t *testing.T) {
	s := startConsole(t, func(s *consoleServer) { s.install(t, "echo", "../engine/testdata/echo.wasm", echoBody, nil) })

	anon := newBrowser(t, s.base)
	code, body := anon.get("/")
	if code != http.StatusUnauthorized || !strings.Contains(body, `action="/login"`) || strings.Contains(body, "echo") {
		t.Errorf("no token: %d, want 401 with the login form and nothing of the console:\n%s", code, body)
	}
	if code, body := anon.get("/audit"); code != http.StatusUnauthorized || strings.Contains(body, "invoke") {
		t.Errorf("no token, /audit: %d, want 401", code)
	}

	code, body, _ = anon.post("/login", s.base, url.Values{"token": {"wrong-token-0123456789"}})
	if code != http.StatusUnauthorized || !strings.Contains(body, "not valid") {
		t.Errorf("wrong token: %d, want 401 with the login form saying so:\n%s", code, body)
	}
	if rs := records(t, s.eng, engine.EventAccessRefused); len(rs) == 0 || rs[0].Reason != string(server.ReasonUnauthenticated) {
		t.Errorf("refused logins in the audit log: %+v, want an UNAUTHENTICATED access.refused", rs)
	}

	// A login form posted from another site is refused before the token is looked at.
	code, _, hdr := anon.post("/login", "http://evil.example", url.Values{"token": {opsToken}})
	if code != http.StatusForbidden || hdr.Get("Set-Cookie") != "" {
		t.Errorf("login from another origin: %d (cookie %q), want 403 and no session", code, hdr.Get("Set-Cookie"))
	}

	agent := newBrowser(t, s.base)
	code, body, hdr = agent.post("/login", s.base, url.Values{"token": {agentToken}})
	if code != http.StatusForbidden || !strings.Contains(body, "token:agent may not use the Admin service. To let it in, an operator serves with --admin token:agent.") ||
		strings.Contains(body, "`") || hdr.Get("Set-Cookie") != "" {
		t.Errorf("non-admin login: %d (cookie %q), want 403 in words and no session:\n%s", code, hdr.Get("Set-Cookie"), body)
	}
	req, _ := http.NewRequest("GET", s.base+"/", nil)
	req.Header.Set("Authorization", "Bearer "+agentToken)
	code, body, _ = agent.do(req)
	if code != http.StatusForbidden || !strings.Contains(body, "token:agent may not use the Admin service") || strings.Contains(body, "echo") {
		t.Errorf("non-admin: %d, want 403 in words and no skills:\n%s", code, body)
	}
	if rs := records(t, s.eng, engine.EventAccessRefused); len(rs) < 2 || rs[len(rs)-1].Reason != string(server.ReasonNotAdmin) || rs[len(rs)-1].Caller != "token:agent" {
		t.Errorf("the non-admin's refusal in the audit log: %+v", rs)
	}

	ops := newBrowser(t, s.base)
	ops.login(opsToken)
	code, body = ops.get("/")
	if code != 200 || !strings.Contains(body, `id="skill-echo"`) || !strings.Contains(body, "token:ops") {
		t.Errorf("admin: %d, want the overview with echo:\n%s", code, body)
	}
	// A bearer header works too (curl), and is the same identity.
	req, _ = http.NewRequest("GET", s.base+"/audit", nil)
	req.Header.Set("Authorization", "Bearer "+opsToken)
	if code, body, hdr := newBrowser(t, s.base).do(req); code != 200 || !strings.Contains(body, "verify: ok") ||
		!strings.Contains(hdr.Get("Content-Security-Policy"), "script-src 'self'") || hdr.Get("X-Frame-Options") != "DENY" {
		t.Errorf("bearer header: %d, CSP %q; want the audit page with verify ok and a strict CSP", code, hdr.Get("Content-Security-Policy"))
	}

	// DNS rebinding: a name that is not this server's, in Host or Origin, even with a
	// valid session.
	for _, h := range []struct{ host, origin string }{{"evil.example", ""}, {"", "http://evil.example"}} {
		req, _ := http.NewRequest("GET", s.base+"/", nil)
		if h.host != "" {
			req.Host = h.host
		}
		if h.origin != "" {
			req.Header.Set("Origin", h.origin)
		}
		if code, body, _ := ops.do(req); code != http.StatusForbidden || strings.Contains(body, "echo") {
			t.Errorf("Host %q Origin %q: %d, want 403", h.host, h.origin, code)
		}
	}

	// The session cookie: HttpOnly, SameSite=Strict, not Secure on plaintext loopback.
	_, _, hdr = newBrowser(t, s.base).post("/login", s.base, url.Values{"token": {opsToken}})
	ck := hdr.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(ck, want) {
			t.Errorf("session cookie %q lacks %s", ck, want)
		}
	}
	if strings.Contains(ck, "Secure") {
		t.Errorf("session cookie %q is Secure on plain http: the browser would not send it back", ck)
	}

	// Sign out ends the session on the server, not only in the browser.
	csrf := ops.csrf("/")
	cookies := ops.c.Jar.Cookies(mustURL(s.base))
	if code, _, _ := ops.post("/logout", s.base, url.Values{"csrf": {csrf}}); code != http.StatusSeeOther {
		t.Fatalf("logout: %d", code)
	}
	replay := newBrowser(t, s.base)
	replay.c.Jar.SetCookies(mustURL(s.base), cookies)
	if code, _ := replay.get("/"); code != http.StatusUnauthorized {
		t.Errorf("the old session cookie after sign-out: %d, want 401", code)
	}
}

func mustURL(s string) *url.URL { u, _ := url.Parse(s); return u }

// A form post without this session's CSRF token, or from another origin, changes
// nothing; the right one disables the skill, recorded with the operator and the door.
func TestCSRF(t *testing.T) {
	s := startConsole(t, func(s *consoleServer) { s.install(t, "echo", "../engine/testdata/echo.wasm", echoBody, nil) })
	ops := newBrowser(t, s.base)
	ops.login(opsToken)
	csrf := ops.csrf("/")
	other := newBrowser(t, s.base)
	other.login(opsToken)
	otherCSRF := other.csrf("/")
	if otherCSRF == csrf {
		t.Fatal("two sessions share a CSRF token")
	}

	for _, tc := range []struct {
		name, origin string
		form         url.Values
	}{
		{"no token", s.base, url.Values{}},
		{"a wrong token", s.base, url.Values{"csrf": {"x" + csrf}}},
		{"another session's token", s.base, url.Values{"csrf": {otherCSRF}}},
		{"no Origin", "", url.Values{"csrf": {csrf}}},
		{"another origin", "http://evil.example", url.Values{"csrf": {csrf}}},
		{"another port", "http://127.0.0.1:1", url.Values{"csrf": {csrf}}},
	} {
		code, body, _ := ops.post("/skills/echo/disable", tc.origin, tc.form)
		if code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403:\n%s", tc.name, code, body)
		}
		if disabled(t, s.eng, "echo") {
			t.Fatalf("%s: the skill was disabled", tc.name)
		}
	}
	if rs := records(t, s.eng, audit.EventDisable); len(rs) != 0 {
		t.Fatalf("refused posts left disable records: %+v", rs)
	}

	code, _, hdr := ops.post("/skills/echo/disable", s.base, url.Values{"csrf": {csrf}, "reason": {"incident 42"}})
	if code != http.StatusSeeOther || !disabled(t, s.eng, "echo") {
		t.Fatalf("with the token: %d (Location %s), disabled %v; want 303 and disabled", code, hdr.Get("Location"), disabled(t, s.eng, "echo"))
	}
	rs := records(t, s.eng, audit.EventDisable)
	if len(rs) != 1 || rs[0].Caller != "token:ops" || rs[0].Details["door"] != console.Door || rs[0].Details["reason"] != "incident 42" {
		t.Errorf("disable record %+v, want caller token:ops, door console, the reason", rs)
	}
	if _, err := s.eng.Invoke(context.Background(), engine.Request{Skill: "echo", Input: []byte(`{}`), Caller: "test"}); engine.ReasonOf(err) != engine.ReasonDisabled {
		t.Errorf("a call after the console's kill switch: %v, want DISABLED", err)
	}
	if _, body := ops.get(hdr.Get("Location")); !strings.Contains(body, "Disabled echo") || !strings.Contains(body, "disabled (approved)") {
		t.Errorf("the page after the switch does not say so:\n%s", body)
	}

	code, _, _ = ops.post("/skills/echo/enable", s.base, url.Values{"csrf": {csrf}})
	if code != http.StatusSeeOther || disabled(t, s.eng, "echo") {
		t.Errorf("enable: %d, want 303 and enabled", code)
	}
	if rs := records(t, s.eng, audit.EventEnable); len(rs) != 1 || rs[0].Caller != "token:ops" || rs[0].Details["door"] != console.Door {
		t.Errorf("enable record %+v, want caller token:ops, door console", rs)
	}
}

// The kill switch pressed on a call in flight: the skill is disabled and the call,
// spinning in a real wasm module, ends DISABLED.
func TestKillSwitchCancelsCall(t *testing.T) {
	s := startConsole(t, func(s *consoleServer) { s.install(t, "spin", "../engine/testdata/loop.wasm", spinBody, nil) })
	ops := newBrowser(t, s.base)
	ops.login(opsToken)

	ended := make(chan error, 1)
	go func() {
		_, err := s.eng.Invoke(context.Background(), engine.Request{Skill: "spin", Input: []byte(`{}`), Caller: "token:agent", Door: "grpc"})
		ended <- err
	}()
	var body string
	for !strings.Contains(body, `class="call" data-skill="spin"`) {
		select {
		case err := <-ended:
			t.Fatalf("the call ended before the switch: %v", err)
		default:
		}
		_, body = ops.get("/")
	}
	if !strings.Contains(body, "token:agent") {
		t.Errorf("the call in flight does not show its caller:\n%s", body)
	}
	csrf := csrfRE.FindStringSubmatch(body)[1]
	if code, _, _ := ops.post("/skills/spin/disable", s.base, url.Values{"csrf": {csrf}}); code != http.StatusSeeOther {
		t.Fatalf("kill switch: %d", code)
	}
	select {
	case err := <-ended:
		if engine.ReasonOf(err) != engine.ReasonDisabled {
			t.Errorf("the call ended with %v, want DISABLED", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the call still runs a minute after the kill switch")
	}
	if calls := s.eng.Calls(); len(calls) != 0 {
		t.Errorf("calls in flight after the switch: %+v", calls)
	}
	rs := records(t, s.eng, audit.EventDisable)
	if len(rs) != 1 || rs[0].Details["cancelledCalls"] != float64(1) || rs[0].Details["door"] != "console" {
		t.Errorf("disable record %+v, want one cancelled call, door console", rs)
	}
}

// No page shows a secret's or an env variable's value, nor where a secret is read
// from beyond its kind; the token never appears either.
func TestNoSecretValues(t *testing.T) {
	const secretValue, envValue = "s3cret-value-do-not-show", "env-value-do-not-show"
	t.Setenv("CONSOLE_TEST_SOURCE_VAR", secretValue)
	body := "input: {type: object}\noutput: {type: object}\ncapabilities:\n  env: [LANG]\n  secrets: [API_TOKEN]\nlimits: {timeout: 5s, memory: 16MiB}\n"
	s := startConsole(t, func(s *consoleServer) {
		s.install(t, "keeper", "../engine/testdata/echo.wasm", body, &approval.Grant{
			Env: map[string]string{"LANG": envValue}, Secrets: map[string]string{"API_TOKEN": "env:CONSOLE_TEST_SOURCE_VAR"}})
	})
	if _, err := s.eng.Invoke(context.Background(), engine.Request{Skill: "keeper", Input: []byte(`{}`), Caller: "test"}); err != nil {
		t.Fatal(err)
	}
	ops := newBrowser(t, s.base)
	ops.login(opsToken)
	_, page := ops.get("/skills/keeper")
	for _, want := range []string{"secret: API_TOKEN from env", "env: LANG", "secrets: receives API_TOKEN"} {
		if !strings.Contains(page, want) {
			t.Errorf("the skill page lacks %q:\n%s", want, page)
		}
	}
	for _, path := range []string{"/", "/skills/keeper", "/audit", "/login"} {
		code, page := ops.get(path)
		if code != 200 {
			t.Errorf("%s: %d", path, code)
		}
		for _, never := range []string{secretValue, envValue, "CONSOLE_TEST_SOURCE_VAR", opsToken} {
			if strings.Contains(page, never) {
				t.Errorf("%s shows %q", path, never)
			}
		}
	}
}

// A skill page's "What the manifest asks" names every secret as `skillbox review` does:
// a brokered one with where it goes (it was missing, and a skill asking only a brokered
// secret read "nothing but compute"), a plain one with its risk.
func TestSkillPageNamesEverySecret(t *testing.T) {
	body := "input: {type: object}\noutput: {type: object}\ncapabilities:\n  network: [\"https://api.example.com\"]\n" +
		"  secrets:\n    - PLAIN_KEY\n    - name: API_TOKEN\n      origins: [\"https://api.example.com\"]\n" +
		"limits: {timeout: 5s, memory: 16MiB}\n"
	s := startConsole(t, func(s *consoleServer) {
		s.install(t, "keyed", "../engine/testdata/echo.wasm", body, &approval.Grant{})
	})
	ops := newBrowser(t, s.base)
	ops.login(opsToken)
	_, page := ops.get("/skills/keyed")
	_, asks, _ := strings.Cut(page, "What the manifest asks")
	asks, _, _ = strings.Cut(asks, "Risk notes")
	for _, want := range []string{
		"use secret API_TOKEN: sent only to https://api.example.com as Authorization, never visible to the skill",
		"receive secrets PLAIN_KEY (" + review.PlainSecretRisk + ")",
	} {
		if !strings.Contains(html.UnescapeString(asks), want) {
			t.Errorf("what the manifest asks lacks %q:\n%s", want, asks)
		}
	}
	if strings.Contains(asks, "nothing but compute") {
		t.Errorf("a skill with secrets reads as compute only:\n%s", asks)
	}
}

// An unknown skill is a 404 in words; an action on a name that is not one is refused
// by the engine and nothing is recorded.
func TestUnknownSkill(t *testing.T) {
	s := startConsole(t, nil)
	ops := newBrowser(t, s.base)
	ops.login(opsToken)
	if code, body := ops.get("/skills/nope"); code != http.StatusNotFound || !strings.Contains(body, "nope") {
		t.Errorf("unknown skill: %d\n%s", code, body)
	}
	csrf := ops.csrf("/")
	if code, _, _ := ops.post("/skills/Not_A_Name/disable", s.base, url.Values{"csrf": {csrf}}); code != http.StatusBadRequest {
		t.Errorf("disable of a bad name: %d, want 400", code)
	}
	if rs := records(t, s.eng, audit.EventDisable); len(rs) != 0 {
		t.Errorf("records %+v", rs)
	}
}

var (
	pendingRE = regexp.MustCompile(`id="pending-([0-9a-f]+)"`)
	digestRE  = regexp.MustCompile(`name="digest" value="([^"]+)"`)
)

// waitPending reloads the overview until a call waits for a decision, and returns its
// id, digest and the page's CSRF token.
func (b *browser) waitPending(t *testing.T, ended <-chan error) (id, digest, csrf string, page string) {
	t.Helper()
	for {
		select {
		case err := <-ended:
			t.Fatalf("the call ended before a decision: %v", err)
		default:
		}
		_, page = b.get("/")
		if m := pendingRE.FindStringSubmatch(page); m != nil {
			return m[1], digestRE.FindStringSubmatch(page)[1], csrfRE.FindStringSubmatch(page)[1], page
		}
	}
}

// A call of a skill under oversight waits in the console: allow runs it, deny ends it
// with the approver's reason; a decision without the CSRF token, by an admin who is
// not an approver, or a denial without a reason changes nothing.
func TestPendingAllowDeny(t *testing.T) {
	s := startConsole(t, func(s *consoleServer) {
		s.install(t, "guarded", "../engine/testdata/echo.wasm", echoBody, &approval.Grant{
			Oversight: &approval.Oversight{Approvers: []string{"token:ops"}, Reason: "sends money"}})
	})
	ops := newBrowser(t, s.base)
	ops.login(opsToken)
	call := func(input string) <-chan error {
		ch := make(chan error, 1)
		go func() {
			res, err := s.eng.Invoke(context.Background(), engine.Request{Skill: "guarded", Input: []byte(input), Caller: "token:agent", Door: "mcp"})
			if err == nil && string(res.Output) != input {
				err = errors.New("output " + string(res.Output))
			}
			ch <- err
		}()
		return ch
	}

	ended := call(`{"pay":"<b>42</b>"}`)
	id, digest, csrf, page := ops.waitPending(t, ended)
	for _, want := range []string{"token:agent", "over mcp", "sends money", "{\n  &#34;pay&#34;: &#34;&lt;b&gt;42&lt;/b&gt;&#34;\n}", "oversight: every call waits"} {
		if !strings.Contains(page, want) {
			t.Errorf("the pending request does not show %q:\n%s", want, page)
		}
	}
	if code, _, _ := ops.post("/pending/"+id+"/allow", s.base, url.Values{"digest": {digest}}); code != http.StatusForbidden {
		t.Errorf("allow without the CSRF token: %d, want 403", code)
	}
	lead := newBrowser(t, s.base)
	lead.login(leadToken)
	if code, body, _ := lead.post("/pending/"+id+"/allow", s.base, url.Values{"csrf": {lead.csrf("/")}, "digest": {digest}}); code != http.StatusForbidden || !strings.Contains(body, "not an approver") {
		t.Errorf("allow by an admin who is not an approver: %d, want 403 in words:\n%s", code, body)
	}
	if code, _, _ := ops.post("/pending/"+id+"/allow", s.base, url.Values{"csrf": {csrf}, "digest": {"sha256:" + strings.Repeat("0", 64)}}); code != http.StatusBadRequest {
		t.Errorf("allow with another request's digest: %d, want 400", code)
	}
	if len(s.eng.Pending()) != 1 {
		t.Fatalf("after refused decisions: %d pending, want the request still waiting", len(s.eng.Pending()))
	}
	if code, _, hdr := ops.post("/pending/"+id+"/allow", s.base, url.Values{"csrf": {csrf}, "digest": {digest}, "skill": {"guarded"}}); code != http.StatusSeeOther {
		t.Fatalf("allow: %d (%s)", code, hdr.Get("Location"))
	}
	if err := <-ended; err != nil {
		t.Errorf("the allowed call: %v, want its output", err)
	}

	ended = call(`{"pay":1}`)
	id, digest, csrf, _ = ops.waitPending(t, ended)
	if code, _, _ := ops.post("/pending/"+id+"/deny", s.base, url.Values{"csrf": {csrf}, "digest": {digest}}); code != http.StatusBadRequest {
		t.Errorf("deny without a reason: %d, want 400", code)
	}
	if code, _, _ := ops.post("/pending/"+id+"/deny", s.base, url.Values{"csrf": {csrf}, "digest": {digest}, "reason": {"not this vendor"}}); code != http.StatusSeeOther {
		t.Fatalf("deny: %d", code)
	}
	if err := <-ended; engine.ReasonOf(err) != engine.ReasonApprovalDenied || !strings.Contains(err.Error(), "not this vendor") {
		t.Errorf("the denied call: %v, want APPROVAL_DENIED with the reason", err)
	}
	allowed, denied := records(t, s.eng, engine.EventApprovalAllowed), records(t, s.eng, engine.EventApprovalDenied)
	if len(allowed) != 1 || allowed[0].Caller != "token:ops" || allowed[0].Details["door"] != console.Door ||
		len(denied) != 1 || denied[0].Details["reason"] != "not this vendor" || denied[0].Details["door"] != console.Door {
		t.Errorf("decision records: allowed %+v, denied %+v; want each by token:ops through the console", allowed, denied)
	}
	if rs := records(t, s.eng, engine.EventApprovalRefused); len(rs) < 2 || rs[0].Caller != "token:lead" {
		t.Errorf("refused decisions %+v, want the lead's recorded", rs)
	}
}

// A caller's token that is not an admin's cannot sign the operators out: signing in
// with it again and again makes no session, so it never pushes an operator's out of
// the bounded session table.
func TestNonAdminLoginsDoNotEvictOperators(t *testing.T) {
	s := startConsole(t, nil)
	ops := newBrowser(t, s.base)
	ops.login(opsToken)
	agent := newBrowser(t, s.base)
	for range 70 { // more than the console keeps
		agent.post("/login", s.base, url.Values{"token": {agentToken}})
	}
	if code, body := ops.get("/"); code != http.StatusOK {
		t.Fatalf("the operator's session after a non-admin signed in 70 times: %d, want 200:\n%s", code, body)
	}
}
