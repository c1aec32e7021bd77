package console_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/engine"
)

// SECURITY REVIEW (sec-doors, finding 1): the approver's view of a pending input was
// the caller's raw text cut at 4 KiB, and inputs with duplicate keys passed validation.
// A caller could show the approver one value and run another: the console showed
// "amount":5, the skill (any last-wins JSON parser: Go, Python, JS) got 1000000, and
// Allow was offered. Fixed: such an input is refused INVALID_INPUT before any request
// is parked, so there is nothing to allow, and nothing runs.
func TestSecDoorsApproverSeesOtherValue(t *testing.T) {
	s := startConsole(t, func(s *consoleServer) {
		s.install(t, "guarded", "../engine/testdata/echo.wasm", echoBody, &approval.Grant{
			Oversight: &approval.Oversight{Approvers: []string{"token:ops"}, Reason: "sends money"}})
	})
	ops := newBrowser(t, s.base)
	ops.login(opsToken)
	input := `{"amount":5,"payee":"alice","memo":"` + strings.Repeat("invoice 2024-117 ", 300) + `","amount":1000000,"payee":"mallory"}`
	ended, out := callGuarded(s, input)
	var err error
	for done := false; !done; {
		select {
		case err = <-ended:
			done = true
		default:
			if p := s.eng.Pending(); len(p) != 0 {
				t.Fatalf("VULNERABLE: the call waits for a decision (the console offers Allow) though its input holds two values for amount")
			}
			runtime.Gosched()
		}
	}
	if err == nil {
		t.Fatalf("VULNERABLE: the call ran (output %.80s…) though its input holds two values for amount", <-out)
	}
	if engine.ReasonOf(err) != engine.ReasonInvalidInput || !strings.Contains(err.Error(), `key "amount" appears twice`) {
		t.Fatalf("the call ended with %v (%s), want INVALID_INPUT naming the repeated key", err, engine.ReasonOf(err))
	}
	if p := s.eng.Pending(); len(p) != 0 {
		t.Fatalf("%d requests wait for a decision, want none: the input was refused", len(p))
	}
	if _, page := ops.get("/"); strings.Contains(page, `id="pending-`) || strings.Contains(page, "1000000") {
		t.Errorf("the console offers a decision on the refused input:\n%s", page)
	}
}
