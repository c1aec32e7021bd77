package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/store"
	"github.com/skillbox-dev/skillbox/signing"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

// Installed is the outcome of an install.
type Installed struct {
	Entry   store.Entry
	Signer  *signing.Identity
	Already bool // the same package was in the store already: nothing changed
}

// Install verifies the package at src (a directory or a .tar.gz) against trust.yaml
// and copies it into the store. Nothing unverified enters the store.
func (e *Engine) Install(ctx context.Context, src, by string) (*Installed, error) {
	return e.InstallFrom(ctx, src, by, Origin{})
}

// Origin says where a package came from when that is not the path installed (a
// registry artifact pulled into a temporary directory).
type Origin struct {
	// Source is what messages call the package ("install SOURCE: ..."); "" means src.
	Source string
	// Details are added to the install and verify.failed audit records (e.g. the
	// registry reference pinned by digest).
	Details map[string]any
	// Ref is the registry reference pinned by digest (oci://HOST/REPO@sha256:…), kept
	// beside the package (OriginOf) so that other replicas can pull the same artifact.
	Ref string
}

// InstallFrom is Install of a package that came from o: its messages name o.Source
// and its audit records carry o.Details.
func (e *Engine) InstallFrom(ctx context.Context, src, by string, o Origin) (*Installed, error) {
	dir := src
	if st, err := os.Stat(src); err != nil {
		return nil, fmt.Errorf("install: %w", err)
	} else if !st.IsDir() {
		tmp, err := os.MkdirTemp("", "skillbox-install-")
		if err != nil {
			return nil, fmt.Errorf("install: %w", err)
		}
		defer os.RemoveAll(tmp)
		if err := skillpkg.Extract(src, tmp); err != nil {
			return nil, fmt.Errorf("install %s: %w", src, err)
		}
		dir = tmp
	}
	st := e.state.Load()
	policy, perr := st.policy, st.policyErr
	if policy == nil {
		return nil, fmt.Errorf("install: no usable trust policy at %s: %w", e.TrustPath(), perr)
	}
	// The signature over the exact bytes of skill.yaml is checked before skill.yaml is
	// parsed: an unsigned or foreign package never gets its manifest interpreted (a
	// schema nested 1,600 levels once took 36 s to compile).
	raw := func(ctx context.Context, rawManifest, bundle []byte) error {
		if _, err := signing.VerifyManifest(ctx, bundle, skillpkg.ManifestSubject(rawManifest), policy); err != nil {
			e.verifyFailed(ctx, by, store.Entry{ManifestDigest: skillpkg.ManifestDigest(rawManifest)}, err, o.Details)
			return fmt.Errorf("verify: %w", err)
		}
		return nil
	}
	var id *signing.Identity
	check := func(ctx context.Context, staged string, ent store.Entry) error {
		var err error
		id, err = verifyPackage(ctx, staged, ent.Manifest, policy)
		if err != nil {
			e.verifyFailed(ctx, by, ent, err, o.Details)
			return fmt.Errorf("verify: %w", err)
		}
		// Preparing now refuses code that could never run (a module that does not
		// compile, an image whose ID is not the signed one) and spares the first call
		// the work (seconds to compile a Go guest, to load an image).
		sb, err := e.sandboxFor(ent.Manifest)
		if err != nil {
			return err
		}
		if p, ok := sb.(isolation.Preparer); ok {
			if err := p.Prepare(ctx, isolation.Skill{Manifest: ent.Manifest, Dir: staged, Digest: ent.CodeDigest}); err != nil {
				return fmt.Errorf("prepare: %w", err)
			}
		}
		return nil
	}
	// The store names the package as given, an archive rather than the temporary
	// directory it was extracted to ("install FILE.tar.gz: ..."), and keeps the chain
	// (signing.CheckOf finds the failed check).
	source := src
	if o.Source != "" {
		source = o.Source
	}
	entry, err := e.store.InstallVerified(ctx, dir, store.InstallOptions{Source: source, Raw: raw, Check: check})
	if err != nil {
		return nil, err
	}
	// The origin is recorded once the package given is known good: other replicas
	// pull the installed package by it.
	setOrigin := func() error {
		if o.Ref == "" {
			return nil
		}
		if err := store.SetOrigin(e.home, entry.ManifestDigest, o.Ref); err != nil {
			return fmt.Errorf("install %s: %w", source, err)
		}
		return nil
	}
	if id == nil {
		// Already in the store (the check ran when it was installed). The package given
		// is checked as a new one would be, so that a copy whose code was changed is
		// refused, not reported installed; then say who signed the store's copy under
		// today's trust.yaml, or refuse if nobody trusted does any more.
		if _, err := verifyPackage(ctx, dir, entry.Manifest, policy); err != nil {
			e.verifyFailed(ctx, by, entry, err, o.Details)
			return nil, fmt.Errorf("install %s: verify: %w", source, err)
		}
		if id, err = verifyPackage(ctx, entry.Dir, entry.Manifest, policy); err != nil {
			return nil, fmt.Errorf("install %s: already installed, but: %w", source, err)
		}
		if err := setOrigin(); err != nil {
			return nil, err
		}
		return &Installed{Entry: entry, Signer: id, Already: true}, nil
	}
	if err := setOrigin(); err != nil {
		return nil, err
	}
	if _, err := e.audit.Append(ctx, audit.Record{Event: audit.EventInstall, Caller: by, Skill: entry.Name,
		Version: entry.Version, ManifestDigest: entry.ManifestDigest, CodeDigest: entry.CodeDigest, Outcome: "ok",
		Details: withDetails(map[string]any{"signer": id.String()}, o.Details)}); err != nil {
		return nil, fmt.Errorf("install: audit: %w", err)
	}
	e.mu.Lock()
	st = e.state.Load()
	if st.policy == policy {
		st.verified.Store(entry.ManifestDigest, id.Signer)
	}
	// An approval may pin the version just installed (approved elsewhere, then
	// installed here): resolve the approvals again.
	e.publish(st.with())
	e.mu.Unlock()
	return &Installed{Entry: entry, Signer: id}, nil
}

