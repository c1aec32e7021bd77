package engine_test

import (
	"context"
	"testing"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

// runtimeSandbox is a sandbox that names the OCI runtime it runs calls under, as the
// container sandbox does (WithRuntime).
type runtimeSandbox struct{ goSandbox }

func (*runtimeSandbox) Runtime() string { return "runsc" }

// TestAuditRecordsRuntime: a call's start and end records name the runtime its sandbox
// ran it under, so an auditor can tell a gVisor call from a runc one.
func TestAuditRecordsRuntime(t *testing.T) {
	home := testkit.NewHome(t)
	eng := home.Engine(t, engine.Config{Sandboxes: map[string]isolation.Sandbox{manifest.KindWasm: &runtimeSandbox{}}})
	f := &fixture{home: home, eng: eng}
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm",
		Body: "input: {type: object}\noutput: {type: object, required: [ran]}\n"}, nil)
	if _, err := eng.Invoke(context.Background(), engine.Request{Skill: "echo", Input: []byte(`{}`), Caller: "test"}); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, e := range auditEvents(t, eng) {
		if e.Event == audit.EventInvokeStart || e.Event == audit.EventInvokeEnd {
			seen++
			if e.Details["runtime"] != "runsc" {
				t.Errorf("%s details %v, want runtime runsc", e.Event, e.Details)
			}
		}
	}
	if seen != 2 {
		t.Fatalf("saw %d invoke records, want start and end", seen)
	}
}
