// Package egress is the one origin policy for outbound traffic from skills: scheme,
// host, port and wildcard matching, checks on the address actually dialled, redirect
// re-checks, request and byte caps, and a record of every decision. The wasm host
// function and the container egress proxy both enforce it through a Guard.
package egress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// MaxRedirects is the most redirect hops one Do follows.
const MaxRedirects = 10

// Resolver looks up host names; tests inject one so no outside name is ever queried.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Limits caps one call's outbound traffic. Zero means none: no request may go out,
// no response byte may be read.
type Limits struct {
	// MaxRequests is how many attempts the call may make, allowed or refused by the
	// policy (redirect hops count): a refusal costs a unit too, so a skill cannot make
	// the Guard record refusals without end.
	MaxRequests      int
	MaxResponseBytes int64 // bytes of one response body
}

// Option configures a Guard.
type Option func(*options)

type options struct {
	resolver      Resolver
	tlsConfig     *tls.Config
	now           func() time.Time
	internalNames bool
	secrets       []isolation.BrokeredSecret
}

// WithSecrets gives the Guard the call's brokered secrets. On every request and
// redirect hop the policy lets through, after the budget charge and the policy check,
// the Guard sets each secret whose Origins cover the hop's origin (the policy's own
// Match) as its header, replacing any header of that name the skill set; a hop to any
// other origin never carries it. Response headers and bodies reach the caller with
// every value replaced by its placeholder (see isolation.Redactor).
func WithSecrets(s []isolation.BrokeredSecret) Option {
	return func(o *options) { o.secrets = append([]isolation.BrokeredSecret(nil), s...) }
}

// WithInternalNamesUnsafe lets an exact (non-wildcard) granted name resolve to internal
// addresses (loopback, RFC 1918, ULA, CGNAT), for operators whose internal services are
// reached by name through a resolver they control. Off by default: a name resolving
// inward is then refused as DNS rebinding. Link-local addresses stay refused either way.
func WithInternalNamesUnsafe() Option { return func(o *options) { o.internalNames = true } }

// WithResolver sets the resolver used to turn granted names into addresses.
func WithResolver(r Resolver) Option { return func(o *options) { o.resolver = r } }

// WithTLSConfig sets the TLS client configuration (e.g. an operator's extra roots).
// It is cloned; ServerName is always set from the request.
func WithTLSConfig(c *tls.Config) Option { return func(o *options) { o.tlsConfig = c } }

// Guard enforces one call's grant. It is safe for concurrent use.
type Guard struct {
	origins   []manifest.Origin
	limits    Limits
	opts      options
	transport *http.Transport
	redactor  *isolation.Redactor // nil without secrets

	mu            sync.Mutex
	records       []isolation.EgressRecord // at most MaxRecords
	attempts      int                      // budget units taken: every attempt, allowed or not
	made          int                      // requests that went out
	denied        int                      // attempts refused, recorded or only counted
	overLimitKept bool                     // the first refusal over the budget is in records
}

// NewGuard returns a Guard for one call.
func NewGuard(origins []manifest.Origin, limits Limits, opts ...Option) *Guard {
	g := &Guard{origins: append([]manifest.Origin(nil), origins...), limits: limits}
	for _, o := range opts {
		o(&g.opts)
	}
	if g.opts.resolver == nil {
		g.opts.resolver = net.DefaultResolver
	}
	if g.opts.now == nil {
		g.opts.now = time.Now
	}
	g.redactor = isolation.NewRedactor(g.opts.secrets)
	var tc *tls.Config
	if g.opts.tlsConfig != nil {
		tc = g.opts.tlsConfig.Clone()
	} else {
		tc = &tls.Config{}
	}
	tc.MinVersion = max(tc.MinVersion, tls.VersionTLS12)
	g.transport = &http.Transport{
		Proxy:                  nil, // never the environment's proxy
		DialContext:            g.dialContext,
		TLSClientConfig:        tc,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  30 * time.Second,
		ExpectContinueTimeout:  time.Second,
		DisableKeepAlives:      true, // every request dials, so every request is checked
		DisableCompression:     true, // the byte cap counts what the skill reads
		MaxResponseHeaderBytes: 64 << 10,
	}
	return g
}

// Brokers reports whether any of the Guard's secrets is listed for t's origin: a
// request there must be seen by the Guard (the container proxy terminates TLS for it)
// rather than tunnelled.
func (g *Guard) Brokers(t Target) bool {
	for _, s := range g.opts.secrets {
		if _, ok := Match(s.Origins, t); ok {
			return true
		}
	}
	return false
}

// Redactor is the redaction of the Guard's secrets (nil when it has none): what the
// Guard applies to responses, for anything else that reaches the skill.
func (g *Guard) Redactor() *isolation.Redactor { return g.redactor }

