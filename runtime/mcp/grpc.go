package mcp

import (
	"context"
	"encoding/json"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"github.com/skillbox-dev/skillbox/runtime/client"
)

// GRPCBackend is the Backend of `skillbox mcp`: a client of a running server over its
// socket. The caller is the connection's authenticated peer, as the server names it
// (the bridge's uid on the unix socket, its token or certificate on TCP); the caller
// argument is not sent. The server's audit log, budgets and kill switch apply.
type GRPCBackend struct{ Conn grpc.ClientConnInterface }

// Skills lists what the server says this bridge's peer may call now (List with
// callable set: the engine's rule, the one the HTTP door follows).
func (b GRPCBackend) Skills(ctx context.Context, _ string) ([]Skill, error) {
	res, err := pb.NewSkillsClient(b.Conn).List(ctx, &pb.ListSkillsRequest{Callable: true})
	if err != nil {
		return nil, rpcError{err}
	}
	var out []Skill
	for _, in := range res.GetSkills() {
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
		for _, b := range in.GetCapabilities().GetBrokeredSecrets() {
			s.Brokered = append(s.Brokered, BrokeredSecret{Name: b.GetName(), Header: b.GetHeader(),
				Origins: append([]string{}, b.GetOrigins()...)})
		}
		out = append(out, s)
	}
	return out, nil
}

// Watch sends on changed whenever the server says its skills may have changed
// (Skills.Watch), until ctx ends. A stream that ends (the server restarted) is opened
// again after a pause that grows to a minute; its first message then brings the list
// up to date. A server without Watch leaves the list as first read.
func (b GRPCBackend) Watch(ctx context.Context, changed chan<- struct{}) {
	pause := time.Second
	for ctx.Err() == nil {
		stream, err := pb.NewSkillsClient(b.Conn).Watch(ctx, &pb.WatchSkillsRequest{})
		for err == nil {
			if _, err = stream.Recv(); err == nil {
				pause = time.Second
				select {
				case changed <- struct{}{}:
				default: // one pending is enough: the list is read whole
				}
			}
		}
		if status.Code(err) == codes.Unimplemented {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Minute)
	}
}

// Bridge serves MCP on stdin and stdout over a running server (`skillbox mcp`) until
// the client goes or ctx ends. The tools are what the server lets this process's
// authenticated peer call, kept in step with the server (the client gets
// notifications/tools/list_changed); every call goes to the server.
func Bridge(ctx context.Context, conn grpc.ClientConnInterface, version string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b := GRPCBackend{Conn: conn}
	d := New(b, version)
	changed := make(chan struct{}, 1)
	go b.Watch(ctx, changed)
	go d.Follow(ctx, changed)
	return d.ServeStdio(ctx, "")
}

// Invoke calls Skills.Invoke; a refusal carries the server's ErrorDetail.
func (b GRPCBackend) Invoke(ctx context.Context, _ string, skill string, input []byte, waiting func(client.Waiting)) (*Result, error) {
	res, err := client.Invoke(ctx, b.Conn, &pb.InvokeRequest{Name: skill, InputJson: string(input)}, waiting)
	if err != nil {
		r := &Refusal{Reason: "UNAVAILABLE", Message: status.Convert(err).Message()}
		if ed := client.Detail(err); ed != nil {
			r.Reason, r.Field, r.AuditID = ed.GetReason(), ed.GetField(), ed.GetAuditId()
			if ed.GetCallId() != "" { // the call ran
				u := usageFromWire(ed.GetUsage())
				r.CallID, r.Usage = ed.GetCallId(), &u
			}
		}
		return nil, r
	}
	return &Result{Output: []byte(res.GetOutputJson()), CallID: res.GetCallId(), AuditID: res.GetAuditId(), Version: res.GetVersion(),
		Usage: usageFromWire(res.GetUsage())}, nil
}

// usageFromWire is the wire's usage as the door reports it.
func usageFromWire(u *pb.Usage) Usage {
	return Usage{WallMillis: u.GetWallMs(), PeakMemory: u.GetPeakMemoryBytes(), OutputBytes: u.GetOutputBytes(),
		Requests: int(u.GetRequests()), DeniedRequests: int(u.GetDeniedRequests())}
}

// rpcError reads as its status's message alone, and keeps the status in its chain: a
// door's command says "no server answers" from the code, not from the words.
type rpcError struct{ err error }

func (e rpcError) Error() string { return status.Convert(e.err).Message() }
func (e rpcError) Unwrap() error { return e.err }
