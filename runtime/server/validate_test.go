package server_test

import (
	"context"
	"math"
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

// TestDoorRefusalsAreAudited: a call with no name or with bad limits is refused by the
// engine behind the door, so the refusal is recorded like every other one (the door
// used to refuse these itself, unrecorded). A timeout so negative that converting it to
// nanoseconds would overflow into a positive one is refused too.
func TestDoorRefusalsAreAudited(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: echoWasm, Body: echoBody}, nil)
	reqs := []*pb.InvokeRequest{
		{InputJson: `{}`},
		{Name: "echo", InputJson: `{}`, Limits: &pb.Limits{TimeoutMs: -5}},
		{Name: "echo", InputJson: `{}`, Limits: &pb.Limits{TimeoutMs: math.MinInt64}},
		{Name: "echo", InputJson: `{}`, Limits: &pb.Limits{Requests: math.MinInt64}},
	}
	for i, req := range reqs {
		_, err := f.skills.Invoke(ctx, req)
		code, d := detailOf(t, err)
		if code != codes.InvalidArgument || d.GetReason() != string(engine.ReasonInvalidInput) || d.GetAuditId() == "" {
			t.Fatalf("request %d: %v/%s audit %q, want InvalidArgument/INVALID_INPUT with an audit id", i, code, d.GetReason(), d.GetAuditId())
		}
		if want := []string{"name", "limits", "limits", "limits"}[i]; d.GetField() != want {
			t.Fatalf("request %d: field %q, want %q", i, d.GetField(), want)
		}
	}
	if n := len(auditOf(t, f.eng, engine.EventInvokeRefused)); n != len(reqs) {
		t.Fatalf("%d invoke.refused records, want %d", n, len(reqs))
	}
}
