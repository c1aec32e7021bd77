package server_test

import (
	"bytes"
	"context"
	"testing"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
	"github.com/skillbox-dev/skillbox/runtime/server"
)

// fullLogs is a sandbox whose calls succeed with exactly the log budget of stderr:
// nothing was cut (a sandbox fails a call that writes more, with LOG_LIMIT).
type fullLogs struct{}

func (fullLogs) Run(_ context.Context, call isolation.Call) (isolation.Result, error) {
	return isolation.Result{Output: []byte(`{}`), Logs: bytes.Repeat([]byte("x"), int(call.Limits.Logs))}, nil
}
func (fullLogs) Close(context.Context) error { return nil }

// TestLogsAtTheCapAreNotTruncated: logs_truncated says whether logs were cut; logs
// that fill the budget exactly were not, and a reply whose logs were cut does not
// exist (the call fails with LOG_LIMIT instead). The server used to guess from the
// length. The skill's kind is shown from the manifest's kind name.
func TestLogsAtTheCapAreNotTruncated(t *testing.T) {
	ctx := context.Background()
	home := testkit.NewHome(t)
	eng := home.Engine(t, engine.Config{Sandboxes: map[string]isolation.Sandbox{manifest.KindWasm: fullLogs{}}})
	if _, err := eng.Install(ctx, home.Build(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: echoWasm, Body: echoBody}), "op"); err != nil {
		t.Fatal(err)
	}
	c, err := eng.Candidate(ctx, "echo", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Approve(ctx, c, nil, "op"); err != nil {
		t.Fatal(err)
	}
	srv := server.New(eng, func(context.Context) string { return "agent" })
	resp, err := srv.Invoke(ctx, &pb.InvokeRequest{Name: "echo", InputJson: `{}`})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetLogs()) != approval.LogsCap || resp.GetLogsTruncated() {
		t.Fatalf("%d bytes of logs, truncated %v; want %d, not truncated", len(resp.GetLogs()), resp.GetLogsTruncated(), approval.LogsCap)
	}
	info, err := srv.Get(ctx, &pb.GetSkillRequest{Name: "echo"})
	if err != nil || info.GetSandbox() != pb.SandboxKind_SANDBOX_KIND_WASM {
		t.Fatalf("sandbox kind %v, %v; want WASM", info.GetSandbox(), err)
	}
}