// verifyFailed counts and records a package refused at install; ent may hold only the
// manifest digest when the refusal came before the manifest was parsed.
func (e *Engine) verifyFailed(ctx context.Context, by string, ent store.Entry, err error, origin map[string]any) {
	e.metrics.VerificationFailed(signing.CheckOf(err))
	_, _ = e.audit.Append(ctx, audit.Record{Event: audit.EventVerifyFailed, Caller: by, Skill: ent.Name,
		Version: ent.Version, ManifestDigest: ent.ManifestDigest, Outcome: "refused", Reason: signing.CheckOf(err),
		Details: withDetails(map[string]any{"message": oneLine(err.Error())}, origin)})
}

// withDetails adds an origin's details to a record's own (which win on a clash).
func withDetails(own, origin map[string]any) map[string]any {
	for k, v := range origin {
		if _, ok := own[k]; !ok {
			own[k] = v
		}
	}
	return own
}

// Candidate is what the operator reviews before approving: the newest installed version
// (or the pinned one), who signed it, and the approved version, if any, to diff against.
type Candidate struct {
	Entry    store.Entry
	Signer   *signing.Identity
	Approved *store.Entry       // the currently approved version, nil if none
	Approval *approval.Approval // the current approval, nil if none

	policy *signing.Policy // the trust policy Signer was found under
}

// Candidate verifies the version of name that would be approved (pin, or the newest).
func (e *Engine) Candidate(ctx context.Context, name, pin string) (*Candidate, error) {
	entry, err := e.store.Lookup(name, pin)
	if err != nil {
		return nil, &Error{Reason: ReasonNotFound, Err: err}
	}
	st := e.state.Load()
	policy, perr := st.policy, st.policyErr
	a := st.approvals[name]
	if policy == nil {
		return nil, &Error{Reason: ReasonVerifyFailed, Msg: "no usable trust policy at " + e.TrustPath(), Err: perr}
	}
	id, err := verifyPackage(ctx, entry.Dir, entry.Manifest, policy)
	if err != nil {
		return nil, &Error{Reason: ReasonVerifyFailed, Msg: "verify " + name, Err: err}
	}
	c := &Candidate{Entry: entry, Signer: id, Approval: a, policy: policy}
	if a != nil {
		if prev, err := e.store.Lookup(name, a.ManifestDigest); err == nil {
			c.Approved = &prev
		}
	}
	return c, nil
}

