package server_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"google.golang.org/grpc/status"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
	"github.com/skillbox-dev/skillbox/runtime/server"
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

// A failed call's ErrorDetail carries what the call left, as the reply of a successful
// one would: its id, usage and the end of its logs. A refusal carries none of it.
func TestFailedCallDetailCarriesWhatItLeft(t *testing.T) {
	f := newFixture(t)
	body := "input:\n  type: object\n  properties: {in: {type: string}}\noutput: {type: object}\n"
	f.installApprove(t, testkit.Package{Name: "errecho", Version: "1.0.0", Module: "../engine/testdata/stdinerr.wasm", Body: body}, nil)
	_, err := f.invoke(context.Background(), "errecho", `{"in":"no name"}`, nil)
	_, d := detailOf(t, err)
	if d.GetCallId() == "" || d.GetAuditId() == "" || d.GetUsage() == nil || d.GetLogs() != `{"in":"no name"}` || d.GetLogsTruncated() {
		t.Fatalf("detail %v: want the call's id, audit id, usage and its whole stderr", d)
	}
	// A skill that floods stderr past its log budget: the detail keeps the end of
	// what was captured, at most server.MaxDetailLogs bytes, marked as cut.
	f.installApprove(t, testkit.Package{Name: "flood", Version: "1.0.0", Module: "../../isolation/wasm/testdata/stderrflood.wasm", Body: body}, nil)
	_, err = f.invoke(context.Background(), "flood", `{}`, nil)
	_, d = detailOf(t, err)
	if d.GetReason() != string(isolation.ReasonLogs) || d.GetCallId() == "" || !d.GetLogsTruncated() ||
		len(d.GetLogs()) == 0 || len(d.GetLogs()) > server.MaxDetailLogs {
		t.Fatalf("flooded logs: %s, call %q, truncated %v, %d bytes: want LOG_LIMIT with the last %d bytes, marked",
			d.GetReason(), d.GetCallId(), d.GetLogsTruncated(), len(d.GetLogs()), server.MaxDetailLogs)
	}

	_, err = f.invoke(context.Background(), "nosuch", `{}`, nil)
	_, d = detailOf(t, err)
	if d.GetCallId() != "" || d.GetUsage() != nil || d.GetLogs() != "" {
		t.Fatalf("a refusal's detail %v carries a call", d)
	}
}

// A skill whose stderr is not UTF-8 still gets its answer to the caller: a protobuf
// string must be UTF-8, so the reply carries the logs with the bad bytes replaced
// (before, marshalling the reply failed and the caller saw INTERNAL for a call that
// had succeeded).
func TestLogsNotUTF8StillAnswer(t *testing.T) {
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "bytes", Version: "1.0.0", Module: "../engine/testdata/badutf8.wasm",
		Body: "input: {type: object}\noutput: {type: object}\n"}, nil)
	res, err := f.invoke(context.Background(), "bytes", `{}`, nil)
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	if res.GetOutputJson() != `{}` || res.GetLogs() != "\uFFFD" {
		t.Fatalf("output %q, logs %q: want {} and the bad byte replaced", res.GetOutputJson(), res.GetLogs())
	}
}
