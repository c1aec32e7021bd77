package mcp

import (
	"fmt"
	"net/http"
)

// Path is where the Streamable HTTP endpoint is served.
const Path = "/mcp"

// Admission is how the HTTP door lets a request in: the host's listener
// (transport.HTTPListener) checks Host and Origin against DNS rebinding and names the
// caller by the same rule as gRPC (transport.Identify).
type Admission interface {
	CheckHost(r *http.Request) error
	Identify(r *http.Request) (string, error)
}

// Handler serves MCP over Streamable HTTP at Path. A request whose Host or Origin is
// not this server's gets 403, one without a valid token or certificate 401 (and
// refused is told, for the audit log); the rest reach the caller's own MCP server.
func (d *Door) Handler(a Admission, refused func(r *http.Request, err error)) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(Path, func(w http.ResponseWriter, r *http.Request) {
		if err := a.CheckHost(r); err != nil {
			http.Error(w, "forbidden: "+err.Error(), http.StatusForbidden)
			return
		}
		caller, err := a.Identify(r)
		if err != nil {
			if refused != nil {
				refused(r, err)
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="skillbox"`)
			http.Error(w, "unauthenticated: "+err.Error(), http.StatusUnauthorized)
			return
		}
		if !d.enter(caller) {
			http.Error(w, fmt.Sprintf("too many requests at once: %s has %d under way, the most one caller may have", caller, MaxCallerRequests), http.StatusTooManyRequests)
			return
		}
		defer d.leave(caller)
		cs, err := d.callerServer(r.Context(), caller)
		if err != nil {
			http.Error(w, "the skill list is unavailable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if statelessRevision(r) {
			cs.stateless.ServeHTTP(w, r)
			return
		}
		cs.http.ServeHTTP(w, r)
	})
	return mux
}

// MaxCallerRequests bounds the HTTP requests one caller may have under way at once:
// tool calls, and the streams a client holds open for notifications (a session's GET,
// the stateless revision's subscriptions/listen), each a goroutine and a connection.
// Past it a request gets 429.
const MaxCallerRequests = 128

// enter counts a request of caller under way, or reports false when caller has
// MaxCallerRequests already.
func (d *Door) enter(caller string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.busy[caller] >= MaxCallerRequests {
		return false
	}
	d.busy[caller]++
	return true
}

func (d *Door) leave(caller string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.busy[caller]--; d.busy[caller] <= 0 {
		delete(d.busy, caller)
	}
}

// StatelessRevision is the first MCP revision without sessions (SEP-2575).
const StatelessRevision = "2026-07-28"

// statelessRevision reports whether r speaks the stateless revision or a later one:
// its MCP-Protocol-Version header, which that revision requires on every request,
// says so (revisions are dates, so they compare as strings).
func statelessRevision(r *http.Request) bool {
	return r.Header.Get("Mcp-Protocol-Version") >= StatelessRevision
}
