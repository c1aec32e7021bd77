package engine

import (
	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/runtime/metrics"
	"github.com/skillbox-dev/skillbox/runtime/runner"
)

// UnverifiedRequest is one call of a skill package directory that nobody signed,
// installed or approved: the author's inner loop (`skillbox run DIR`). See
// runner.Author.InvokeUnverified.
type UnverifiedRequest = runner.UnverifiedRequest

// MountError is a request whose mounts do not match the files its manifest asks for.
type MountError = runner.MountError

// Author runs unverified calls only (runner.Author): never offered on an Engine, so
// a door that serves callers cannot run unsigned code by mistake.
type Author = runner.Author

// SkillMessage is the skill's own words that err carries (the end of its stderr), or
// "". They may echo the input, so they are for the one who made the call only.
func SkillMessage(err error) string { return isolation.SkillMessage(err) }

// NewAuthor returns an Author that runs calls in the sandboxes given by kind, counting
// them in m (nil makes one), through the same runner as the engine's calls.
func NewAuthor(sandboxes map[string]isolation.Sandbox, m *metrics.Metrics) *Author {
	return runner.NewAuthor(newCore(sandboxes, m).run)
}
