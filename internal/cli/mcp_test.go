package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/skillbox-dev/skillbox/runtime/mcp"
)

// TestMCPStdioBridge: the built `skillbox mcp`, driven on stdio by the SDK's own
// client, lists exactly the running server's skills its peer may call (not one whose
// approval's callers leave it out), calls one through the server (which audits the
// call under the bridge's own identity), and tells the client when the server's skills
// change (notifications/tools/list_changed after an approve and a disable).
func TestMCPStdioBridge(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	// A skill for another caller only: the bridge (this uid on the socket) must not
	// offer it.
	op.addSkill(t, "secret", "callers: [\"token:someone-else\"]\n")
	srv := exec.Command(bin, "serve", "--no-container")
	srv.Env = append(os.Environ(), op.env...)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	waitUntil(t, "the server answers", func() bool { return serverAnswers(t, bin, op.env) })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bridge := exec.Command(bin, "mcp")
	bridge.Env = append(os.Environ(), op.env...)
	changed := make(chan struct{}, 16)
	c := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, &sdk.ClientOptions{
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) { changed <- struct{}{} },
	})
	cs, err := c.Connect(ctx, &sdk.CommandTransport{Command: bridge}, nil)
	if err != nil {
		t.Fatalf("connect to skillbox mcp: %v", err)
	}
	defer cs.Close()
	names := func() string {
		t.Helper()
		tools, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, tl := range tools.Tools {
			n = append(n, tl.Name)
		}
		return strings.Join(n, ",")
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tools.Tools) != 1 || tools.Tools[0].Name != "echo" || tools.Tools[0].Description == "" {
		t.Fatalf("tools %q, want only the approved echo with its description (secret is for token:someone-else)", names())
	}
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"hello": "world"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res.StructuredContent)
	if res.IsError || string(b) != `{"hello":"world"}` || res.Meta[mcp.MetaAuditID] == "" {
		t.Fatalf("call: isError %v, structuredContent %s, _meta %v; want the input echoed with its audit id", res.IsError, b, res.Meta)
	}
	// The server's audit log names the bridge's peer (this uid on the socket) as the caller.
	out := signRunCLI(t, bin, op.env, "audit", "tail")
	if out.code != 0 || !strings.Contains(out.stdout, "unix:uid="+strconv.Itoa(os.Getuid())) {
		t.Errorf("audit tail (exit %d) does not show the bridged call under the bridge's uid: %s %s", out.code, out.stdout, out.stderr)
	}

	// The list follows the server: approving a skill and disabling it each send
	// list_changed, and the list then says so.
	waitFor := func(what, want string) {
		t.Helper()
		deadline := time.After(time.Minute)
		for {
			select {
			case <-changed:
				if names() == want {
					return
				}
			case <-deadline:
				t.Fatalf("no notifications/tools/list_changed bringing the tools to %q within a minute of %s; tools %q", want, what, names())
			}
		}
	}
	op.addSkill(t, "fresh", "")
	waitFor("approving fresh", "echo,fresh")
	op.must("disable", "fresh", "--reason", "incident")
	waitFor("disabling fresh", "echo")
}

// addSkill signs, installs and approves the echo module as skill name, with grant
// (YAML lines) as its grant file when not empty. approve tells a running server to
// reload.
func (o *operatorHome) addSkill(t *testing.T, name, grant string) {
	t.Helper()
	pkg := writeWasmSkill(t, o.work, name, filepath.Join("..", "..", "runtime", "engine", "testdata", "echo.wasm"), "")
	o.must("pack", pkg)
	o.must("sign", pkg, "--key", filepath.Join(o.work, "release.key"))
	tgz := filepath.Join(o.work, name+".tar.gz")
	o.must("pack", pkg, "-o", tgz)
	o.must("install", tgz)
	args := []string{"approve", name, "--yes", "--by", "test"}
	if grant != "" {
		file := filepath.Join(o.work, name+"-grant.yaml")
		if err := os.WriteFile(file, []byte(grant), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--grant", file)
	}
	o.must(args...)
}
