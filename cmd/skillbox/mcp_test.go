package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/skillbox-dev/skillbox/runtime/mcp"
)

// TestMCPStdioBridge: the built `skillbox mcp`, driven on stdio by the SDK's own
// client, lists the running server's approved skill and calls it through the server
// (which audits the call under the bridge's own identity).
func TestMCPStdioBridge(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	srv := exec.Command(bin, "serve", "--no-container")
	srv.Env = append(os.Environ(), op.env...)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	waitUntil(t, "the server answers", func() bool { return signRunCLI(t, bin, op.env, "skills").code == 0 })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bridge := exec.Command(bin, "mcp")
	bridge.Env = append(os.Environ(), op.env...)
	c := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &sdk.CommandTransport{Command: bridge}, nil)
	if err != nil {
		t.Fatalf("connect to skillbox mcp: %v", err)
	}
	defer cs.Close()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tools.Tools) != 1 || tools.Tools[0].Name != "echo" || tools.Tools[0].Description == "" {
		t.Fatalf("tools %d (first %+v), want the approved echo with its description", len(tools.Tools), tools.Tools)
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
}
