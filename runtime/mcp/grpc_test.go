package mcp_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"github.com/skillbox-dev/skillbox/runtime/mcp"
)

// replying is a connection whose every call ends with err, as a server's reply would.
type replying struct{ err error }

func (r replying) Invoke(context.Context, string, any, any, ...grpc.CallOption) error { return r.err }

func (r replying) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, r.err
}

func failedWith(t *testing.T, d *pb.ErrorDetail) error {
	t.Helper()
	st, err := status.New(codes.Aborted, d.GetMessage()).WithDetails(d)
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

// `skillbox mcp` passes on what the server's reply says of a failed call: its reason,
// field and audit record, and for a call that ran its id and usage.
func TestGRPCBackendRefusals(t *testing.T) {
	ran := failedWith(t, &pb.ErrorDetail{Reason: "SKILL_FAILED", Message: "skill exited with code 1", AuditId: "7",
		CallId: "c-1", Usage: &pb.Usage{WallMs: 12, Requests: 1}, Logs: "bad input"})
	_, err := mcp.GRPCBackend{Conn: replying{ran}}.Invoke(context.Background(), "", "errecho", []byte(`{}`), nil)
	r, ok := err.(*mcp.Refusal)
	if !ok || r.Reason != "SKILL_FAILED" || r.AuditID != "7" || r.CallID != "c-1" || r.Usage == nil || r.Usage.WallMillis != 12 || r.Usage.Requests != 1 {
		t.Fatalf("refusal %+v (%v): want SKILL_FAILED with audit 7, call c-1 and its usage", r, err)
	}

	refused := failedWith(t, &pb.ErrorDetail{Reason: "INVALID_INPUT", Message: "input.n: want an integer", Field: "input.n", AuditId: "8"})
	_, err = mcp.GRPCBackend{Conn: replying{refused}}.Invoke(context.Background(), "", "strict", []byte(`{}`), nil)
	r, ok = err.(*mcp.Refusal)
	if !ok || r.Reason != "INVALID_INPUT" || r.Field != "input.n" || r.CallID != "" || r.Usage != nil {
		t.Fatalf("refusal %+v (%v): want INVALID_INPUT for input.n and no call", r, err)
	}
}