// attach sets on h the header of every secret listed for t and returns their names.
// A header the skill set under the same name (in any case) is replaced. A request
// that carries a secret also loses the skill's Range, If-Range and Accept-Encoding:
// a part of a response, or a compressed one, could carry an echo of the value past
// redaction.
func (g *Guard) attach(h http.Header, t Target) []string {
	var names []string
	for _, s := range g.opts.secrets {
		if _, ok := Match(s.Origins, t); !ok {
			continue
		}
		for k := range h {
			if strings.EqualFold(k, s.Header) {
				delete(h, k)
			}
		}
		h.Set(s.Header, s.Value)
		names = append(names, s.Name)
	}
	if names != nil {
		for _, k := range []string{"Range", "If-Range", "Accept-Encoding"} {
			h.Del(k)
		}
	}
	return names
}

// encodedError is a response to a request that carried a secret whose body is
// encoded (compressed): redaction cannot see into it, so it is not handed on.
type encodedError struct {
	url, encoding string
}

func (e *encodedError) Error() string {
	return fmt.Sprintf("egress: response from %s is %s-encoded; a response to a request that carried a secret must be unencoded so it can be checked for the secret", e.url, e.encoding)
}

// encoding is the content coding of a response other than identity, every
// Content-Encoding header and list item counted ("" when there is none): a first
// header saying identity does not hide a second saying gzip.
func encoding(h http.Header) string {
	var codings []string
	for _, v := range h.Values("Content-Encoding") {
		for _, c := range strings.Split(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				codings = append(codings, c)
			}
		}
	}
	return strings.Join(codings, ", ")
}

// DeniedError is a request the policy refused before any byte left. URL and Reason
// are bounded (MaxURLBytes, MaxReasonBytes).
type DeniedError struct {
	URL    string
	Reason string
}

func (e *DeniedError) Error() string { return "egress denied: " + e.URL + ": " + e.Reason }

// ResponseTooLargeError is a response body read past Limits.MaxResponseBytes.
type ResponseTooLargeError struct {
	URL   string
	Limit int64
}

func (e *ResponseTooLargeError) Error() string {
	return fmt.Sprintf("egress: response from %s exceeds the %d-byte limit", e.URL, e.Limit)
}

// IsDenied reports whether err is a policy refusal (a *DeniedError): the caller maps
// it to isolation.ReasonEgressDenied when a denial ends the call.
func IsDenied(err error) bool {
	var e *DeniedError
	return errors.As(err, &e)
}

// IsBudget reports whether err is the request budget running out
// (an *isolation.Error with Reason isolation.ReasonRequests).
func IsBudget(err error) bool {
	var e *isolation.Error
	return errors.As(err, &e) && e.Reason == isolation.ReasonRequests
}

// Records returns the decisions kept so far, in order: at most MaxRecords, and at most
// one refusal over the request budget (see charge).
func (g *Guard) Records() []isolation.EgressRecord {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]isolation.EgressRecord(nil), g.records...)
}

// Counts returns how many requests went out and how many attempts were refused (by
// the policy or the request budget), including those only counted, not kept.
func (g *Guard) Counts() (made, denied int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.made, g.denied
}

// recordURL is the URL as recorded and reported: never with a password.
func recordURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Redacted()
}

// hopKey carries the matched origin of one request down to the dialler.
type hopKey struct{}

type hop struct {
	origin manifest.Origin
	denied error // set by the dialler when the address check refuses
	mu     sync.Mutex
}

func (h *hop) setDenied(err error) {
	h.mu.Lock()
	h.denied = err
	h.mu.Unlock()
}

func (h *hop) deniedErr() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.denied
}

// addrDeniedError is the dialler's refusal; Do turns it into a *DeniedError.
type addrDeniedError struct{ reason string }

func (e *addrDeniedError) Error() string { return e.reason }

// dialContext resolves the host, checks every address against the matched origin
// and dials only an address that passed: the check is on what is dialled.
func (g *Guard) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	h, _ := ctx.Value(hopKey{}).(*hop)
	if h == nil {
		return nil, &addrDeniedError{reason: "no origin for this connection"}
	}
	conn, err := g.dialChecked(ctx, network, h.origin, address)
	var ad *addrDeniedError
	if errors.As(err, &ad) {
		h.setDenied(ad)
	}
	return conn, err
}

