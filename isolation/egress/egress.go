// Package egress is the one origin policy for outbound traffic from skills: scheme,
// host, port and wildcard matching, checks on the address actually dialled, redirect
// re-checks, request and byte caps, and a record of every decision. The wasm host
// function and the container egress proxy both enforce it through a Guard.
package egress

import (
	"context"
	"net"
	"net/http"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// Resolver looks up host names; tests inject one so no outside name is ever queried.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Limits caps one call's outbound traffic.
type Limits struct {
	MaxRequests      int   // requests that may go out (redirect hops count)
	MaxResponseBytes int64 // bytes of one response body
}

// Option configures a Guard.
type Option func(*options)

type options struct {
	resolver Resolver
}

// WithResolver sets the resolver used to turn granted names into addresses.
func WithResolver(r Resolver) Option { return func(o *options) { o.resolver = r } }

// Guard enforces one call's grant. It is safe for concurrent use.
type Guard struct {
	origins []manifest.Origin
	limits  Limits
	opts    options
}

// NewGuard returns a Guard for one call.
func NewGuard(origins []manifest.Origin, limits Limits, opts ...Option) *Guard {
	g := &Guard{origins: origins, limits: limits}
	for _, o := range opts {
		o(&g.opts)
	}
	return g
}

// Do sends req if its origin is granted, following redirects itself and re-checking
// every hop. A denial is a *DeniedError. The response body is capped at
// MaxResponseBytes.
func (g *Guard) Do(ctx context.Context, req *http.Request) (*http.Response, error) {
	return nil, &DeniedError{URL: req.URL.String(), Reason: "egress not implemented yet"}
}

// Records returns every decision so far, in order.
func (g *Guard) Records() []isolation.EgressRecord { return nil }

// Counts returns how many requests went out and how many were denied.
func (g *Guard) Counts() (made, denied int) { return 0, 0 }

// DeniedError is a request the policy refused before any byte left.
type DeniedError struct {
	URL    string
	Reason string
}

func (e *DeniedError) Error() string { return "egress denied: " + e.URL + ": " + e.Reason }
