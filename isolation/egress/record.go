package egress

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/skillbox-dev/skillbox/isolation"
)

// Bounds on what one call's egress leaves behind. Every attempt, allowed or refused,
// takes one unit of the request budget; once it is spent, attempts are refused and
// counted, and only the first such refusal is kept as a record. So a call has at most
// requests+1 records, and never more than MaxRecords whatever its budget. Each record's
// text is bounded, so a hostile skill cannot grow the audit log or a reply with long
// URLs or many refusals.
const (
	// MaxRecords is the most decisions one Guard keeps: MaxRecords-1 of any kind plus
	// the first refusal over the request budget. Later decisions are only counted.
	MaxRecords = 256
	// MaxURLBytes bounds a record's URL (and the URL in an error).
	MaxURLBytes = 1024
	// MaxReasonBytes bounds a record's Reason.
	MaxReasonBytes = 256
	// maxMethodBytes bounds a record's Method; real methods are a few letters.
	maxMethodBytes = 32
)

// ellipsis ends a text that was cut.
const ellipsis = "…"

// boundText returns s as valid UTF-8 without control or format characters (each
// replaced by U+FFFD), cut to at most limit bytes, ending in "…" when cut. limit must
// be at least len(ellipsis).
func boundText(s string, limit int) string {
	if len(s) <= limit && isClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(min(len(s), limit))
	keep := -1 // where the text ends if it has to be cut
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if !cleanRune(r, size) {
			r = utf8.RuneError
		}
		n := utf8.RuneLen(r)
		if keep < 0 && b.Len()+n > limit-len(ellipsis) {
			keep = b.Len()
		}
		if b.Len()+n > limit {
			return b.String()[:keep] + ellipsis
		}
		b.WriteRune(r)
	}
	return b.String()
}

// isClean reports whether s is valid UTF-8 without control or format characters.
func isClean(s string) bool {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !cleanRune(r, size) {
			return false
		}
		i += size
	}
	return true
}

// cleanRune rejects invalid bytes, controls (C0, DEL, C1) and format characters such
// as bidi overrides, which can make a log line read as something else.
func cleanRune(r rune, size int) bool {
	if r == utf8.RuneError && size <= 1 {
		return false
	}
	return !unicode.IsControl(r) && !unicode.Is(unicode.Cf, r)
}

func boundURL(s string) string    { return boundText(s, MaxURLBytes) }
func boundReason(s string) string { return boundText(s, MaxReasonBytes) }
func boundMethod(s string) string { return boundText(s, maxMethodBytes) }

// keep appends rec unless MaxRecords-1 ordinary records are already kept, and
// returns its index, or -1 when it was only counted. g.mu is held.
func (g *Guard) keep(rec isolation.EgressRecord) int {
	ordinary := len(g.records)
	if g.overLimitKept {
		ordinary--
	}
	if ordinary >= MaxRecords-1 {
		return -1
	}
	g.records = append(g.records, rec)
	return len(g.records) - 1
}

// charge takes one unit of the request budget for an attempt, whatever its outcome.
// Once the budget is spent the attempt is refused: the first such refusal is kept as a
// record, the rest are only counted.
func (g *Guard) charge(method, rawURL string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.attempts < g.limits.MaxRequests {
		g.attempts++
		return nil
	}
	g.denied++
	method, rawURL = boundMethod(method), boundURL(rawURL)
	if !g.overLimitKept {
		g.overLimitKept = true
		g.records = append(g.records, isolation.EgressRecord{
			Time: g.opts.now(), Method: method, URL: rawURL, Denial: isolation.DenialRequestLimit,
			Reason: fmt.Sprintf("request limit of %d reached; later attempts are counted, not recorded", g.limits.MaxRequests),
		})
	}
	return &isolation.Error{Reason: isolation.ReasonRequests,
		Msg: fmt.Sprintf("egress: %s %s: request limit of %d reached", method, rawURL, g.limits.MaxRequests)}
}

// deny records a policy refusal and returns it as a *DeniedError.
func (g *Guard) deny(method, rawURL, reason string) error {
	method, rawURL, reason = boundMethod(method), boundURL(rawURL), boundReason(reason)
	g.mu.Lock()
	g.denied++
	g.keep(isolation.EgressRecord{
		Time: g.opts.now(), Method: method, URL: rawURL, Denial: isolation.DenialNotGranted, Reason: reason,
	})
	g.mu.Unlock()
	return &DeniedError{URL: rawURL, Reason: reason}
}

// allow records a charged request the policy let through and returns the record's
// index (-1 when it was only counted).
func (g *Guard) allow(method, rawURL string) int {
	rec := isolation.EgressRecord{Time: g.opts.now(), Method: boundMethod(method), URL: boundURL(rawURL), Allowed: true}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.made++
	return g.keep(rec)
}

// denyAdmitted turns a request allow let through into a refusal: the dialler found
// no address it may reach, so nothing went out.
func (g *Guard) denyAdmitted(idx int, rawURL, reason string) error {
	rawURL, reason = boundURL(rawURL), boundReason(reason)
	g.mu.Lock()
	defer g.mu.Unlock()
	if idx >= 0 && idx < len(g.records) {
		r := &g.records[idx]
		r.Allowed, r.Denial, r.Reason = false, isolation.DenialNotGranted, reason
	}
	g.made--
	g.denied++
	return &DeniedError{URL: rawURL, Reason: reason}
}

// update changes a record made by allow (status, bytes, or how it failed).
func (g *Guard) update(i int, f func(*isolation.EgressRecord)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if i >= 0 && i < len(g.records) {
		f(&g.records[i])
		g.records[i].Reason = boundReason(g.records[i].Reason)
	}
}