// Approve writes approvals/NAME.yaml for the candidate version: pinned to its manifest
// digest and signer, holding grant (nil means exactly what the manifest asks; a grant
// wider than the manifest is refused).
func (e *Engine) Approve(ctx context.Context, c *Candidate, grant *approval.Grant, by string) (*approval.Approval, error) {
	m := c.Entry.Manifest
	g := approval.Ask(m)
	if grant != nil {
		g = *grant
	}
	a := &approval.Approval{
		Skill:          m.Name,
		ManifestDigest: c.Entry.ManifestDigest,
		Signer:         c.Signer.Signer,
		ApprovedBy:     by,
		ApprovedAt:     time.Now().UTC().Truncate(time.Second),
		Grant:          g,
	}
	if err := approval.Check(m, c.Entry.ManifestDigest, a); err != nil {
		return nil, fmt.Errorf("approve %s: %w", m.Name, err)
	}
	if err := approval.CheckHome(g.Files, e.home, "grant"); err != nil {
		return nil, fmt.Errorf("approve %s: %w", m.Name, err)
	}
	if err := os.MkdirAll(approval.Dir(e.home), 0o700); err != nil {
		return nil, fmt.Errorf("approve: %w", err)
	}
	if err := approval.Save(approval.Path(e.home, m.Name), a); err != nil {
		return nil, err
	}
	if _, err := e.audit.Append(ctx, audit.Record{Event: audit.EventApprove, Caller: by, Skill: m.Name,
		Version: m.Version, ManifestDigest: c.Entry.ManifestDigest, CodeDigest: c.Entry.CodeDigest, Outcome: "ok",
		Details: map[string]any{"signer": a.Signer, "grant": grantSummary(g)}}); err != nil {
		return nil, fmt.Errorf("approve: audit: %w", err)
	}
	e.mu.Lock()
	st := e.state.Load().with()
	st.approvals[m.Name] = a
	// Only under the policy the candidate was verified with: after a reload in between,
	// the first call verifies again under the new trust.yaml.
	if st.policy == c.policy {
		st.verified.Store(c.Entry.ManifestDigest, c.Signer.Signer)
	}
	e.publish(st)
	e.mu.Unlock()
	// Warm instances were made for the old grant (its env, secrets, mounts): drop them.
	e.drain(ctx, m.Name)
	return a, nil
}

func grantSummary(g approval.Grant) map[string]any {
	var origins, files, env, secrets []string
	for _, o := range g.Network {
		origins = append(origins, o.String())
	}
	for _, f := range g.Files {
		files = append(files, f.Path+" ("+string(f.Access)+") <- "+f.Host)
	}
	for n := range g.Env {
		env = append(env, n)
	}
	for n := range g.Secrets {
		secrets = append(secrets, n)
	}
	sort.Strings(env)
	sort.Strings(secrets)
	out := map[string]any{"network": origins, "files": files, "env": env, "secrets": secrets, "callers": g.Callers}
	if o := g.Oversight; o != nil {
		out["oversight"] = map[string]any{"approvers": o.Approvers, "wait": o.WaitBound().String(), "reason": o.Reason}
	}
	return out
}

// DisableWait bounds how long Disable waits for the calls it cancelled to end: the
// kill switch answers within it, saying whether every call was confirmed ended.
const DisableWait = 5 * time.Second

