// Package client is what a Go caller of skillbox's gRPC API needs beyond the generated
// stubs: an Invoke that says when a call waits for a person's decision, the
// ErrorDetail of a failure (Detail) and status codes as the spec spells them (CodeName).
package client

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
)

// The response header metadata of an Invoke that waits for an approver's decision (the
// skill is under oversight). The server sends it as soon as the request is listed for
// approvers, long before the answer.
const (
	MetadataPendingCall    = "skillbox-pending-call"    // the request's id, as Oversight lists it
	MetadataPendingExpires = "skillbox-pending-expires" // RFC 3339: when it ends APPROVAL_EXPIRED undecided
)

// Waiting is a call parked for a person's decision.
type Waiting struct {
	CallID  string
	Expires time.Time // zero if the server did not say
}

// Invoke calls Skills.Invoke as the generated client does, and if the call waits for
// an approver's decision, tells waiting (once, before the answer comes). waiting may
// be nil.
func Invoke(ctx context.Context, cc grpc.ClientConnInterface, req *pb.InvokeRequest, waiting func(Waiting), opts ...grpc.CallOption) (*pb.InvokeResponse, error) {
	if waiting == nil {
		return pb.NewSkillsClient(cc).Invoke(ctx, req, opts...)
	}
	// The generated unary stub cannot show headers before the reply: open the call as
	// a stream of one message each way.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream if the reply never came
	st, err := cc.NewStream(ctx, &grpc.StreamDesc{}, pb.Skills_Invoke_FullMethodName, opts...)
	if err != nil {
		return nil, err
	}
	if err := st.SendMsg(req); err != nil {
		return nil, recvErr(st, err)
	}
	if err := st.CloseSend(); err != nil {
		return nil, err
	}
	// Header returns when the server sends headers: at once for a waiting call, with
	// the reply otherwise; an error here shows again from RecvMsg.
	if md, err := st.Header(); err == nil {
		if w, ok := waitingOf(md); ok {
			waiting(w)
		}
	}
	out := new(pb.InvokeResponse)
	if err := st.RecvMsg(out); err != nil {
		return nil, err
	}
	return out, nil
}

// recvErr is the call's status after a failed send (io.EOF from SendMsg means the
// server ended the stream; RecvMsg says why).
func recvErr(st grpc.ClientStream, err error) error {
	if rerr := st.RecvMsg(new(pb.InvokeResponse)); rerr != nil {
		return rerr
	}
	return err
}

func waitingOf(md metadata.MD) (Waiting, bool) {
	ids := md.Get(MetadataPendingCall)
	if len(ids) == 0 || ids[0] == "" {
		return Waiting{}, false
	}
	w := Waiting{CallID: ids[0]}
	if ex := md.Get(MetadataPendingExpires); len(ex) > 0 {
		if t, err := time.Parse(time.RFC3339, ex[0]); err == nil {
			w.Expires = t
		}
	}
	return w, true
}

// Detail is the ErrorDetail a failed call's status carries (reason, message, field,
// audit id), or nil when it carries none (no server, a refused token, a transport error).
func Detail(err error) *pb.ErrorDetail {
	for _, d := range status.Convert(err).Details() {
		if ed, ok := d.(*pb.ErrorDetail); ok {
			return ed
		}
	}
	return nil
}
