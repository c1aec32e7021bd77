package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	skillboxv1 "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

// TestShutdownRecordsCallsInFlight: SIGTERM while a call sleeps past the drain. The
// server cancels it, its invoke.end (CANCELED, with why) is in the audit log, and the
// client says the server shut down in one line. (The server used to exit right after
// the drain: the log had the call's invoke.start and no invoke.end, and the client
// printed gRPC's transport error.)
func TestShutdownRecordsCallsInFlight(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	pkg := writeWasmSkill(t, op.work, "sl", filepath.Join("..", "..", "isolation", "wasm", "testdata", "sleep.wasm"), "limits: {timeout: 15m}\n")
	op.must("pack", pkg)
	op.must("sign", pkg, "--key", filepath.Join(op.work, "release.key"))
	op.must("install", pkg)
	op.must("approve", "sl", "--yes", "--by", "test")

	srv, srvErr := startServer(t, op, "--no-container", "--drain", "1s")
	inv := exec.Command(bin, "invoke", "sl", "--input", "{}")
	inv.Env = append(os.Environ(), op.env...)
	invErr := &lockedWriter{}
	inv.Stderr = invErr
	if err := inv.Start(); err != nil {
		t.Fatal(err)
	}
	invDone := make(chan error, 1)
	go func() { invDone <- inv.Wait() }()
	t.Cleanup(func() { _ = inv.Process.Kill() })

	// The call is in the engine (in its sandbox) before the server is told to stop.
	cc, err := transport.Dial(context.Background(), transport.ClientConfig{Home: op.home})
	if err != nil {
		t.Fatal(err)
	}
	admin := skillboxv1.NewAdminClient(cc)
	waitUntil(t, "the call to be in flight", func() bool {
		list, err := admin.Calls(context.Background(), &skillboxv1.CallsRequest{})
		return err == nil && len(list.GetCalls()) == 1
	})
	cc.Close()
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v: %s", err, srvErr)
		}
	case <-time.After(30 * time.Second): // the call sleeps 15 minutes
		t.Fatalf("serve did not exit after SIGTERM: %s", srvErr)
	}
	select {
	case <-invDone:
	case <-time.After(30 * time.Second):
		t.Fatal("the client did not return after the server exited")
	}
	msg := strings.TrimSpace(invErr.String())
	if inv.ProcessState.ExitCode() == 0 || !strings.Contains(msg, "the server shut down during the call") ||
		strings.Contains(msg, "transport") || strings.Count(msg, "\n") != 0 {
		t.Fatalf("the client printed %q (exit %d)", msg, inv.ProcessState.ExitCode())
	}

	// The log has the call's end, with why it ended, and verifies.
	b, err := os.ReadFile(filepath.Join(op.home, "audit", "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		Event, Skill, CallID, Reason string
		Details                      map[string]any
	}
	var starts, ends []rec
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r rec
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		switch {
		case r.Skill == "sl" && r.Event == "invoke.start":
			starts = append(starts, r)
		case r.Skill == "sl" && r.Event == "invoke.end":
			ends = append(ends, r)
		}
	}
	if len(starts) != 1 || len(ends) != 1 || ends[0].CallID != starts[0].CallID || ends[0].Reason != "CANCELED" ||
		ends[0].Details["message"] != "the server shut down during the call" {
		t.Fatalf("the call's records: starts %+v, ends %+v; server log: %s", starts, ends, srvErr)
	}
	if out := op.must("audit", "verify"); !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("audit verify: %s", out)
	}
}

// The status gRPC gives a client whose server closed the connection under its call
// reads as what happened.
func TestStatusLineServerShutDown(t *testing.T) {
	const raw = `closing transport due to: connection error: desc = "error reading from server: EOF", ` +
		`received prior goaway: code: NO_ERROR, debug data: "graceful_stop"`
	if got := statusLine(status.Error(codes.Unavailable, raw)).Error(); got != "the server shut down during the call (UNAVAILABLE)" {
		t.Fatalf("statusLine = %q", got)
	}
}
