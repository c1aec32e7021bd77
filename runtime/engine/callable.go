package engine

import (
	"context"

	"github.com/skillbox-dev/skillbox/runtime/approval"
)

// CallableBy reports whether caller may call the skill now: its version is approved,
// it is not disabled, and the approval's callers (when it lists any) include caller.
// It is the one rule every door's list of callable skills follows (the MCP tools of a
// caller, gRPC List with callable set); Invoke enforces the same checks.
func (s SkillInfo) CallableBy(caller string) bool {
	return s.Approved && !s.Disabled && approval.CheckCaller(s.Approval, caller) == nil
}

// HiddenFrom reports whether the skill's approval names callers and caller is not one
// of them: such a skill is left out of what caller is shown, whatever its state.
func (s SkillInfo) HiddenFrom(caller string) bool {
	return s.Approval != nil && approval.CheckCaller(s.Approval, caller) != nil
}

// Callable lists the skills caller may call now (CallableBy), by name.
func (e *Engine) Callable(ctx context.Context, caller string) ([]SkillInfo, error) {
	all, err := e.List(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, s := range all {
		if s.CallableBy(caller) {
			out = append(out, s)
		}
	}
	return out, nil
}
