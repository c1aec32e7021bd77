package mcp

import (
	"context"
	"errors"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/client"
	"github.com/skillbox-dev/skillbox/runtime/engine"
)

// EngineBackend is the Backend of a door inside `skillbox serve`: the engine itself.
type EngineBackend struct{ Engine *engine.Engine }

// Skills lists the installed, approved, enabled skills caller may call.
func (b EngineBackend) Skills(ctx context.Context, caller string) ([]Skill, error) {
	infos, err := b.Engine.Callable(ctx, caller)
	if err != nil {
		return nil, err
	}
	var out []Skill
	for _, in := range infos {
		out = append(out, skillOf(in.Manifest(), in.Approval.Grant))
	}
	return out, nil
}

// skillOf is a skill's tool facts: schemas from the manifest, hints from the grant.
func skillOf(m *manifest.Manifest, g approval.Grant) Skill {
	s := Skill{Name: m.Name, Version: m.Version, Description: m.Description, Input: m.Input, Output: m.Output,
		Network: len(g.Network) > 0}
	for _, f := range g.Files {
		if f.Access == manifest.AccessReadWrite {
			s.ReadWrite = true
		}
	}
	for _, b := range g.Granted(m).Capabilities.Brokered {
		bs := BrokeredSecret{Name: b.Name, Header: b.Header, Origins: []string{}}
		for _, o := range b.Origins {
			bs.Origins = append(bs.Origins, o.String())
		}
		s.Brokered = append(s.Brokered, bs)
	}
	return s
}

// Invoke calls the engine as caller, through the MCP door.
func (b EngineBackend) Invoke(ctx context.Context, caller, skill string, input []byte, waiting func(client.Waiting)) (*Result, error) {
	req := engine.Request{Skill: skill, Input: input, Caller: caller, Door: "mcp"}
	if waiting != nil {
		req.Waiting = func(p engine.PendingRequest) { waiting(client.Waiting{CallID: p.ID, Expires: p.Expires}) }
	}
	res, err := b.Engine.Invoke(ctx, req)
	if err != nil {
		r := refusalOf(err)
		if res != nil { // the call ran
			u := usageOf(res.Usage)
			r.CallID, r.Usage = res.CallID, &u
		}
		return nil, r
	}
	return &Result{Output: res.Output, CallID: res.CallID, AuditID: res.AuditID, Version: res.Version, Usage: usageOf(res.Usage)}, nil
}

func usageOf(u isolation.Usage) Usage {
	return Usage{WallMillis: u.Wall.Milliseconds(), PeakMemory: u.PeakMemory, OutputBytes: u.OutputBytes,
		Requests: u.Requests, DeniedRequests: u.DeniedRequests}
}

// refusalOf is an engine error as the caller sees it: the same reason, field, message
// (with the skill's own last words) and audit record as gRPC's ErrorDetail.
func refusalOf(err error) *Refusal {
	r := &Refusal{Reason: string(engine.ReasonOf(err)), Message: engine.CallerMessage(err)}
	if r.Reason == string(isolation.ReasonInternal) && errors.Is(err, context.Canceled) {
		r.Reason = "CANCELED"
	}
	var e *engine.Error
	if errors.As(err, &e) {
		r.Field, r.AuditID = e.Field, e.AuditID
	}
	return r
}
