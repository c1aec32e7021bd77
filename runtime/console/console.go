// Package console is the operator's web console, a door beside gRPC and MCP: the calls
// waiting for a person's decision with allow and deny, skills with their state,
// signer, grant and risk notes, the calls in flight with the kill switch, and the
// audit log's tail with its verify status. Pages are rendered on the
// server (html/template) with a little JavaScript, everything embedded: no build step,
// no CDN. It is admitted like the other doors (its listener's Host/Origin check and
// caller identity), only admins may use it, and every action is an engine call
// recorded in the audit log with the operator's identity and door "console".
package console

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/runtime/engine"
)

// Door is the door's name in the audit log.
const Door = "console"

// Session lifetimes: a session ends after IdleTimeout without a request, and
// MaxSessionAge after login whatever happens.
const (
	IdleTimeout   = time.Hour
	MaxSessionAge = 12 * time.Hour
	// maxSessions bounds the sessions kept; a login beyond it ends the oldest.
	maxSessions = 64
)

// Admission is how the console lets a request in: the host's listener
// (transport.HTTPListener) checks Host and Origin against DNS rebinding and names the
// caller by the same rule as gRPC and MCP (a client certificate or an Authorization
// header); TokenLogin names the caller of a token typed into the login form.
type Admission interface {
	CheckHost(r *http.Request) error
	Identify(r *http.Request) (string, error)
	// TokenLogin is Identify for a bearer token given in the login form.
	TokenLogin(r *http.Request, token string) (string, error)
	// Tokens reports whether the listener has a token file (the login form is offered).
	Tokens() bool
	// TLS reports whether the listener serves TLS (the session cookie is then Secure).
	TLS() bool
}

// Config is what a console serves.
type Config struct {
	Engine    *engine.Engine
	Admission Admission
	// CheckAdmin is the server's one rule of who may act as an operator
	// (server.CheckAdmin): an error refuses the request (and is audited there).
	CheckAdmin func(ctx context.Context, who, what string) error
	// Refused, if set, is told of every request refused as unauthenticated (a wrong
	// token at login, no credentials), for the audit log.
	Refused func(r *http.Request, err error)
	// AuditTail is how many of the audit log's last records the audit page shows
	// (default 50).
	AuditTail int
}

// Console serves the pages. Its sessions live in memory: a restart logs everyone out.
type Console struct {
	cfg   Config
	pages *template.Template
	// csrfKey makes the CSRF token of an identity without a session (a client
	// certificate, an Authorization header): HMAC(csrfKey, identity).
	csrfKey []byte

	mu       sync.Mutex
	sessions map[string]*session // by the sha256 of the cookie's value
}

type session struct {
	who     string
	csrf    string
	created time.Time
	seen    time.Time
}

//go:embed assets
var assets embed.FS

