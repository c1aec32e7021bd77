// Package runner is the part of a call every call takes once it knows what to run:
// the sandbox of the skill's kind, the run, redaction of brokered values, the output
// checked against its schema, a refused request named as the cause of a failure,
// budget and egress counts. The engine (runtime/engine) puts verification, approval,
// budgets and the audit log around it; Author is the unverified path of an author's
// skill directory (`skillbox run DIR`) with nothing around it.
//
// It links no store, audit log, signing or metrics library, so that a small binary
// can run the author's loop and start fast (issue 18; docs/rationale.md).
package runner

import (
	"context"
	"fmt"
	"maps"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// Counter is where calls are counted (runtime/metrics.Metrics implements it).
type Counter interface {
	// CallStarted marks a call of skill through door ("" is in-process) as in flight;
	// the returned function is called once when it ends, with its outcome ("" for
	// success, else the reason).
	CallStarted(skill, door string) (ended func(outcome string))
	Egress(skill string, allowed, denied int)
	BudgetExhausted(skill, kind string)
}

// CutShort says what a failed call that ctx cut short failed for (the operator's kill
// switch, a shutdown), or nil to keep the sandbox's failure.
type CutShort func(ctx context.Context, m *manifest.Manifest) error

// Runner runs calls in the sandboxes it holds by kind.
type Runner struct {
	sandboxes map[string]isolation.Sandbox // by kind; never changed after New
	counter   Counter
	cutShort  CutShort
}

// New returns a Runner over sandboxes (by kind), counting in counter (nil counts
// nothing), asking cutShort (nil: never) why a cancelled call failed.
func New(sandboxes map[string]isolation.Sandbox, counter Counter, cutShort CutShort) *Runner {
	if counter == nil {
		counter = noCounter{}
	}
	return &Runner{sandboxes: maps.Clone(sandboxes), counter: counter, cutShort: cutShort}
}

// Sandboxes are the runner's sandboxes by kind (a copy).
func (r *Runner) Sandboxes() map[string]isolation.Sandbox { return maps.Clone(r.sandboxes) }

// SandboxFor is the sandbox registered for the skill's kind.
func (r *Runner) SandboxFor(m *manifest.Manifest) (isolation.Sandbox, error) {
	kind := m.Sandbox.Kind()
	if sb := r.sandboxes[kind]; sb != nil {
		return sb, nil
	}
	return nil, errorf(ReasonUnavailable, "%s needs the %s sandbox, which is not available", m.Name, kind)
}

// Execute is what every call shares, the operator's and the author's: the run in the
// sandbox, the output checked against its schema, the kill switch named as the
// cause, egress metrics, a refused request named as the likely cause of a failure,
// and budget metrics. It returns what the sandbox reported and the call's failure,
// if any. author keeps the schema validator's words in an output refusal (the
// author's own data on the author's terminal); the operator's path never lets them
// out.
func (r *Runner) Execute(ctx context.Context, sb isolation.Sandbox, call isolation.Call, author bool) (isolation.Result, error) {
	m := call.Skill.Manifest
	out, runErr := sb.Run(ctx, call)
	// Nothing the sandbox reports leaves skillbox with a brokered value in it: not the
	// output (before it is validated, so a reply is what was checked), not the logs,
	// not the egress records, not the failure's words.
	if rd := isolation.NewRedactor(call.Grant.Brokered); rd != nil {
		out, runErr = redactResult(rd, out, runErr)
	}
	if runErr == nil {
		if err := m.ValidateOutput(out.Output); err != nil {
			runErr = SchemaRefusal(ReasonInvalidOutput, "output", out.Output, err)
			if author {
				runErr = &Error{Reason: ReasonInvalidOutput, Field: runErr.(*Error).Field, Msg: "invalid output", Err: err}
			}
		}
	}
	if runErr != nil && r.cutShort != nil {
		if err := r.cutShort(ctx, m); err != nil {
			runErr = err
		}
	}
	// Metrics count every attempt, recorded or not.
	r.counter.Egress(m.Name, out.Usage.Requests, out.Usage.DeniedRequests)
	runErr = attributeDenial(runErr, out.Egress)
	if kind := BudgetKind(isolation.ReasonOf(runErr)); runErr != nil && kind != "" {
		r.counter.BudgetExhausted(m.Name, kind)
	} else if HitRequestLimit(out.Egress) {
		r.counter.BudgetExhausted(m.Name, BudgetKind(isolation.ReasonRequests))
	}
	return out, runErr
}

// redactResult replaces brokered values in everything a sandbox reports. A failure
// whose words held a value is replaced by one with the same reason and redacted
// words (its chain, which may hold the value, is dropped).
func redactResult(r *isolation.Redactor, out isolation.Result, runErr error) (isolation.Result, error) {
	out.Output = r.Bytes(out.Output)
	out.Logs = r.Bytes(out.Logs)
	if len(out.Egress) > 0 {
		recs := make([]isolation.EgressRecord, len(out.Egress))
		for i, rec := range out.Egress {
			rec.URL, rec.Reason, rec.Method = r.String(rec.URL), r.String(rec.Reason), r.String(rec.Method)
			recs[i] = rec
		}
		out.Egress = recs
	}
	if runErr != nil {
		msg, skill := runErr.Error(), isolation.SkillMessage(runErr)
		if rm, rs := r.String(msg), r.String(skill); rm != msg || rs != skill {
			runErr = &isolation.Error{Reason: isolation.ReasonOf(runErr), Msg: rm, SkillMsg: rs}
		}
	}
	return out, runErr
}

// attributeDenial names the likely cause of a skill that failed after one of its
// requests was refused: the caller then sees EGRESS_DENIED or REQUEST_LIMIT (with the
// URL) instead of a bare SKILL_FAILED. A skill that handled the denial and succeeded is
// not failed; the denial is in its egress records and the audit log either way.
func attributeDenial(runErr error, records []isolation.EgressRecord) error {
	if runErr == nil || isolation.ReasonOf(runErr) != isolation.ReasonSkillFailed {
		return runErr
	}
	for _, rec := range records {
		if rec.Allowed {
			continue
		}
		return &isolation.Error{Reason: DenialReason(rec),
			Msg: fmt.Sprintf("the skill failed after %s %s was refused (%s)", rec.Method, rec.URL, rec.Reason), Err: runErr}
	}
	return runErr
}

// HitRequestLimit reports whether a request was refused for the call's request limit.
func HitRequestLimit(records []isolation.EgressRecord) bool {
	for _, rec := range records {
		if rec.Denial == isolation.DenialRequestLimit {
			return true
		}
	}
	return false
}

// DenialReason is the call failure reason a refused egress record stands for.
func DenialReason(rec isolation.EgressRecord) isolation.Reason {
	if rec.Denial == isolation.DenialRequestLimit {
		return isolation.ReasonRequests
	}
	return isolation.ReasonEgressDenied
}

// BudgetKind names the budget a sandbox reason exhausted, or "" when it is not a
// budget.
func BudgetKind(r isolation.Reason) string {
	switch r {
	case isolation.ReasonTimeout:
		return "time"
	case isolation.ReasonMemory:
		return "memory"
	case isolation.ReasonOutput:
		return "output"
	case isolation.ReasonLogs:
		return "logs"
	case isolation.ReasonRequests:
		return "requests"
	}
	return ""
}

type noCounter struct{}

func (noCounter) CallStarted(string, string) func(string) { return func(string) {} }
func (noCounter) Egress(string, int, int)                 {}
func (noCounter) BudgetExhausted(string, string)          {}
