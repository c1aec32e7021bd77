package server_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"google.golang.org/grpc/status"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

// Over the wire, a failed skill's last stderr line (which echoes its input) is in the
// caller's reply, status message and ErrorDetail alike, and not in the audit log.
func TestSkillStderrReachesTheCallerNotTheLog(t *testing.T) {
	f := newFixture(t)
	body := "input:\n  type: object\n  properties: {in: {type: string}}\noutput: {type: object}\n"
	f.installApprove(t, testkit.Package{Name: "errecho", Version: "1.0.0", Module: "../engine/testdata/stdinerr.wasm", Body: body}, nil)
	const marker = "AKIA-MARKER-SECRET-42"
	_, err := f.invoke(context.Background(), "errecho", `{"in":"`+marker+`"}`, nil)
	_, d := detailOf(t, err)
	st, _ := status.FromError(err)
	if d.GetReason() != string(isolation.ReasonSkillFailed) || !strings.Contains(d.GetMessage(), marker) || !strings.Contains(st.Message(), marker) {
		t.Fatalf("reply %s %q (status %q): want SKILL_FAILED with the skill's last stderr line", d.GetReason(), d.GetMessage(), st.Message())
	}
	if !strings.Contains(d.GetMessage(), "skill exited with code 1") {
		t.Errorf("reply %q does not say how the skill ended", d.GetMessage())
	}
	raw, err := os.ReadFile(f.eng.AuditPath())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), marker) {
		t.Fatalf("the audit log holds the skill's stderr:\n%s", raw)
	}
}
