// Package skills_test builds every first-party skill for the guest (wasip1/wasm) and
// runs it end to end in the real wazero sandbox, through the real host network
// functions and egress guard. Only loopback servers are contacted.
package skills_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/manifest"
)

// skill is one skill built into a temporary package directory.
type skill struct {
	m      *manifest.Manifest
	dir    string
	digest string
}

// build compiles skills/<name> for wasip1 into a temp dir next to its manifest. The
// manifest must parse and validate as shipped (with the placeholder digest).
func build(t *testing.T, name string) skill {
	t.Helper()
	if testing.Short() {
		t.Skip("builds wasm modules; skipped in -short")
	}
	m, _, err := manifest.LoadFile(filepath.Join(name, "skill.yaml"))
	if err != nil {
		t.Fatalf("%s/skill.yaml: %v", name, err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "module.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./"+name)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	code, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(code)
	return skill{m: m, dir: dir, digest: "sha256:" + hex.EncodeToString(sum[:])}
}

func newSandbox(t *testing.T) *wasm.Sandbox {
	t.Helper()
	sb, err := wasm.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	return sb
}

// limits are the manifest's own, so these runs also show that the shipped limits are
// enough for the skill.
func limits(m *manifest.Manifest) isolation.Limits {
	return isolation.Limits{
		Timeout:  time.Duration(m.Limits.Timeout),
		Memory:   int64(m.Limits.Memory),
		Output:   int64(m.Limits.Output),
		Logs:     64 << 10,
		Requests: m.Limits.Requests,
		Response: 1 << 20,
	}
}

// call runs one call after validating the input against the skill's schema, and
// validates the output when the call succeeds, as the engine does.
func call(t *testing.T, sb *wasm.Sandbox, s skill, input string, grant isolation.Grant) (isolation.Result, error) {
	t.Helper()
	if err := s.m.ValidateInput([]byte(input)); err != nil {
		t.Fatalf("input %s does not match %s's schema: %v", input, s.m.Name, err)
	}
	// Compiled first, as install does: a Go module's compile (seconds on a loaded
	// machine) is not the call's, and the shipped time limit is for the call alone.
	sk := isolation.Skill{Manifest: s.m, Dir: s.dir, Digest: s.digest}
	if err := sb.Prepare(context.Background(), sk); err != nil {
		t.Fatalf("compile %s: %v", s.m.Name, err)
	}
	res, err := sb.Run(context.Background(), isolation.Call{
		ID:     fmt.Sprintf("test-%d", time.Now().UnixNano()),
		Skill:  sk,
		Input:  []byte(input),
		Grant:  grant,
		Limits: limits(s.m),
	})
	t.Logf("%s: wall %v, peak memory %d MiB, output %d bytes", s.m.Name, res.Usage.Wall, res.Usage.PeakMemory>>20, res.Usage.OutputBytes)
	if err == nil {
		if verr := s.m.ValidateOutput(res.Output); verr != nil {
			t.Errorf("output %s does not match %s's schema: %v", res.Output, s.m.Name, verr)
		}
	}
	return res, err
}

func TestDecimal(t *testing.T) {
	s := build(t, "decimal")
	sb := newSandbox(t)
	for _, tt := range []struct{ in, out string }{
		{`{"expression":"0.1 + 0.2"}`, `{"result":"0.3","exact":true}`},
		{`{"expression":"19.99 * 3 - 5.00 / 2"}`, `{"result":"57.47","exact":true}`},
		{`{"expression":"-(1 / 3)","scale":4,"rounding":"floor"}`, `{"result":"-0.3334","exact":false}`},
		{`{"op":"div","operands":["100","3"],"scale":2}`, `{"result":"33.33","exact":false}`},
	} {
		// No network grant: a module that imported the host functions would be refused.
		res, err := call(t, sb, s, tt.in, isolation.Grant{})
		if err != nil {
			t.Fatalf("%s: %v (logs %q)", tt.in, err, res.Logs)
		}
		if got := strings.TrimSpace(string(res.Output)); got != tt.out {
			t.Errorf("%s: got %s, want %s", tt.in, got, tt.out)
		}
	}
	res, err := call(t, sb, s, `{"expression":"1 / (2 - 2)"}`, isolation.Grant{})
	if isolation.ReasonOf(err) != isolation.ReasonSkillFailed || !strings.Contains(string(res.Logs), "division by zero") {
		t.Fatalf("division by zero: err %v, logs %q", err, res.Logs)
	}
	if !strings.Contains(isolation.SkillMessage(err), "division by zero") {
		t.Errorf("the skill's message does not reach the caller: %v", err)
	}
}

func TestJSONQ(t *testing.T) {
	s := build(t, "jsonq")
	sb := newSandbox(t)
	in := `{"data":{"items":[{"name":"a","price":3.10},{"name":"b","price":1.20},{"name":"c","price":12}],"id":12345678901234567890},
	        "query":".items[] | select(.price > 2) | .name"}`
	res, err := call(t, sb, s, in, isolation.Grant{})
	if err != nil {
		t.Fatalf("%v (logs %q)", err, res.Logs)
	}
	if got := strings.TrimSpace(string(res.Output)); got != `{"results":["a","c"]}` {
		t.Errorf("got %s", got)
	}
	res, err = call(t, sb, s, `{"data":{"id":12345678901234567890,"p":[0.10,0.20]},"query":"[.id, .p | add]"}`, isolation.Grant{})
	if isolation.ReasonOf(err) != isolation.ReasonSkillFailed || !strings.Contains(string(res.Logs), "query: at 4: unexpected character ','") {
		t.Fatalf("bad query: err %v, logs %q", err, res.Logs)
	}
	res, err = call(t, sb, s, `{"data":{"id":12345678901234567890,"p":[0.10,0.20]},"query":".p | add"}`, isolation.Grant{})
	if err != nil || strings.TrimSpace(string(res.Output)) != `{"results":[0.3]}` {
		t.Fatalf("add: %s %v %q", res.Output, err, res.Logs)
	}
}

func TestFetch(t *testing.T) {
	s := build(t, "fetch")
	sb := newSandbox(t)

	var deniedHits atomic.Int32
	denied := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deniedHits.Add(1)
		w.Write([]byte("should never be reached"))
	}))
	defer denied.Close()
	granted := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/page":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(`<!doctype html><title>Test Page</title><nav>menu</nav><script>x()</script><h1>Hello</h1><p>from   the <b>sandbox</b>.</p>`))
		case "/gone":
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte("no such page"))
		case "/hop":
			http.Redirect(w, r, "/page", http.StatusFound)
		case "/away":
			http.Redirect(w, r, denied.URL+"/secret", http.StatusFound)
		}
	}))
	defer granted.Close()
	origin, err := manifest.ParseOrigin(granted.URL) // an IP literal: loopback allowed because the origin names it
	if err != nil {
		t.Fatal(err)
	}
	grant := isolation.Grant{Network: []manifest.Origin{origin}}

	res, err := call(t, sb, s, fmt.Sprintf(`{"url":%q}`, granted.URL+"/page"), grant)
	if err != nil {
		t.Fatalf("%v (logs %q)", err, res.Logs)
	}
	var out struct {
		URL, Title, Text string
		Status           int
	}
	if err := json.Unmarshal(res.Output, &out); err != nil {
		t.Fatal(err)
	}
	if out.Status != 200 || out.Title != "Test Page" || out.Text != "Hello\n\nfrom the sandbox." {
		t.Errorf("got %+v", out)
	}
	if res.Usage.Requests != 1 || len(res.Egress) != 1 || !res.Egress[0].Allowed {
		t.Errorf("usage %+v egress %+v", res.Usage, res.Egress)
	}

	// An error status is a result, not a failure.
	res, err = call(t, sb, s, fmt.Sprintf(`{"url":%q}`, granted.URL+"/gone"), grant)
	if err != nil || !strings.Contains(string(res.Output), `"status":404`) || !strings.Contains(string(res.Output), `"text":"no such page"`) {
		t.Errorf("404: %s %v", res.Output, err)
	}

	// The host follows a redirect within the grant; the guest sees the final page.
	res, err = call(t, sb, s, fmt.Sprintf(`{"url":%q}`, granted.URL+"/hop"), grant)
	if err != nil || !strings.Contains(string(res.Output), `"title":"Test Page"`) {
		t.Errorf("redirect: %s %v (logs %q)", res.Output, err, res.Logs)
	}

	// An origin not granted, directly or by redirect, fails the skill with a clear
	// message, and nothing reaches that server.
	for _, u := range []string{denied.URL + "/secret", granted.URL + "/away"} {
		res, err = call(t, sb, s, fmt.Sprintf(`{"url":%q}`, u), grant)
		t.Logf("%s: %v", u, err)
		if isolation.ReasonOf(err) != isolation.ReasonSkillFailed || !strings.Contains(string(res.Logs), "not allowed") {
			t.Errorf("%s: err %v, logs %q", u, err, res.Logs)
		}
		if res.Usage.DeniedRequests != 1 {
			t.Errorf("%s: usage %+v", u, res.Usage)
		}
	}
	if n := deniedHits.Load(); n != 0 {
		t.Errorf("the denied server got %d requests", n)
	}

	// Without a network grant the module (which imports skillbox.http_*) is not run.
	_, err = call(t, sb, s, fmt.Sprintf(`{"url":%q}`, granted.URL+"/page"), isolation.Grant{})
	if isolation.ReasonOf(err) != isolation.ReasonNotGranted {
		t.Errorf("no grant: err %v, want NOT_GRANTED", err)
	}
}
