package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

// UnverifiedRequest is one call of a skill package directory that nobody signed,
// installed or approved: the author's inner loop (`skillbox run DIR`).
type UnverifiedRequest struct {
	// Dir is the package directory: skill.yaml and the code it names.
	Dir string
	// Package is Dir already loaded with skillpkg.Load, if the caller has it (it saves
	// hashing the code twice); nil makes InvokeUnverified load Dir.
	Package *skillpkg.Package
	Input   []byte // JSON
	// Mounts binds each files path the manifest asks for (guest) to a host directory
	// (absolute). Every path asked must be bound and nothing else may be.
	Mounts map[string]string
	// Env gives the values of the env and secret names the manifest asks for (os.LookupEnv,
	// say); a name it does not know is left unset. Nil sets none.
	Env func(name string) (string, bool)
}

// MountError is a request whose mounts do not match the files its manifest asks for:
// a path asked for and not bound, or a path bound that is not asked for (Unasked).
type MountError struct {
	Guest   string
	Unasked bool
}

func (e *MountError) Error() string {
	if e.Unasked {
		return fmt.Sprintf("the manifest asks for no files at %s", e.Guest)
	}
	return fmt.Sprintf("the manifest asks for files at %s, and no host directory is bound to it", e.Guest)
}

// SkillMessage is the skill's own words that err carries (the end of its stderr), or
// "". They may echo the input, so they are for the one who made the call only.
func SkillMessage(err error) string { return isolation.SkillMessage(err) }

// Author runs unverified calls only: the author's path without a skill home (no
// store, no trust policy, no approvals, no audit log). See InvokeUnverified.
type Author struct{ r *Runner }

// NewAuthor returns an Author that runs calls with r.
func NewAuthor(r *Runner) *Author { return &Author{r} }

// InvokeUnverified runs one call of the package in req.Dir with exactly what its
// manifest asks: every files path bound as req.Mounts says, env and secret values
// from req.Env, the manifest's own limits. It is the author's inner loop, and it
// skips what makes a call trusted: nothing is verified (there need be no signature),
// nothing is approved or installed, the caller is not checked, no slot is taken, and
// nothing is written to the operator's audit log. Everything else is the path every
// call takes (execute): input validated against the schema, the sandbox registered
// for the skill's kind, output validated, a refused request named as the cause of a
// failure with the same reason the server gives, metrics. Schema refusals keep the
// validator's words: the data is the author's own. A failure is an *Error or an
// *isolation.Error; a package that does not load keeps skillpkg's error in its chain.
// A call that ran and failed also returns its Result, without output: the logs, usage
// and egress decisions the author needs to see why.
//
// It is offered only on an Author, never on the engine's Engine: a door that serves
// callers cannot run unsigned code by mistake.
func (a *Author) InvokeUnverified(ctx context.Context, req UnverifiedRequest) (*Result, error) {
	return a.r.invokeUnverified(ctx, req)
}

func (c *Runner) invokeUnverified(ctx context.Context, req UnverifiedRequest) (*Result, error) {
	pkg := req.Package
	if pkg == nil {
		var err error
		if pkg, err = skillpkg.Load(req.Dir); err != nil {
			return nil, &Error{Reason: isolation.ReasonInvalidModule, Err: err}
		}
	}
	m := pkg.Manifest
	done := c.counter.CallStarted(m.Name, "")
	res, err := c.runUnverified(ctx, pkg, req)
	outcome := ""
	if err != nil {
		outcome = string(ReasonOf(err))
	}
	done(outcome)
	return res, err
}