func (g *Guard) dialChecked(ctx context.Context, network string, origin manifest.Origin, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ips, err := g.opts.resolver.LookupIPAddr(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", host, err)
		}
		for _, ip := range ips {
			if ip.Zone != "" {
				continue
			}
			if a, ok := netip.AddrFromSlice(ip.IP); ok {
				addrs = append(addrs, a.Unmap())
			}
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("resolve %s: no addresses", host)
		}
	}
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	var firstDeny, lastErr error
	var own map[netip.Addr]bool // listed once, when an answer is public
	for _, a := range addrs {
		a = a.Unmap()
		c := classify(a)
		if c == classPublic {
			if own == nil {
				if own, err = ownAddrs(); err != nil {
					return nil, err // fails closed: nothing is dialled
				}
			}
			if own[a] {
				c = classOwn
			}
		}
		if err := checkClass(origin, a, c, g.opts.internalNames); err != nil {
			if firstDeny == nil {
				firstDeny = err
			}
			continue
		}
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return conn, nil
		}
		lastErr = err
	}
	if lastErr != nil {
		return nil, lastErr
	}
	return nil, &addrDeniedError{reason: firstDeny.Error()}
}

// hopByHop are headers that belong to one connection and are never forwarded.
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// cleanHeaders returns a copy of h without hop-by-hop headers (including any named
// in Connection) and without Proxy-Authorization.
func cleanHeaders(h http.Header) http.Header {
	out := h.Clone()
	if out == nil {
		out = http.Header{}
	}
	for _, v := range h.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				out.Del(name)
			}
		}
	}
	for _, name := range hopByHop {
		out.Del(name)
	}
	return out
}

// Do sends req if its origin is granted, following redirects itself and re-checking
// every hop. A denial is a *DeniedError; a spent request budget is an
// *isolation.Error with Reason isolation.ReasonRequests. The response body is capped
// at MaxResponseBytes: reading past it fails with a *ResponseTooLargeError.
func (g *Guard) Do(ctx context.Context, req *http.Request) (*http.Response, error) {
	return g.do(ctx, req, true)
}

func (g *Guard) do(ctx context.Context, req *http.Request, follow bool) (*http.Response, error) {
	cur := req
	// The transport closes the body of a request it sends; the bodies of requests it
	// never saw (the original on a denial, a replayed 307 body) are closed here.
	closeBody := func() {
		if req.Body != nil {
			req.Body.Close()
		}
		if cur != req && cur.Body != nil {
			cur.Body.Close()
		}
	}
	for hops := 0; ; hops++ {
		resp, idx, err := g.roundTrip(ctx, cur)
		if err != nil {
			closeBody()
			return nil, err
		}
		next, ok := g.redirect(cur, resp)
		if !follow || !ok {
			if cur != req && req.Body != nil {
				req.Body.Close()
			}
			resp.Body = &cappedBody{g: g, idx: idx, rc: resp.Body, limit: g.limits.MaxResponseBytes, url: boundURL(recordURL(cur.URL))}
			if g.redactor != nil {
				// Redaction changes the length: the caller reads to the end instead.
				resp.Body = g.redactor.Reader(resp.Body)
				resp.ContentLength = -1
				resp.Header.Del("Content-Length")
			}
			resp.Request = cur
			return resp, nil
		}
		resp.Body.Close()
		if hops+1 > MaxRedirects {
			cur = next
			closeBody()
			nu := recordURL(next.URL)
			if err := g.charge(next.Method, nu); err != nil {
				return nil, err
			}
			return nil, g.deny(next.Method, nu, fmt.Sprintf("more than %d redirects", MaxRedirects))
		}
		cur = next
	}
}

