package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

// sleepModule sleeps an hour at a time in WASI poll_oneoff, for ever.
const sleepModule = "../../isolation/wasm/testdata/sleep.wasm"

// startSleeper installs and approves the sleeping skill and starts one call of it; the
// call's error arrives on the returned channel.
func startSleeper(t *testing.T, f *fixture) <-chan error {
	t.Helper()
	f.installApprove(t, testkit.Package{Name: "sleeper", Version: "1.0.0", Module: sleepModule,
		Body: "input: {type: object}\noutput: {type: object}\nlimits: {timeout: 15m}\n"}, nil)
	errc := make(chan error, 1)
	go func() {
		_, err := f.eng.Invoke(context.Background(), engine.Request{Skill: "sleeper", Input: []byte(`{}`), Caller: "t"})
		errc <- err
	}()
	waitFor(t, func() bool { return len(f.eng.Calls()) == 1 })
	// Let the guest reach its sleep: the host call is what must be interrupted.
	time.Sleep(200 * time.Millisecond)
	return errc
}

// events lists the audit events of the sleeper, in order.
func sleeperEvents(t *testing.T, eng *engine.Engine) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	for _, e := range auditEvents(t, eng) {
		if e.Skill == "sleeper" && e.Event != audit.EventInstall && e.Event != audit.EventApprove {
			out = append(out, e)
		}
	}
	return out
}

// The kill switch ends a call asleep in a host call within its bound, confirms it,
// and the switch is recorded before the call's own end.
func TestDisableEndsCallBlockedInHostCall(t *testing.T) {
	f := newFixture(t)
	errc := startSleeper(t, f)
	// Bounded by the test, not by Disable's own wait: unfixed, the sleep is an hour.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	n, err := f.eng.Disable(ctx, "sleeper", "test", "runaway")
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
	case <-time.After(time.Second):
		// Disable confirms the call ended (its record written); Invoke only returns.
		t.Fatal("the call had not returned a second after disable confirmed it ended")
	}
	var got []string
	for _, e := range sleeperEvents(t, f.eng) {
		got = append(got, e.Event+":"+e.Reason)
	}
	if want := "invoke.start: disable: invoke.end:DISABLED"; strings.Join(got, " ") != want {
		t.Fatalf("audit events %q, want %q", got, want)
	}
}

// An operator whose client gives up at once still switches the skill off and leaves
// a record; Disable says the call was not confirmed ended, and the call ends anyway.
func TestDisableIsRecordedWhenTheOperatorGivesUp(t *testing.T) {
	f := newFixture(t)
	errc := startSleeper(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err := f.eng.Disable(ctx, "sleeper", "test", "runaway")
	if n != 1 || err == nil || !strings.Contains(err.Error(), "the skill is disabled, but 1 of 1 cancelled calls had not ended") {
		t.Fatalf("disable with a gone client: %d calls, %v", n, err)
	}
	if info, err := f.eng.Get(context.Background(), "sleeper", ""); err != nil || !info.Disabled {
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
	for _, e := range sleeperEvents(t, f.eng) {
		if e.Event == audit.EventDisable {
			disables++
			if e.Details["cancelledCalls"] != float64(1) || e.Details["reason"] != "runaway" {
				t.Errorf("disable record %+v", e.Details)
			}
		}
	}
	if disables != 1 {
		t.Fatalf("%d disable records, want 1", disables)
	}
}
