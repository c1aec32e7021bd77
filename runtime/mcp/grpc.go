package mcp

import (
	"context"
	"encoding/json"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
)

// GRPCBackend is the Backend of `skillbox mcp`: a client of a running server over its
// socket. The caller is the connection's authenticated peer, as the server names it
// (the bridge's uid on the unix socket, its token or certificate on TCP); the caller
// argument is not sent. The server's audit log, budgets and kill switch apply.
type GRPCBackend struct{ Conn grpc.ClientConnInterface }

// Skills lists the approved, enabled skills. The wire's list does not carry an
// approval's callers, so a skill whose callers leave out this bridge is offered and
// its calls are refused (CALLER_NOT_ALLOWED).
func (b GRPCBackend) Skills(ctx context.Context, _ string) ([]Skill, error) {
	res, err := pb.NewSkillsClient(b.Conn).List(ctx, &pb.ListSkillsRequest{})
	if err != nil {
		return nil, errors.New(status.Convert(err).Message())
	}
	var out []Skill
	for _, in := range res.GetSkills() {
		if !in.GetApproved() || in.GetState() != pb.State_STATE_ENABLED {
			continue
		}
		s := Skill{Name: in.GetName(), Version: in.GetVersion(), Description: in.GetDescription(),
			Network: len(in.GetCapabilities().GetNetwork()) > 0}
		if json.Unmarshal([]byte(in.GetInputSchema()), &s.Input) != nil {
			continue // not an object schema: not offered
		}
		_ = json.Unmarshal([]byte(in.GetOutputSchema()), &s.Output)
		for _, f := range in.GetCapabilities().GetFiles() {
			if f.GetAccess() == pb.Access_ACCESS_READ_WRITE {
				s.ReadWrite = true
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// Invoke calls Skills.Invoke; a refusal carries the server's ErrorDetail.
func (b GRPCBackend) Invoke(ctx context.Context, _ string, skill string, input []byte) (*Result, error) {
	res, err := pb.NewSkillsClient(b.Conn).Invoke(ctx, &pb.InvokeRequest{Name: skill, InputJson: string(input)})
	if err != nil {
		st := status.Convert(err)
		r := &Refusal{Reason: "UNAVAILABLE", Message: st.Message()}
		for _, d := range st.Details() {
			if ed, ok := d.(*pb.ErrorDetail); ok {
				r.Reason, r.Field, r.AuditID = ed.GetReason(), ed.GetField(), ed.GetAuditId()
			}
		}
		return nil, r
	}
	u := res.GetUsage()
	return &Result{Output: []byte(res.GetOutputJson()), CallID: res.GetCallId(), AuditID: res.GetAuditId(), Version: res.GetVersion(),
		Usage: Usage{WallMillis: u.GetWallMs(), PeakMemory: u.GetPeakMemoryBytes(), OutputBytes: u.GetOutputBytes(),
			Requests: int(u.GetRequests()), DeniedRequests: int(u.GetDeniedRequests())}}, nil
}