// roundTrip makes one checked request: budget, policy, then the transport, whose
// dialler checks the address.
func (g *Guard) roundTrip(ctx context.Context, req *http.Request) (*http.Response, int, error) {
	ru := boundURL(recordURL(req.URL))
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if err := ctx.Err(); err != nil {
		return nil, -1, err
	}
	if err := g.charge(method, ru); err != nil {
		return nil, -1, err
	}
	t, origin, err := Check(g.origins, req.URL)
	if err != nil {
		return nil, -1, g.deny(method, ru, err.Error())
	}
	idx := g.allow(method, ru)
	h := &hop{origin: origin}
	out := req.Clone(context.WithValue(ctx, hopKey{}, h))
	out.Method = method
	out.Header = cleanHeaders(req.Header)
	// The Host header is always the URL's host: a skill may not aim a granted
	// connection at another virtual host.
	out.Host = ""
	out.URL.Host = t.HostPort()
	if (t.Scheme == "http" && t.Port == 80) || (t.Scheme == "https" && t.Port == 443) {
		if t.IP.IsValid() && t.IP.Is6() {
			out.URL.Host = "[" + t.Host + "]"
		} else {
			out.URL.Host = t.Host
		}
	}
	out.URL.Scheme = t.Scheme
	out.RequestURI = ""
	out.Close = true
	// After the charge and the policy: only a hop that goes out carries a secret.
	names := g.attach(out.Header, t)
	if names != nil {
		g.update(idx, func(r *isolation.EgressRecord) { r.Secrets = names })
	}
	resp, err := g.transport.RoundTrip(out)
	if err != nil {
		var ad *addrDeniedError
		if errors.As(err, &ad) || h.deniedErr() != nil {
			reason := "address refused"
			if ad != nil {
				reason = ad.reason
			} else {
				reason = h.deniedErr().Error()
			}
			return nil, -1, g.denyAdmitted(idx, ru, reason)
		}
		// The transport's error may quote what the origin sent (a malformed status
		// line), which may echo a secret this hop carried: the skill and the record
		// get it redacted, as they get the response.
		msg := g.redactor.String(err.Error())
		g.update(idx, func(r *isolation.EgressRecord) { r.Reason = "failed: " + msg })
		return nil, -1, &hopError{msg: fmt.Sprintf("egress %s %s: %s", boundMethod(method), ru, msg), err: err}
	}
	g.update(idx, func(r *isolation.EgressRecord) { r.Status = resp.StatusCode })
	if g.redactor != nil {
		// Before anything reads them, Location (a redirect the Guard follows) included.
		for k, vs := range resp.Header {
			resp.Header[k] = g.redactor.Strings(vs)
		}
		if enc := encoding(resp.Header); names != nil && enc != "" {
			resp.Body.Close()
			e := &encodedError{url: ru, encoding: boundMethod(enc)}
			g.update(idx, func(r *isolation.EgressRecord) { r.Reason = "failed: " + e.Error() })
			return nil, -1, e
		}
	}
	return resp, idx, nil
}

// redirect returns the next request if resp is a redirect the Guard follows.
// 301/302/303 become GET without a body (HEAD stays HEAD); 307/308 keep method and
// body, which needs req.GetBody when there is a body. Credentials are dropped when
// the redirect leaves the origin.
func (g *Guard) redirect(req *http.Request, resp *http.Response) (*http.Request, bool) {
	switch resp.StatusCode {
	case 301, 302, 303, 307, 308:
	default:
		return nil, false
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, false
	}
	u, err := req.URL.Parse(loc)
	if err != nil {
		return nil, false
	}
	next := &http.Request{
		Method: req.Method,
		URL:    u,
		Header: req.Header.Clone(),
		Host:   "",
	}
	if next.Header == nil {
		next.Header = http.Header{}
	}
	if resp.StatusCode == 307 || resp.StatusCode == 308 {
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, false // cannot replay the body: hand the redirect back
			}
			b, err := req.GetBody()
			if err != nil {
				return nil, false
			}
			next.Body, next.GetBody, next.ContentLength = b, req.GetBody, req.ContentLength
		}
	} else {
		if req.Method != http.MethodHead {
			next.Method = http.MethodGet
		}
		for _, h := range []string{"Content-Type", "Content-Length", "Content-Encoding"} {
			next.Header.Del(h)
		}
	}
	if !sameOrigin(req.URL, u) {
		for _, h := range []string{"Authorization", "Cookie", "Www-Authenticate"} {
			next.Header.Del(h)
		}
	}
	if ref := req.URL; ref.Scheme == "https" && u.Scheme == "http" {
		next.Header.Del("Referer")
	}
	return next, true
}

func sameOrigin(a, b *url.URL) bool {
	ta, err1 := ParseTarget(a)
	tb, err2 := ParseTarget(b)
	return err1 == nil && err2 == nil && ta.Scheme == tb.Scheme && ta.Host == tb.Host && ta.Port == tb.Port
}

// cappedBody counts what is read, updates the record, and fails past the limit.
type cappedBody struct {
	g     *Guard
	idx   int
	rc    io.ReadCloser
	limit int64
	n     int64
	url   string
	over  bool
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.over {
		return 0, &ResponseTooLargeError{URL: b.url, Limit: b.limit}
	}
	// Read one byte beyond what is left so an exact-size body still ends in EOF.
	left := b.limit - b.n
	if int64(len(p)) > left+1 {
		p = p[:left+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) > left {
		n = int(left)
		b.over = true
		err = &ResponseTooLargeError{URL: b.url, Limit: b.limit}
	}
	b.n += int64(n)
	got, over := b.n, b.over
	b.g.update(b.idx, func(r *isolation.EgressRecord) {
		r.Bytes = got
		if over {
			r.Reason = fmt.Sprintf("response cut at the %d-byte limit", b.limit)
		}
	})
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }

// hopError is a hop that failed in the transport: its message redacted of the Guard's
// secrets, its cause kept for errors.Is and errors.As.
type hopError struct {
	msg string
	err error
}

func (e *hopError) Error() string { return e.msg }
func (e *hopError) Unwrap() error { return e.err }