// New returns a console over cfg.
func New(cfg Config) (*Console, error) {
	if cfg.Engine == nil || cfg.Admission == nil || cfg.CheckAdmin == nil {
		return nil, errors.New("console: an engine, an admission and an admin rule are required")
	}
	if cfg.AuditTail <= 0 {
		cfg.AuditTail = 50
	}
	pages, err := template.New("").Funcs(funcs).ParseFS(assets, "assets/*.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	return &Console{cfg: cfg, pages: pages, csrfKey: key, sessions: map[string]*session{}}, nil
}

// Handler serves the console at /. A request whose Host or Origin is not this
// server's gets 403 before anything else.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /static/", http.StripPrefix("/static/", staticFiles(static)))
	mux.HandleFunc("GET /login", c.loginPage)
	mux.HandleFunc("POST /login", c.login)
	mux.HandleFunc("POST /logout", c.operator(c.logout))
	mux.HandleFunc("GET /{$}", c.operator(c.overview))
	mux.HandleFunc("GET /skills/{name}", c.operator(c.skill))
	mux.HandleFunc("GET /audit", c.operator(c.audit))
	mux.HandleFunc("POST /skills/{name}/disable", c.operator(c.disable))
	mux.HandleFunc("POST /skills/{name}/enable", c.operator(c.enable))
	mux.HandleFunc("GET /pending/{id}", c.operator(c.request))
	mux.HandleFunc("POST /pending/{id}/allow", c.operator(c.decide(true)))
	mux.HandleFunc("POST /pending/{id}/deny", c.operator(c.decide(false)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secureHeaders(w)
		if err := c.cfg.Admission.CheckHost(r); err != nil {
			http.Error(w, "forbidden: "+err.Error(), http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// secureHeaders: no script but the console's own file, no inline script or style, no
// framing, nothing cached, no referrer leaving the console. The referrer policy is
// same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with
// the console's own form posts, and sameOrigin could no longer tell them apart.
func secureHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

func staticFiles(static fs.FS) http.Handler {
	files := http.FileServerFS(static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// actor is who makes a request, and the CSRF token its forms carry.
type actor struct {
	who     string
	csrf    string
	cookie  string // the session cookie's value; "" for a certificate or header caller
	session bool
}

// cookieName is the session cookie's name: with TLS the __Host- prefix, which a
// browser accepts only Secure, for this host alone, on path /.
func (c *Console) cookieName() string {
	if c.cfg.Admission.TLS() {
		return "__Host-skillbox-console"
	}
	return "skillbox-console"
}

// operator admits h's requests: a live session, else the connection's own identity
// (client certificate, Authorization header). Without either: the login form (401)
// when tokens are in use, else 401. An identity that is not an admin gets 403. A POST
// must come from this console's own page: its Origin is this server, its form's CSRF
// token the caller's.
func (c *Console) operator(h func(w http.ResponseWriter, r *http.Request, a actor)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, err := c.actor(r)
		if err != nil {
			if c.cfg.Refused != nil {
				c.cfg.Refused(r, err)
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="skillbox console"`)
			if c.cfg.Admission.Tokens() && r.Method == http.MethodGet {
				c.render(w, http.StatusUnauthorized, "login.html", loginView{Note: "Sign in with an admin's token."})
				return
			}
			http.Error(w, "unauthenticated: "+err.Error(), http.StatusUnauthorized)
			return
		}
		if err := c.cfg.CheckAdmin(r.Context(), a.who, "console "+r.Method+" "+r.URL.Path); err != nil {
			c.render(w, http.StatusForbidden, "error.html", errorView{Title: "Not an admin",
				Message: err.Error() + ". To let it in, an operator serves with --admin " + a.who + "."})
			return
		}
		if r.Method == http.MethodPost {
			if err := c.checkForm(r, a); err != nil {
				c.render(w, http.StatusForbidden, "error.html", errorView{Title: "Refused", Message: err.Error()})
				return
			}
		}
		h(w, r, a)
	}
}

// actor names the caller of r, or says why it cannot.
func (c *Console) actor(r *http.Request) (actor, error) {
	if ck, err := r.Cookie(c.cookieName()); err == nil && ck.Value != "" {
		if s := c.lookup(ck.Value); s != nil {
			return actor{who: s.who, csrf: s.csrf, cookie: ck.Value, session: true}, nil
		}
	}
	who, err := c.cfg.Admission.Identify(r)
	if err != nil {
		return actor{}, err
	}
	return actor{who: who, csrf: c.identityCSRF(who)}, nil
}

func (c *Console) identityCSRF(who string) string {
	m := hmac.New(sha256.New, c.csrfKey)
	m.Write([]byte("console csrf\x00" + who))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkForm refuses a POST that did not come from this console's page: a missing or
// foreign Origin, or a CSRF token that is not the caller's.
func (c *Console) checkForm(r *http.Request, a actor) error {
	if err := sameOrigin(r, c.cfg.Admission.TLS()); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return errors.New("the form could not be read")
	}
	got := r.PostForm.Get("csrf")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(a.csrf)) != 1 {
		return errors.New("the form's CSRF token is missing or not this session's: reload the page and try again")
	}
	return nil
}

// sameOrigin requires a POST's Origin to be exactly this console (scheme, host, port):
// browsers send it with every POST, and a page elsewhere cannot forge it.
func sameOrigin(r *http.Request, tls bool) error {
	o := r.Header.Get("Origin")
	if o == "" {
		return errors.New("a form post without an Origin header is refused")
	}
	u, err := url.Parse(o)
	scheme := "http"
	if tls {
		scheme = "https"
	}
	if err != nil || u.Scheme != scheme || u.Host != r.Host || u.Path != "" {
		return fmt.Errorf("origin %q is not this console (%s://%s)", o, scheme, r.Host)
	}
	return nil
}

// newSession starts a session for who and returns the cookie's value.
func (c *Console) newSession(who string) (string, error) {
	id, csrf := make([]byte, 32), make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return "", err
	}
	if _, err := rand.Read(csrf); err != nil {
		return "", err
	}
	v := base64.RawURLEncoding.EncodeToString(id)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked(now)
	if len(c.sessions) >= maxSessions {
		var oldest string
		for k, s := range c.sessions {
			if oldest == "" || s.created.Before(c.sessions[oldest].created) {
				oldest = k
			}
		}
		delete(c.sessions, oldest)
	}
	c.sessions[sessionKey(v)] = &session{who: who, csrf: base64.RawURLEncoding.EncodeToString(csrf), created: now, seen: now}
	return v, nil
}

// lookup returns the live session of a cookie value, and marks it seen.
func (c *Console) lookup(v string) *session {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[sessionKey(v)]
	if s == nil {
		return nil
	}
	if now.Sub(s.seen) > IdleTimeout || now.Sub(s.created) > MaxSessionAge {
		delete(c.sessions, sessionKey(v))
		return nil
	}
	s.seen = now
	cp := *s
	return &cp
}

func (c *Console) endSession(v string) {
	c.mu.Lock()
	delete(c.sessions, sessionKey(v))
	c.mu.Unlock()
}

func (c *Console) expireLocked(now time.Time) {
	for k, s := range c.sessions {
		if now.Sub(s.seen) > IdleTimeout || now.Sub(s.created) > MaxSessionAge {
			delete(c.sessions, k)
		}
	}
}

// sessionKey is how a session is kept: the sha256 of its cookie, so that the map's
// lookups do not compare the secret itself byte by byte.
func sessionKey(v string) string {
	h := sha256.Sum256([]byte(v))
	return string(h[:])
}

func (c *Console) setCookie(w http.ResponseWriter, v string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(), Value: v, Path: "/", HttpOnly: true,
		Secure: c.cfg.Admission.TLS(), SameSite: http.SameSiteStrictMode, MaxAge: maxAge})
}

type loginView struct {
	Note, Error string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if !c.cfg.Admission.Tokens() {
		c.render(w, http.StatusNotFound, "error.html", errorView{Title: "No login here",
			Message: "This console admits callers by their client certificate; there are no tokens to sign in with."})
		return
	}
	c.render(w, http.StatusOK, "login.html", loginView{Note: "Sign in with an admin's token."})
}

// login takes a token from the form, names its holder by the listener's rule, and
// starts a session if the holder is an admin. A wrong token is refused (and audited)
// like one in a header; a non-admin's is refused (and audited) with 403.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if !c.cfg.Admission.Tokens() {
		http.Error(w, "no token login on this console", http.StatusNotFound)
		return
	}
	if err := sameOrigin(r, c.cfg.Admission.TLS()); err != nil {
		c.render(w, http.StatusForbidden, "error.html", errorView{Title: "Refused", Message: err.Error()})
		return
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read", http.StatusBadRequest)
		return
	}
	who, err := c.cfg.Admission.TokenLogin(r, r.PostForm.Get("token"))
	if err != nil {
		if c.cfg.Refused != nil {
			c.cfg.Refused(r, err)
		}
		c.render(w, http.StatusUnauthorized, "login.html", loginView{Error: "That token is not valid here."})
		return
	}
	// Only an admin gets a session: sessions are few (maxSessions, the oldest ending
	// first), and a caller's token that is not an admin's must not be able to sign the
	// operators out by signing in again and again.
	if err := c.cfg.CheckAdmin(r.Context(), who, "console POST /login"); err != nil {
		c.render(w, http.StatusForbidden, "error.html", errorView{Title: "Not an admin",
			Message: err.Error() + ". To let it in, an operator serves with --admin " + who + "."})
		return
	}
	v, err := c.newSession(who)
	if err != nil {
		http.Error(w, "could not start a session", http.StatusInternalServerError)
		return
	}
	c.setCookie(w, v, int(MaxSessionAge/time.Second))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, a actor) {
	if a.session {
		c.endSession(a.cookie)
	}
	c.setCookie(w, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

type errorView struct {
	Title, Message string
}

// render writes a page; a template that fails is the console's bug, told as a 500
// without the half-written page.
func (c *Console) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := c.pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