func (c *Runner) runUnverified(ctx context.Context, pkg *skillpkg.Package, req UnverifiedRequest) (*Result, error) {
	m := pkg.Manifest
	if err := m.ValidateInput(req.Input); err != nil {
		field := SchemaRefusal(ReasonInvalidInput, "input", req.Input, err).Field
		return nil, &Error{Reason: ReasonInvalidInput, Field: field, Msg: "invalid input", Err: err}
	}
	grant, err := askedGrant(m, req.Mounts, req.Env)
	if err != nil {
		return nil, &Error{Reason: ReasonInvalidInput, Field: "mounts", Err: err}
	}
	sb, err := c.SandboxFor(m)
	if err != nil {
		return nil, err
	}
	skill := isolation.Skill{Manifest: m, Dir: pkg.Dir, Digest: pkg.CodeDigest().String()}
	// What install does for an installed skill (compile the module, load image.tar
	// and check its ID), done before the call so that its budget covers the call only.
	var prepared time.Duration
	if p, ok := sb.(isolation.Preparer); ok {
		start := time.Now()
		err := p.Prepare(ctx, skill)
		prepared = time.Since(start)
		if err != nil {
			reason := isolation.ReasonInvalidModule // code that cannot be made ready
			var ie *isolation.Error
			if errors.As(err, &ie) {
				reason = ie.Reason
			}
			return nil, &Error{Reason: reason, Msg: "prepare", Err: err}
		}
	}
	limits := approval.EffectiveLimits(m.Limits, manifest.Limits{}, manifest.Limits{})
	call := isolation.Call{
		ID:     fmt.Sprintf("run-%d", time.Now().UnixNano()),
		Skill:  skill,
		Input:  req.Input,
		Grant:  grant,
		Limits: limits,
	}
	out, err := c.Execute(ctx, sb, call, true)
	// The author's first run of a wasm module compiles it in Prepare, not in the call:
	// that wait is the call's compile time, apart from its wall time. A container's
	// Prepare loads image.tar, which is no compilation: it is not reported as one.
	if m.Sandbox.Wasm != nil {
		out.Usage.Compile += prepared
	}
	res := &Result{CallID: call.ID, Version: m.Version, Output: out.Output, Logs: out.Logs,
		Usage: out.Usage, Egress: out.Egress, Limits: limits}
	if err != nil {
		// The author sees what the failed call logged and asked for, not only why it
		// failed; its output is not an answer.
		res.Output = nil
		return res, err
	}
	return res, nil
}

// askedGrant is exactly what m asks for: its origins, its files paths bound to the
// given host directories, its env and secret names with the values env knows.
func askedGrant(m *manifest.Manifest, mounts map[string]string, env func(string) (string, bool)) (isolation.Grant, error) {
	g := isolation.Grant{Network: m.Capabilities.Network, Env: map[string]string{}}
	bound := 0
	for _, f := range m.Capabilities.Files {
		host, ok := mounts[f.Path]
		if !ok {
			return isolation.Grant{}, &MountError{Guest: f.Path}
		}
		bound++
		if !filepath.IsAbs(host) {
			return isolation.Grant{}, fmt.Errorf("files at %s: host directory %s is not an absolute path", f.Path, host)
		}
		if fi, err := os.Stat(host); err != nil || !fi.IsDir() {
			return isolation.Grant{}, fmt.Errorf("files at %s: %s is not a directory", f.Path, host)
		}
		g.Files = append(g.Files, isolation.Mount{Guest: f.Path, Host: host, Access: f.Access})
	}
	if bound < len(mounts) {
		for guest := range mounts {
			if !asksFiles(m, guest) {
				return isolation.Grant{}, &MountError{Guest: guest, Unasked: true}
			}
		}
	}
	if env != nil {
		for _, name := range append(append([]string(nil), m.Capabilities.Env...), m.Capabilities.Secrets...) {
			if v, ok := env(name); ok {
				g.Env[name] = v
			}
		}
		// Brokered secrets stay brokered for the author too: added at egress, never env.
		for _, b := range m.Capabilities.Brokered {
			if v, ok := env(b.Name); ok {
				bs, err := approval.Broker(b, b.Origins, g.Network, v)
				if err != nil {
					return isolation.Grant{}, err
				}
				g.Brokered = append(g.Brokered, bs)
			}
		}
	}
	return g, nil
}

func asksFiles(m *manifest.Manifest, guest string) bool {
	for _, f := range m.Capabilities.Files {
		if f.Path == guest {
			return true
		}
	}
	return false
}
