package host_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/host"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

const opsToken = "ops-token-0123456789abcdef"

// requireChromium returns the path of a chromium to drive. Without one the test is
// skipped, saying so, except in CI (SKILLBOX_REQUIRE_DOCKER=1, which .ci/run sets after
// installing chromium), where a missing browser fails it: the console's browser test
// must not quietly stop running.
func requireChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SKILLBOX_REQUIRE_DOCKER") == "1" {
		t.Fatal("SKILLBOX_REQUIRE_DOCKER=1 but no chromium is installed (apt-get install -y chromium): the console's browser test cannot run")
	}
	t.Skip("SKIPPING: no chromium installed (apt-get install -y chromium) to drive the console in a real browser")
	return ""
}

// consoleHost serves a host with the console on loopback, a token file naming ops (an
// admin) and agent, and the gRPC door on the home's socket.
func consoleHost(t *testing.T, setup func(s *mcpServer)) (*mcpServer, string) {
	t.Helper()
	kit := testkit.NewHome(t)
	ev := newEvents()
	h, err := host.Open(context.Background(), host.Options{Home: resolve(t, kit.Dir), NoContainer: true, Events: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	s := &mcpServer{h: h, eng: h.Engine(), kit: kit}
	setup(s)
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("ops "+opsToken+"\nagent "+aliceToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- h.Serve(sctx, host.ServeOptions{Console: "127.0.0.1:0", Admins: []string{"token:ops"},
			Listen: transport.ServerConfig{TokenFile: tokens}, Drain: 5 * time.Second})
	}()
	var url string
	for url == "" {
		if up := ev.wait(t, host.Serving); up.Door == "console" {
			url = up.Addr
		}
	}
	t.Cleanup(func() {
		stop()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("Serve did not return within a minute of its ctx ending")
		}
		h.Close()
	})
	return s, strings.TrimSuffix(url, "/")
}

// TestConsoleInBrowser drives the console in headless chromium: sign in with the
// token, see the skills and the call in flight, press the kill switch on it, and see
// the skill disabled, the call ended DISABLED and the switch in the audit log with
// the operator and door "console". Each page is saved as a screenshot
// ($SKILLBOX_SCREENSHOTS, else a temp dir).
func TestConsoleInBrowser(t *testing.T) {
	chromium := requireChromium(t)
	s, base := consoleHost(t, func(s *mcpServer) {
		s.install(t, "echo", "../engine/testdata/echo.wasm", echoBody, nil)
		s.install(t, "spin", "../engine/testdata/loop.wasm", "input: {type: object}\noutput: {type: object}\nlimits: {timeout: 60s, memory: 16MiB}\n", nil)
		s.install(t, "guarded", "../engine/testdata/echo.wasm", echoBody, &approval.Grant{
			Oversight: &approval.Oversight{Approvers: []string{"token:ops"}, Reason: "moves money"}})
	})
	shots := os.Getenv("SKILLBOX_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		// Chromium refuses to start as root with its sandbox on; only then is it off.
		chromedp.Flag("no-sandbox", os.Geteuid() == 0),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	// The first Run starts the browser, and lives as long as its context: no timeout
	// there; the steps below have one.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()

	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, "console-"+name+".png"), png, 0o644)
		})
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}

	// Not signed in: the login form.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		shot("login"),
	); err != nil {
		t.Fatalf("login page: %v", err)
	}
	if title, _ := chromedp.Run(ctx, chromedp.Title()); !strings.Contains(title, "Sign in") {
		t.Errorf("title %q, want the sign-in page", title)
	}

	// A call that spins until its 60s timeout, started now that the browser is up.
	ended := make(chan error, 1)
	go func() {
		_, err := s.eng.Invoke(context.Background(), engine.Request{Skill: "spin", Input: []byte(`{}`), Caller: "token:agent", Door: "grpc"})
		ended <- err
	}()

	// Sign in, see both skills and the spinning call.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("token"), opsToken),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("skill-spin")),
		chromedp.WaitVisible(chromedp.CSS(`tr.call[data-skill="spin"]`)),
		shot("overview"),
	); err != nil {
		t.Fatalf("sign in: %v; the page: %s", err, page(ctx))
	}
	who, skills, calls := text("#who"), text("#skills"), text("#calls")
	if who != "token:ops" || !strings.Contains(skills, "echo") || !strings.Contains(skills, testkit.SignerName) || !strings.Contains(calls, "token:agent") {
		t.Errorf("signed in as %q; skills %q; calls %q", who, skills, calls)
	}

	// The other pages.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/skills/spin"),
		chromedp.WaitVisible(chromedp.ID("grant")),
		shot("skill"),
	); err != nil {
		t.Fatalf("skill page: %v", err)
	}
	if signer := text("#signer"); !strings.HasPrefix(signer, testkit.SignerName+" (key ") {
		t.Errorf("signer %q, want %s and its key", signer, testkit.SignerName)
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/audit"),
		chromedp.WaitVisible(chromedp.ID("verify")),
		shot("audit"),
	); err != nil {
		t.Fatalf("audit page: %v", err)
	}
	if verify := text("#verify"); !strings.HasPrefix(verify, "verify: ok") {
		t.Errorf("verify %q, want ok", verify)
	}

	// The kill switch on the call in flight. Typing a reason also holds the page's
	// auto-refresh while the form is in use.
	killForm := `tr.call[data-skill="spin"] form.kill`
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(killForm)),
		chromedp.SendKeys(chromedp.CSS(killForm+` input[name="reason"]`), "runaway spin"),
		chromedp.Click(chromedp.CSS(killForm+` button`)),
		chromedp.WaitVisible(chromedp.ID("flash")),
		shot("killed"),
	); err != nil {
		t.Fatalf("kill switch: %v; the page: %s", err, page(ctx))
	}
	if flash, skills := text("#flash"), text("#skills"); !strings.Contains(flash, "Disabled spin") || !strings.Contains(skills, "disabled (approved)") {
		t.Errorf("after the switch: flash %q, skills %q", flash, skills)
	}
	select {
	case err := <-ended:
		if engine.ReasonOf(err) != engine.ReasonDisabled {
			t.Errorf("the call ended with %v, want DISABLED", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the call still runs a minute after the kill switch")
	}
	if in, err := s.eng.Get(context.Background(), "spin", ""); err != nil || !in.Disabled {
		t.Errorf("spin after the kill switch: %+v, %v; want disabled", in, err)
	}
	snap, err := audit.ReadSnapshot(s.eng.AuditPath(), 100)
	if err != nil || snap.Err != nil {
		t.Fatal(err, snap.Err)
	}
	var found bool
	for _, e := range snap.Last {
		if e.Event == audit.EventDisable && e.Skill == "spin" {
			found = e.Caller == "token:ops" && e.Details["door"] == "console" && e.Details["reason"] == "runaway spin"
		}
	}
	if !found {
		t.Errorf("no disable record of spin by token:ops through the console in %+v", snap.Last)
	}

	// A call that waits for a decision: allow it in the browser, and its caller gets
	// its result.
	result := make(chan error, 1)
	go func() {
		res, err := s.eng.Invoke(context.Background(), engine.Request{Skill: "guarded", Input: []byte(`{"amount":42}`), Caller: "token:agent", Door: "mcp"})
		if err == nil && string(res.Output) != `{"amount":42}` {
			err = fmt.Errorf("output %s, want the input echoed", res.Output)
		}
		result <- err
	}()
	allowForm := `article.pending[data-skill="guarded"] form.allow`
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(allowForm), chromedp.RetryInterval(200*time.Millisecond)),
		shot("pending"),
	); err != nil {
		t.Fatalf("pending call: %v; the page: %s", err, page(ctx))
	}
	// The request is on the page (at once, or after one of its reloads).
	if pending := text(`article.pending[data-skill="guarded"]`); !strings.Contains(pending, `"amount": 42`) ||
		!strings.Contains(pending, "token:agent") || !strings.Contains(pending, "moves money") {
		t.Errorf("the pending request reads %q", pending)
	}
	// A second call waits now: the page listing the first does not reload by itself (a
	// reload could move the second's Allow under the pointer); it says the list changed.
	denied := make(chan error, 1)
	go func() {
		_, err := s.eng.Invoke(context.Background(), engine.Request{Skill: "guarded", Input: []byte(`{"amount":9000}`), Caller: "token:agent", Door: "mcp"})
		denied <- err
	}()
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.ID("changed"), chromedp.RetryInterval(200*time.Millisecond)),
		shot("changed"),
	); err != nil {
		t.Fatalf("the notice of a change: %v; the page: %s", err, page(ctx))
	}
	listed, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("article.pending").length`))
	if err != nil {
		t.Fatal(err)
	}
	if listed != 1 || !strings.Contains(text(`article.pending`), `"amount": 42`) {
		t.Errorf("after a second call parked the page lists %d requests, want still the first alone", listed)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(allowForm+` input[name="reason"]`), "checked the invoice"),
		chromedp.Click(chromedp.CSS(allowForm+` button`)),
		chromedp.WaitVisible(chromedp.ID("flash")),
	); err != nil {
		t.Fatalf("allow: %v; the page: %s", err, page(ctx))
	}
	if flash := text("#flash"); !strings.Contains(flash, "Allowed the call of guarded") {
		t.Errorf("after allow: flash %q", flash)
	}
	select {
	case err := <-result:
		if err != nil {
			t.Errorf("the allowed call: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the allowed call has no result a minute later")
	}

	// The second waiting call: deny it in the browser, with the reason its caller is shown.
	denyForm := `article.pending[data-skill="guarded"] form.deny`
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(denyForm), chromedp.RetryInterval(200*time.Millisecond)),
		chromedp.SendKeys(chromedp.CSS(denyForm+` input[name="reason"]`), "not this customer"),
		chromedp.Click(chromedp.CSS(denyForm+` button`)),
		chromedp.WaitVisible(chromedp.ID("flash")),
	); err != nil {
		t.Fatalf("deny: %v; the page: %s", err, page(ctx))
	}
	select {
	case err := <-denied:
		if engine.ReasonOf(err) != engine.ReasonApprovalDenied || !strings.Contains(engine.CallerMessage(err), "not this customer") {
			t.Errorf("the denied call ended with %v (%s), want APPROVAL_DENIED with the reason", err, engine.ReasonOf(err))
		}
	case <-time.After(time.Minute):
		t.Fatal("the denied call has no answer a minute later")
	}
	t.Logf("screenshots in %s", shots)
}

// page is the browser's current page, for a failure's message.
func page(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
	if err != nil {
		return loc + ": " + err.Error()
	}
	return loc + ":\n" + html
}
