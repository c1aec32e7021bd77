package server_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/skillbox-dev/skillbox/reasons"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

// Over the wire, a refused input or a withheld output is named by its field and rule:
// the value is in neither the status message, its ErrorDetail, nor the audit log.
func TestSchemaFailuresOverTheWireKeepValuesOut(t *testing.T) {
	f := newFixture(t)
	body := "input:\n  type: object\n  properties: {in: {type: string, pattern: \"^[a-z]+$\"}}\n" +
		"output:\n  type: object\n  properties: {out: {type: string, pattern: \"^[a-z]+$\"}}\n"
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: echoWasm, Body: body}, nil)
	const marker = "AKIA-MARKER-SECRET-42"
	for _, tc := range []struct {
		input  string
		reason reasons.Reason
		field  string
		code   codes.Code
	}{
		{`{"in":"` + marker + `"}`, engine.ReasonInvalidInput, "input.in", codes.InvalidArgument},
		{`{"out":"` + marker + `"}`, engine.ReasonInvalidOutput, "output.out", codes.Aborted},
		{`{"in":"` + strings.Repeat(marker, 5000) + `"}`, engine.ReasonInvalidInput, "input.in", codes.InvalidArgument},
	} {
		res, err := f.invoke(context.Background(), "echo", tc.input, nil)
		if res != nil {
			t.Fatalf("%s: a reply with output %q", tc.reason, res.GetOutputJson())
		}
		code, d := detailOf(t, err)
		if code != tc.code || reasons.Reason(d.GetReason()) != tc.reason || d.GetField() != tc.field {
			t.Fatalf("got %v %s field %q, want %v %s %q", code, d.GetReason(), d.GetField(), tc.code, tc.reason, tc.field)
		}
		st, _ := status.FromError(err)
		wire, _ := proto.Marshal(st.Proto())
		if strings.Contains(string(wire), marker) || len(st.Message()) > engine.MaxMessageBytes {
			t.Fatalf("%s: the reply holds the value (%d-byte message): %.300q", tc.reason, len(st.Message()), st.Message())
		}
	}
	raw, err := os.ReadFile(f.eng.AuditPath())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), marker) {
		t.Fatal("the audit log holds the value")
	}
}
