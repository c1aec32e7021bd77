package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/skillbox-dev/skillbox/runtime/mcp"
)

// brokeredWholeValue is the brokered secret of TestBrokeredSecretWholeRun: characters
// JSON and URLs escape, so that escaped copies are searched for too.
const brokeredWholeValue = `whole-run"<tok>/en+0123456789abcdef`

const brokeredWholePlaceholder = "[skillbox:secret API_TOKEN]"

// TestBrokeredSecretWholeRun: with the built binary, a wasm skill granted a brokered
// API_TOKEN for one local origin is listed with it (`skills`, `skills --json`, the MCP
// tool's _meta), called over gRPC (`skillbox invoke`) and over MCP: the origin that
// checks the token answers, the origin's echo of it comes back as the placeholder, and
// after the server has stopped, no form of the value is anywhere under $SKILLBOX_HOME,
// in the server's output, or in any call's result.
func TestBrokeredSecretWholeRun(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)

	var mu sync.Mutex
	var got []string // what the origin received in Authorization, per request
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		mu.Lock()
		got = append(got, auth)
		mu.Unlock()
		switch r.URL.Path {
		case "/api":
			if auth != "Bearer "+brokeredWholeValue {
				http.Error(w, "no token", http.StatusUnauthorized)
				return
			}
			io.WriteString(w, "token accepted")
		case "/echo":
			fmt.Fprintf(w, "you sent %s; as a query: %s", auth, url.QueryEscape(auth))
		}
	}))
	defer origin.Close()

	pkg := writeWasmSkill(t, op.work, "raw", filepath.Join("..", "..", "runtime", "engine", "testdata", "rawhttp.wasm"),
		fmt.Sprintf("capabilities:\n  network: [%q]\n  secrets:\n    - name: API_TOKEN\n      origins: [%q]\n      format: \"Bearer {}\"\nlimits: {requests: 2}\n", origin.URL, origin.URL))
	op.must("pack", pkg)
	op.must("sign", pkg, "--key", filepath.Join(op.work, "release.key"))
	op.must("install", pkg)
	grant := filepath.Join(op.work, "raw-grant.yaml")
	if err := os.WriteFile(grant, []byte(fmt.Sprintf("network: [%q]\nsecrets: {API_TOKEN: \"env:SKILLBOX_TEST_WHOLE_RUN\"}\n", origin.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	op.must("approve", "raw", "--grant", grant, "--yes", "--by", "test")

	const agentTok = "agent-token-brokered-0123456789"
	tokens := filepath.Join(op.work, "tokens")
	if err := os.WriteFile(tokens, []byte("agent "+agentTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srvEnv := append(append([]string{}, op.env...), "SKILLBOX_TEST_WHOLE_RUN="+brokeredWholeValue)
	srv, srvLog := startServerWith(t, bin, srvEnv, "--no-container", "--mcp", "127.0.0.1:0", "--token-file", tokens)
	var results []string // every call's and listing's output, searched at the end

	// The listings: the table, the JSON and the MCP tool name the secret and its origin.
	skills := op.must("skills")
	results = append(results, skills)
	if !regexp.MustCompile(`(?m)^raw\s+API_TOKEN\s+Authorization\s+` + regexp.QuoteMeta(origin.URL) + `$`).MatchString(skills) {
		t.Errorf("skills does not list API_TOKEN brokered to %s:\n%s", origin.URL, skills)
	}
	js := op.must("skills", "--json")
	results = append(results, js)
	var listed []skillJSON
	if err := json.Unmarshal([]byte(js), &listed); err != nil {
		t.Fatal(err)
	}
	for _, s := range listed {
		if s.Name != "raw" {
			continue
		}
		if b := s.Capabilities.BrokeredSecrets; len(b) != 1 || b[0].Name != "API_TOKEN" || b[0].Header != "Authorization" ||
			len(b[0].Origins) != 1 || b[0].Origins[0] != origin.URL {
			t.Errorf("skills --json: brokeredSecrets %+v", b)
		}
	}

	// Over gRPC: the origin that checks the token answers; its echo comes back as the
	// placeholder (the body is base64 in the host's result JSON: decode it).
	invoke := func(path string) (status int, body string) {
		t.Helper()
		r := signRunCLI(t, bin, op.env, "invoke", "raw", "--input", fmt.Sprintf(`{"method":"GET","url":%q}`, origin.URL+path))
		results = append(results, r.stdout, r.stderr)
		if r.code != 0 {
			t.Fatalf("invoke %s: exit %d: %s", path, r.code, r.stderr)
		}
		var out struct {
			Output struct {
				Status int
				Body   []byte
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("invoke %s: %v: %s", path, err, r.stdout)
		}
		results = append(results, string(out.Output.Body))
		return out.Output.Status, string(out.Output.Body)
	}
	if status, body := invoke("/api"); status != 200 || body != "token accepted" {
		t.Errorf("/api: %d %q, want the origin to accept the brokered token", status, body)
	}
	if _, body := invoke("/echo"); !strings.Contains(body, "you sent Bearer "+brokeredWholePlaceholder) {
		t.Errorf("/echo reached the skill as %q, want the placeholder", body)
	}

	// Over MCP with a token: the tool's _meta names the secret and its origin; a call's
	// echo is the placeholder there too.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs := mcpOverHTTP(ctx, t, serverURL(t, srvLog, "/mcp"), agentTok)
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var meta []byte
	for _, tl := range tools.Tools {
		if tl.Name == "raw" {
			meta, _ = json.Marshal(tl.Meta[mcp.MetaBrokeredSecrets])
		}
	}
	results = append(results, string(meta))
	if want := fmt.Sprintf(`[{"header":"Authorization","name":"API_TOKEN","origins":[%q]}]`, origin.URL); string(meta) != want {
		t.Errorf("MCP tool raw _meta %s = %s, want %s", mcp.MetaBrokeredSecrets, meta, want)
	}
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "raw", Arguments: map[string]any{"method": "GET", "url": origin.URL + "/echo"}})
	if err != nil {
		t.Fatal(err)
	}
	mres, _ := json.Marshal(res)
	results = append(results, string(mres))
	var echoed struct{ Body []byte }
	sc, _ := json.Marshal(res.StructuredContent)
	if res.IsError || json.Unmarshal(sc, &echoed) != nil || !strings.Contains(string(echoed.Body), "you sent Bearer "+brokeredWholePlaceholder) {
		t.Errorf("MCP call: isError %v, %s", res.IsError, sc)
	}
	results = append(results, string(echoed.Body))
	cs.Close()
	stopServer(t, srv, srvLog)
	results = append(results, srvLog.String())
	r := signRunCLI(t, bin, op.env, "audit", "tail")
	results = append(results, r.stdout, r.stderr)
	if !strings.Contains(r.stdout, `"event":"egress.secret"`) || !strings.Contains(r.stdout, `"secrets":["API_TOKEN"]`) {
		t.Errorf("the audit log has no egress.secret record naming API_TOKEN:\n%s", r.stdout)
	}

	// The origin really got the value (the search below would find a leak), three times.
	mu.Lock()
	n := strings.Count(strings.Join(got, "\n"), "Bearer "+brokeredWholeValue)
	mu.Unlock()
	if n != 3 {
		t.Fatalf("the origin got the token %d times, want 3 (api, echo, MCP echo)", n)
	}
	// The whole-run search: every file under $SKILLBOX_HOME, the server's output, every
	// output above.
	forms := secretForms(brokeredWholeValue)
	for i, s := range results {
		for _, f := range forms {
			if strings.Contains(s, f) {
				t.Errorf("output %d holds the value (as %q): %s", i, f, s)
			}
		}
	}
	files := 0
	err = filepath.WalkDir(op.home, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSocket != 0 {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for _, f := range forms {
			if bytes.Contains(b, []byte(f)) {
				t.Errorf("%s holds the value (as %q)", p, f)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 {
		t.Fatalf("searched only %d files under the home", files)
	}
}

// secretForms are the ways value could show up in text: raw, JSON-escaped (with and
// without HTML escaping), URL-escaped, and base64 at each of the three alignments
// (without the characters at either end that depend on its neighbours).
func secretForms(value string) []string {
	forms := []string{value, url.QueryEscape(value), url.PathEscape(value)}
	html, _ := json.Marshal(value)
	var plain bytes.Buffer
	enc := json.NewEncoder(&plain)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(value)
	forms = append(forms, string(html[1:len(html)-1]), strings.TrimSpace(plain.String())[1:len(strings.TrimSpace(plain.String()))-1])
	for pad := 0; pad < 3; pad++ {
		b := base64.StdEncoding.EncodeToString(append(make([]byte, pad), value...))
		b = strings.TrimRight(b, "=")
		start := (pad*8 + 5) / 6 // characters that hold pad bytes
		forms = append(forms, b[start:len(b)-2])
	}
	return forms
}

// serverURL is the URL the server's log says a door listens on: "…/mcp" for MCP, "/"
// for the console.
func serverURL(t *testing.T, log *lockedWriter, suffix string) string {
	t.Helper()
	re := regexp.MustCompile(`serving on (http://127\.0\.0\.1:\d+` + regexp.QuoteMeta(suffix) + `)\n`)
	var u string
	waitUntil(t, "the server to say where it serves "+suffix, func() bool {
		if m := re.FindStringSubmatch(log.String()); m != nil {
			u = m[1]
		}
		return u != ""
	})
	return u
}

// mcpOverHTTP connects the SDK's client to the MCP door at u with a bearer token.
func mcpOverHTTP(ctx context.Context, t *testing.T, u, token string) *sdk.ClientSession {
	t.Helper()
	hc := &http.Client{Transport: bearerTransport{token: token}}
	c := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: u, HTTPClient: hc}, nil)
	if err != nil {
		t.Fatalf("connect to %s: %v", u, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}
