package engine_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

// blocker is a skill that blocks in a host call: asleep, waiting for stdin, or
// waiting for an origin that never answers.
type blocker struct {
	name, module, caps, input string
	ready                     func(t *testing.T) // returns once the guest is in its host call
}

func blockers(t *testing.T) []blocker {
	t.Helper()
	// A loopback origin that accepts and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			go func() { defer c.Close(); _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	url := fmt.Sprintf("http://%s", ln.Addr())
	// Long enough for the guest to reach its sleep or read: the host call is what must
	// be interrupted.
	settle := func(*testing.T) { time.Sleep(200 * time.Millisecond) }
	return []blocker{
		{name: "asleep in poll_oneoff", module: "../../isolation/wasm/testdata/sleep.wasm", input: `{}`, ready: settle},
		{name: "waiting for stdin", module: "../../isolation/wasm/testdata/stdinblock.wasm", input: `{}`, ready: settle},
		{name: "waiting for an origin", module: "testdata/rawhttp.wasm",
			caps:  fmt.Sprintf("capabilities:\n  network: [%q]\n", url),
			input: fmt.Sprintf(`{"method":"GET","url":%q}`, url+"/never"),
			ready: func(t *testing.T) {
				select {
				case <-accepted:
				case <-time.After(10 * time.Second):
					t.Fatal("the request never reached the origin")
				}
			}},
	}
}

// start installs and approves b as skill "blocked" with the given time budget and
// starts one call; its error arrives on the returned channel.
func (b blocker) start(t *testing.T, f *fixture, timeout string) <-chan error {
	t.Helper()
	f.installApprove(t, testkit.Package{Name: "blocked", Version: "1.0.0", Module: b.module,
		Body: "input: {type: object}\noutput: {type: object}\n" + b.caps + "limits: {timeout: " + timeout + "}\n"}, nil)
	errc := make(chan error, 1)
	go func() {
		_, err := f.eng.Invoke(context.Background(), engine.Request{Skill: "blocked", Input: []byte(b.input), Caller: "t"})
		errc <- err
	}()
	waitFor(t, func() bool { return len(f.eng.Calls()) == 1 })
	return errc
}

// blockedEvents lists the call and switch records of the blocked skill, in order.
func blockedEvents(t *testing.T, eng *engine.Engine) []string {
	t.Helper()
	var out []string
	for _, e := range auditEvents(t, eng) {
		if e.Skill == "blocked" && e.Event != audit.EventInstall && e.Event != audit.EventApprove {
			out = append(out, e.Event+":"+e.Reason)
		}
	}
	return out
}

// A call blocked in a host call ends at its time budget, in the user's words, and
// frees its place.
func TestBlockedCallEndsAtItsBudget(t *testing.T) {
	for _, b := range blockers(t) {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t)
			start := time.Now()
			errc := b.start(t, f, "1s")
			var err error
			select {
			case err = <-errc:
			case <-time.After(20 * time.Second):
				t.Fatal("the call is still running 20s into its 1s budget")
			}
			took := time.Since(start)
			if got := reasonOf(t, err); got != "TIMEOUT" {
				t.Fatalf("reason %s (%v)", got, err)
			}
			if msg := err.Error(); !strings.Contains(msg, "call exceeded its time budget of 1s") || strings.Contains(msg, "module closed") {
				t.Errorf("error %q", msg)
			}
			if took > 2*time.Second {
				t.Fatalf("call took %v with a 1s budget", took)
			}
			if calls := f.eng.Calls(); len(calls) != 0 {
				t.Fatalf("calls in flight after the call ended: %+v", calls)
			}
		})
	}
}

// The kill switch ends a call blocked in a host call within its bound, confirms it,
// and the switch is recorded before the call's own end.
func TestDisableEndsCallBlockedInHostCall(t *testing.T) {
	for _, b := range blockers(t) {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t)
			errc := b.start(t, f, "15m")
			b.ready(t)
			// Bounded by the test, not by Disable's own wait: unfixed, the call blocks
			// for its whole 15m budget.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			start := time.Now()
			n, err := f.eng.Disable(ctx, "blocked", "test", "runaway")
			took := time.Since(start)
			if err != nil || n != 1 {
				t.Fatalf("disable after %v: %d calls, %v", took, n, err)
			}
			if took > time.Second {
				t.Fatalf("disable took %v; want under 1s", took)
			}
			select {
			case err := <-errc:
				if got := reasonOf(t, err); got != engine.ReasonDisabled {
					t.Fatalf("call ended with %s (%v), want DISABLED", got, err)
				}
				// The caller whose call the switch ended is told the operator's reason.
				if got, want := engine.CallerMessage(err), "blocked was disabled during the call: runaway"; got != want {
					t.Fatalf("the caller is told %q, want %q", got, want)
				}
			case <-time.After(time.Second):
				// Disable confirms the call ended (its record written); Invoke only returns.
				t.Fatal("the call had not returned a second after disable confirmed it ended")
			}
			if got, want := strings.Join(blockedEvents(t, f.eng), " "), "invoke.start: disable: invoke.end:DISABLED"; got != want {
				t.Fatalf("audit events %q, want %q", got, want)
			}
		})
	}
}

// An operator whose client gives up at once still switches the skill off and leaves
// a record; Disable confirms the call ended or says it was not, and the call ends anyway.
func TestDisableIsRecordedWhenTheOperatorGivesUp(t *testing.T) {
	f := newFixture(t)
	b := blockers(t)[0]
	errc := b.start(t, f, "15m")
	b.ready(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err := f.eng.Disable(ctx, "blocked", "test", "runaway")
	// The call may end while the record is written (its cancel came first): then
	// Disable confirms it; otherwise it must say the call was not confirmed ended.
	if n != 1 {
		t.Fatalf("disable with a gone client: %d calls, %v", n, err)
	}
	if err != nil {
		if got := reasonOf(t, err); got != engine.ReasonCallsRunning ||
			!strings.Contains(err.Error(), "the skill is disabled, but 1 of 1 cancelled calls had not ended") {
			t.Fatalf("disable with a gone client: %s: %v", got, err)
		}
	}
	if info, err := f.eng.Get(context.Background(), "blocked", ""); err != nil || !info.Disabled {
		t.Fatalf("not disabled: %v %+v", err, info)
	}
	select {
	case err := <-errc:
		if got := reasonOf(t, err); got != engine.ReasonDisabled {
			t.Fatalf("call ended with %s (%v), want DISABLED", got, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the disabled call did not end")
	}
	var disables int
	for _, e := range auditEvents(t, f.eng) {
		if e.Event == audit.EventDisable {
			disables++
			if e.Skill != "blocked" || e.Details["cancelledCalls"] != float64(1) || e.Details["reason"] != "runaway" {
				t.Errorf("disable record %+v", e)
			}
		}
	}
	if disables != 1 {
		t.Fatalf("%d disable records, want 1", disables)
	}
}