// Disable is the kill switch: new calls of name are refused, calls in flight are
// cancelled, the switch is recorded in the audit log, and Disable then waits for the
// cancelled calls to end (each ends with DISABLED and its own record), at most
// DisableWait or until ctx ends. It returns how many calls it cancelled, and an error
// if any of them was not confirmed ended: the skill is disabled either way. The state
// is kept in the skill home and survives restarts.
func (e *Engine) Disable(ctx context.Context, name, by, reason string) (int, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	reason = oneLine(reason) // free text kept in the state file and the audit log
	// A name that is not installed is refused: a typo must not look like a switch that
	// holds. (A skill installed later cannot run before it is approved anyway.)
	if _, err := e.store.Lookup(name, ""); errors.Is(err, store.ErrNotFound) {
		return 0, &Error{Reason: ReasonNotFound, Field: "name",
			Msg: fmt.Sprintf("no skill named %s is installed (skillbox skills lists them)", name)}
	}
	if err := e.store.Disable(name, by, reason); err != nil {
		return 0, err
	}
	e.mu.Lock()
	st := e.state.Load().with()
	st.disabled[name] = reason
	e.publish(st)
	var ending []*inflight
	for _, c := range e.calls {
		if c.skill == name {
			ending = append(ending, c)
		}
	}
	// Recorded before waiting, and even if the operator's client has gone: the switch
	// is on whether or not the calls end in time. Queued before the calls are cancelled,
	// so the log reads the disable before their DISABLED ends; made durable below.
	auditErr := e.audit.Enqueue(context.WithoutCancel(ctx), audit.Record{Event: audit.EventDisable, Caller: by, Skill: name,
		Outcome: "ok", Details: withDoor(ctx, map[string]any{"reason": reason, "cancelledCalls": len(ending)})})
	for _, c := range ending {
		c.cancel(&disabledCause{reason: reason})
	}
	e.mu.Unlock()
	if auditErr == nil {
		auditErr = e.audit.Flush(context.WithoutCancel(ctx))
	}
	start := time.Now()
	wait, cancel := context.WithTimeout(ctx, DisableWait)
	defer cancel()
	running := awaitEnded(wait, ending)
	// Warm instances go even if the operator's client has gone: a disabled skill keeps
	// nothing running.
	e.drain(context.WithoutCancel(ctx), name)
	if auditErr != nil {
		return len(ending), fmt.Errorf("disable %s: the skill is disabled, but the audit log refused the record: %w", name, auditErr)
	}
	if running > 0 {
		return len(ending), errorf(ReasonCallsRunning, "disable %s: the skill is disabled, but %d of %d cancelled calls had not ended after %s",
			name, running, len(ending), time.Since(start).Round(time.Millisecond))
	}
	return len(ending), nil
}

// disabledError is the refusal of a call to a disabled skill, with the operator's
// reason, so the caller learns why; a name that is not installed answers NOT_FOUND
// (an old switch left for a removed skill says nothing about it).
func (e *Engine) disabledError(name string) error {
	if _, err := e.store.Lookup(name, ""); errors.Is(err, store.ErrNotFound) {
		return &Error{Reason: ReasonNotFound, Err: err}
	}
	var why string
	if d, err := e.store.IsDisabled(name); err == nil && d != nil {
		why = oneLine(d.Reason)
	}
	return &Error{Reason: ReasonDisabled, Msg: disabledWords(name+" is disabled by the operator", why)}
}

// checkName refuses an operator's action on something that is not a skill name.
func checkName(name string) error {
	if err := manifest.CheckName(name); err != nil {
		return &Error{Reason: ReasonInvalidInput, Field: "name", Err: err}
	}
	return nil
}

