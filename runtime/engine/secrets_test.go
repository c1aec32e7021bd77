package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

// brokeredValue has characters JSON escapes (" < >) so the output holds its escaped form.
const brokeredValue = `gh"<tok>/en`

const brokeredPlaceholder = "[skillbox:secret GH_TOKEN]"

// requireNoValue fails if the value, raw or JSON-escaped, is anywhere under home.
func requireNoValue(t *testing.T, home string, extra ...[]byte) {
	t.Helper()
	esc, _ := json.Marshal(brokeredValue)
	forms := [][]byte{[]byte(brokeredValue), esc[1 : len(esc)-1]}
	check := func(where string, b []byte) {
		for _, f := range forms {
			if bytes.Contains(b, f) {
				t.Fatalf("%s holds the brokered value", where)
			}
		}
	}
	for i, b := range extra {
		check(fmt.Sprintf("reply part %d", i), b)
	}
	filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := os.ReadFile(p); err == nil {
				check(p, b)
			}
		}
		return nil
	})
}

// brokeredSkill installs module with a brokered GH_TOKEN listed for origin and
// approves it with the value from the environment.
func brokeredSkill(t *testing.T, f *fixture, name, module, origin string) {
	t.Helper()
	body := fmt.Sprintf(`input: {type: object}
output: {type: object}
capabilities:
  network: [%q]
  secrets:
    - name: GH_TOKEN
      origins: [%q]
      format: "Bearer {}"
limits: {requests: 5, timeout: 10s}
`, origin, origin)
	o, err := manifest.ParseOrigin(origin)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SKILLBOX_TEST_GH", brokeredValue)
	f.installApprove(t, testkit.Package{Name: name, Version: "1.0.0", Module: module, Body: body},
		&approval.Grant{Network: []manifest.Origin{o}, Secrets: map[string]string{"GH_TOKEN": "env:SKILLBOX_TEST_GH"}})
}

// The skill's output holding a value (here the caller put it in the input, which the
// skill echoes) leaves skillbox with the placeholder, as valid JSON, and neither the
// reply nor anything under $SKILLBOX_HOME holds it.
func TestOutputRedacted(t *testing.T) {
	f := newFixture(t)
	brokeredSkill(t, f, "echo", "testdata/echo.wasm", "http://127.0.0.1:1")
	in, _ := json.Marshal(map[string]string{"said": "token " + brokeredValue})
	res, err := f.eng.Invoke(context.Background(), engine.Request{Skill: "echo", Input: in, Caller: "t"})
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]string
	if err := json.Unmarshal(res.Output, &out); err != nil {
		t.Fatalf("redacted output %s is not JSON: %v", res.Output, err)
	}
	if out["said"] != "token "+brokeredPlaceholder {
		t.Fatalf("output %s", res.Output)
	}
	requireNoValue(t, f.home.Dir, res.Output, res.Logs)
}

// Through the network: the listed origin gets the header, its echo reaches the skill
// (and so the reply) as the placeholder, and the audit log says which secret went
// with which request, by name only.
func TestBrokeredCallAudited(t *testing.T) {
	var got []string
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
		io.WriteString(w, "you sent "+r.Header.Get("Authorization"))
	}))
	defer echo.Close()
	f := newFixture(t)
	brokeredSkill(t, f, "raw", "testdata/rawhttp.wasm", echo.URL)
	res, err := f.eng.Invoke(context.Background(), engine.Request{Skill: "raw",
		Input: []byte(fmt.Sprintf(`{"method":"GET","url":%q}`, echo.URL+"/x")), Caller: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"Bearer " + brokeredValue}) {
		t.Fatalf("listed origin got %q", got)
	}
	var reply struct{ Body []byte }
	if err := json.Unmarshal(res.Output, &reply); err != nil || string(reply.Body) != "you sent Bearer "+brokeredPlaceholder {
		t.Fatalf("output %s (%v)", res.Output, err)
	}
	if len(res.Egress) != 1 || !slices.Equal(res.Egress[0].Secrets, []string{"GH_TOKEN"}) {
		t.Fatalf("egress %+v", res.Egress)
	}
	var sent []audit.Entry
	for _, e := range auditEvents(t, f.eng) {
		if e.Event == audit.EventEgressSecret && e.CallID == res.CallID {
			sent = append(sent, e)
		}
	}
	if len(sent) != 1 || sent[0].Details["url"] != echo.URL+"/x" || fmt.Sprint(sent[0].Details["secrets"]) != "[GH_TOKEN]" {
		t.Fatalf("egress.secret records %+v", sent)
	}
	requireNoValue(t, f.home.Dir, res.Output, res.Logs)

	// A value that would inject a header is refused when the call starts, naming the
	// secret, and the refusal (audited) does not hold it.
	t.Setenv("SKILLBOX_TEST_GH", "abc\r\nX-Evil: 1")
	_, err = f.eng.Invoke(context.Background(), engine.Request{Skill: "raw",
		Input: []byte(fmt.Sprintf(`{"method":"GET","url":%q}`, echo.URL+"/x")), Caller: "t"})
	if err == nil || !strings.Contains(err.Error(), "secret GH_TOKEN: the value contains a line break or NUL byte") || strings.Contains(err.Error(), "X-Evil") {
		t.Fatalf("injection: %v", err)
	}
	if len(got) != 1 {
		t.Fatal("the origin was reached with an injecting value")
	}
}
