package console_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/engine"
)

// SECURITY REVIEW (sec-doors): the approver's view of a pending input is the caller's
// raw text cut at 4 KiB, and inputs with duplicate keys pass validation. A caller can
// show the approver one value and run another: the console shows "amount":5, the
// skill (any last-wins JSON parser: Go, Python, JS) gets 1000000, and Allow is offered.
func TestSecDoorsApproverSeesOtherValue(t *testing.T) {
	s := startConsole(t, func(s *consoleServer) {
		s.install(t, "guarded", "../engine/testdata/echo.wasm", echoBody, &approval.Grant{
			Oversight: &approval.Oversight{Approvers: []string{"token:ops"}, Reason: "sends money"}})
	})
	ops := newBrowser(t, s.base)
	ops.login(opsToken)
	input := `{"amount":5,"payee":"alice","memo":"` + strings.Repeat("invoice 2024-117 ", 300) + `","amount":1000000,"payee":"mallory"}`
	ended := make(chan error, 1)
	out := make(chan []byte, 1)
	go func() {
		res, err := s.eng.Invoke(context.Background(), engine.Request{Skill: "guarded", Input: []byte(input), Caller: "token:agent", Door: "mcp"})
		if err == nil {
			out <- res.Output
		}
		ended <- err
	}()
	id, digest, csrf, page := ops.waitPending(t, ended)
	if !strings.Contains(page, `&#34;amount&#34;:5`) || strings.Contains(page, "1000000") || strings.Contains(page, "mallory") {
		t.Fatalf("expected the page to show amount 5 only")
	}
	if code, _, _ := ops.post("/pending/"+id+"/allow", s.base, map[string][]string{"csrf": {csrf}, "digest": {digest}, "skill": {"guarded"}}); code != 303 {
		t.Fatalf("allow: %d", code)
	}
	if err := <-ended; err != nil {
		t.Fatal(err)
	}
	var got struct {
		Amount int    `json:"amount"`
		Payee  string `json:"payee"`
	}
	if err := json.Unmarshal(<-out, &got); err != nil {
		t.Fatal(err)
	}
	t.Logf("approver was shown amount 5 to alice; the skill (Go encoding/json) read amount %d to %s", got.Amount, got.Payee)
	if got.Amount == 1000000 && got.Payee == "mallory" {
		t.Errorf("VULNERABLE: the allowed call ran with a value the approver was never shown")
	}
}
