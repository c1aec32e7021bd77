package skillboxv1_test

import (
	"testing"

	skillboxv1 "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

func TestDescriptorsLoad(t *testing.T) {
	fd, err := protoregistry.GlobalFiles.FindFileByPath("skillbox/v1/skillbox.proto")
	if err != nil {
		t.Fatalf("file descriptor not registered: %v", err)
	}
	if got := fd.Package(); got != "skillbox.v1" {
		t.Fatalf("package = %q, want skillbox.v1", got)
	}
	want := map[string][]string{
		"Skills": {"List", "Get", "Invoke", "Watch"},
		"Admin":  {"Disable", "Enable", "Reload", "Calls", "WatchPending", "Decide"},
	}
	for svc, methods := range want {
		sd := fd.Services().ByName(protoreflect.Name(svc))
		if sd == nil {
			t.Fatalf("service %s missing", svc)
		}
		for _, m := range methods {
			if sd.Methods().ByName(protoreflect.Name(m)) == nil {
				t.Errorf("%s.%s missing", svc, m)
			}
		}
	}
	if skillboxv1.Skills_ServiceDesc.ServiceName != "skillbox.v1.Skills" {
		t.Errorf("service name %q", skillboxv1.Skills_ServiceDesc.ServiceName)
	}
}

func TestRoundTrip(t *testing.T) {
	in := &skillboxv1.InvokeResponse{
		OutputJson: `{"text":"hi"}`,
		Logs:       "log line\n",
		Usage:      &skillboxv1.Usage{WallMs: 12, PeakMemoryBytes: 1 << 20, OutputBytes: 13, Requests: 2, DeniedRequests: 1},
		Egress: []*skillboxv1.EgressRecord{
			{Method: "GET", Url: "https://api.example.com/x", Allowed: true, Status: 200, Bytes: 10},
			{Method: "GET", Url: "https://evil.example", Reason: "origin not granted"},
		},
		AuditId: "42",
	}
	b, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out skillboxv1.InvokeResponse
	if err := proto.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, &out) {
		t.Fatalf("round trip changed the message:\n in %v\nout %v", in, &out)
	}
	info := &skillboxv1.SkillInfo{Name: "http-fetch", Sandbox: skillboxv1.SandboxKind_SANDBOX_KIND_WASM, State: skillboxv1.State_STATE_DISABLED,
		Capabilities: &skillboxv1.Capabilities{Network: []string{"https://*.wikipedia.org"}, Files: []*skillboxv1.FileAccess{{Path: "/data", Access: skillboxv1.Access_ACCESS_READ}}}}
	b, _ = proto.Marshal(info)
	var info2 skillboxv1.SkillInfo
	if err := proto.Unmarshal(b, &info2); err != nil || !proto.Equal(info, &info2) {
		t.Fatalf("SkillInfo round trip: %v", err)
	}
}

// The ErrorDetail must survive a trip through a gRPC status, which is how clients read it.
func TestErrorDetailInStatus(t *testing.T) {
	st, err := status.New(codes.FailedPrecondition, "skill http-fetch is disabled").
		WithDetails(&skillboxv1.ErrorDetail{Reason: "DISABLED", Message: "skill http-fetch is disabled"})
	if err != nil {
		t.Fatal(err)
	}
	back := status.FromProto(st.Proto())
	var found bool
	for _, d := range back.Details() {
		if ed, ok := d.(*skillboxv1.ErrorDetail); ok && ed.GetReason() == "DISABLED" {
			found = true
		}
	}
	if !found {
		t.Fatalf("ErrorDetail not recovered from status details: %v", back.Details())
	}
}
