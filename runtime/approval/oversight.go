package approval

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/skillbox-dev/skillbox/internal/strictyaml"
	"github.com/skillbox-dev/skillbox/manifest"
)

// Bounds of Oversight.Wait: how long one call may wait for a person's decision. The
// default is long enough for someone on call to read the request, short enough that an
// agent's caller is not left hanging; the ceiling keeps a parked call (its input, its
// resolved grant) from living for hours in the server.
const (
	DefaultOversightWait = 5 * time.Minute
	MinOversightWait     = time.Second
	MaxOversightWait     = time.Hour
	// MaxOversightReasonBytes bounds the operator's note shown to approvers.
	MaxOversightReasonBytes = 512
	// MaxApprovers bounds the approvers list.
	MaxApprovers = 64
)

// Oversight marks a skill for per-call human oversight: every call is validated, then
// parked until one of Approvers allows it (or denies it, or Wait runs out). It is part
// of the grant, so only the operator sets it and changing it is a new approval.
type Oversight struct {
	// Approvers may decide a call, in the same identity forms as Grant.Callers
	// ("unix:uid=N", "cert:NAME", "token:NAME"). Never the call's own caller.
	Approvers []string `yaml:"approvers"`
	// Wait is how long a call waits for a decision before it is refused
	// (APPROVAL_EXPIRED); zero means DefaultOversightWait. Between MinOversightWait and
	// MaxOversightWait.
	Wait manifest.Duration `yaml:"wait,omitempty"`
	// Reason is shown to the approver with each request (one line).
	Reason string `yaml:"reason,omitempty"`
}

// WaitBound is how long a call may wait: Wait, or the default when it is zero.
func (o *Oversight) WaitBound() time.Duration {
	if o == nil || o.Wait == 0 {
		return DefaultOversightWait
	}
	return time.Duration(o.Wait)
}

// MayDecide reports whether who is one of the approvers. It does not check that who
// is not the caller: the request knows its caller.
func (o *Oversight) MayDecide(who string) bool {
	if o == nil || who == "" {
		return false
	}
	for _, a := range o.Approvers {
		if a == who {
			return true
		}
	}
	return false
}

// decidable reports whether each of callers has an approver other than itself.
func (o *Oversight) decidable(callers []string) bool {
	for _, c := range callers {
		if !o.DecidableFor(c) {
			return false
		}
	}
	return true
}

// DecidableFor reports whether a call by caller can ever be allowed: some approver
// is not caller (no caller decides its own call).
func (o *Oversight) DecidableFor(caller string) bool {
	return slices.ContainsFunc(o.Approvers, func(a string) bool { return a != caller })
}

// syntax checks an oversight section; at is its field path ("grant.oversight").
func (o *Oversight) syntax(at string) []string {
	var probs []string
	if len(o.Approvers) == 0 {
		probs = append(probs, at+".approvers: at least one approver is required (who may allow or deny a call)")
	}
	if len(o.Approvers) > MaxApprovers {
		probs = append(probs, fmt.Sprintf("%s.approvers: %d approvers; at most %d", at, len(o.Approvers), MaxApprovers))
	}
	seen := map[string]bool{}
	for i, a := range o.Approvers {
		f := fmt.Sprintf("%s.approvers[%d]", at, i)
		switch {
		case strings.TrimSpace(a) == "":
			probs = append(probs, f+": empty approver")
		case seen[a]:
			probs = append(probs, fmt.Sprintf("%s: %q is listed twice", f, strictyaml.Cut(a, 64)))
		}
		seen[a] = true
	}
	switch w := time.Duration(o.Wait); {
	case w == 0:
	case w < MinOversightWait || w > MaxOversightWait:
		probs = append(probs, fmt.Sprintf("%s.wait: %s: want between %s and %s (default %s)", at, manifest.Duration(w),
			manifest.Duration(MinOversightWait), manifest.Duration(MaxOversightWait), manifest.Duration(DefaultOversightWait)))
	}
	if len(o.Reason) > MaxOversightReasonBytes {
		probs = append(probs, fmt.Sprintf("%s.reason: %d bytes; at most %d", at, len(o.Reason), MaxOversightReasonBytes))
	} else if strings.IndexFunc(o.Reason, unicode.IsControl) >= 0 {
		probs = append(probs, at+".reason: one line of text, without control characters")
	}
	return probs
}

// identities refuses approvers that no transport establishes (see callerIdentities).
func (o *Oversight) identities(at string) []string {
	var probs []string
	for i, a := range o.Approvers {
		// An anonymous TLS client is anyone holding no certificate: not a person.
		if strings.TrimSpace(a) == "" || (validCaller(a) && a != "tls:anonymous") {
			continue
		}
		probs = append(probs, fmt.Sprintf("%s.approvers[%d]: %q is not a person's identity; write unix:uid=N, cert:NAME or token:NAME",
			at, i, strictyaml.Cut(a, 64)))
	}
	return probs
}

// Words is the oversight section in plain words, for reviews and approvers.
func (o *Oversight) Words() string {
	if o == nil {
		return "none: calls run without a person's decision"
	}
	s := fmt.Sprintf("every call waits for a decision by %s, at most %s", strings.Join(o.Approvers, ", "), manifest.Duration(o.WaitBound()))
	if o.Reason != "" {
		s += " (" + o.Reason + ")"
	}
	return s
}