// Enable lifts Disable.
func (e *Engine) Enable(ctx context.Context, name, by string) error {
	if err := checkName(name); err != nil {
		return err
	}
	// A name neither installed nor switched off is a typo: say so rather than record
	// an enable of nothing. A switch left for a removed skill can still be lifted.
	if d, _ := e.store.IsDisabled(name); d == nil {
		if _, err := e.store.Lookup(name, ""); errors.Is(err, store.ErrNotFound) {
			return &Error{Reason: ReasonNotFound, Field: "name",
				Msg: fmt.Sprintf("no skill named %s is installed (skillbox skills lists them)", name)}
		}
	}
	if err := e.store.Enable(name); err != nil {
		return err
	}
	e.mu.Lock()
	st := e.state.Load().with()
	delete(st.disabled, name)
	e.publish(st)
	e.mu.Unlock()
	if _, err := e.audit.Append(ctx, audit.Record{Event: audit.EventEnable, Caller: by, Skill: name, Outcome: "ok", Details: withDoor(ctx, nil)}); err != nil {
		return fmt.Errorf("enable: audit: %w", err)
	}
	return nil
}

// CallInfo is one call in flight.
type CallInfo struct {
	ID, Skill, Version, Caller string
	Started                    time.Time
}

// Calls lists the calls in flight, oldest first.
func (e *Engine) Calls() []CallInfo {
	e.mu.Lock()
	out := make([]CallInfo, 0, len(e.calls))
	for _, c := range e.calls {
		out = append(out, CallInfo{ID: c.id, Skill: c.skill, Version: c.version, Caller: c.caller, Started: c.started})
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

// SkillInfo describes one skill as callers see it: its approved version if there is
// one, else its newest installed version (not callable until approved).
type SkillInfo struct {
	Entry    store.Entry
	Approval *approval.Approval // nil if not approved
	Approved bool               // an approval pins exactly this version
	Disabled bool
	Limits   isolation.Limits // effective limits min(manifest, approval)
	// Pending is a newer installed version waiting for approval while the approved
	// one (Entry) serves: the newest installed version, when an approval pins another
	// and this one is not older. Nil when there is none or nothing is approved.
	Pending *store.Entry
}

// Manifest is the skill's manifest.
func (s SkillInfo) Manifest() *manifest.Manifest { return s.Entry.Manifest }

// List describes every installed skill, by name.
func (e *Engine) List(ctx context.Context) ([]SkillInfo, error) {
	entries, err := e.store.List()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []SkillInfo
	for _, ent := range entries {
		if seen[ent.Name] {
			continue
		}
		seen[ent.Name] = true
		info, err := e.Get(ctx, ent.Name, "")
		if err != nil {
			return nil, err
		}
		out = append(out, *info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Entry.Name < out[j].Entry.Name })
	return out, nil
}

// Get describes one skill; pin selects a version or digest.
func (e *Engine) Get(ctx context.Context, name, pin string) (*SkillInfo, error) {
	st := e.state.Load()
	a := st.approvals[name]
	disabled := isDisabled(st, name)
	if pin == "" && a != nil {
		pin = a.ManifestDigest
	}
	entry, err := e.store.Lookup(name, pin)
	if errors.Is(err, store.ErrNotFound) && a != nil && pin == a.ManifestDigest {
		entry, err = e.store.Lookup(name, "")
	}
	if err != nil {
		return nil, &Error{Reason: ReasonNotFound, Err: err}
	}
	info := &SkillInfo{Entry: entry, Approval: a, Disabled: disabled}
	info.Approved = a != nil && a.ManifestDigest == entry.ManifestDigest
	if info.Approved && pin == a.ManifestDigest {
		if newest, err := e.store.Lookup(name, ""); err == nil && newest.ManifestDigest != entry.ManifestDigest &&
			store.CompareVersions(newest.Version, entry.Version) >= 0 {
			info.Pending = &newest
		}
	}
	var g manifest.Limits
	if info.Approved {
		g = a.Grant.Limits
	}
	info.Limits = approval.EffectiveLimits(entry.Manifest.Limits, g, manifest.Limits{})
	return info, nil
}

// drain drops warm instances of a skill, best effort: they are single-use and a stale
// one is refused or replaced anyway.
func (c *core) drain(ctx context.Context, name string) {
	for _, sb := range c.sandboxes {
		if d, ok := sb.(isolation.Drainer); ok {
			_ = d.Drain(ctx, name)
		}
	}
}
