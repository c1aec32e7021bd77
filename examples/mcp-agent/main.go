// Command mcp-agent is what an MCP agent framework does with skillbox, in a page of Go:
// it starts `skillbox mcp` (the stdio bridge to a running `skillbox serve`), lists the
// tools, and calls some. A refused call is a tool result with isError: the model reads
// one sentence, and a program reads the same reason as over gRPC in _meta.
//
//	mcp-agent --call 'decimal={"expression":"1 + 1"}' --call 'decimal={"expression":42}'
//
// With --url it speaks MCP over Streamable HTTP to `skillbox serve --mcp ADDR` instead,
// sending $SKILLBOX_TOKEN as its bearer token (the caller is then token:NAME):
//
//	SKILLBOX_TOKEN=... mcp-agent --url http://127.0.0.1:7401/mcp --call 'upper={"text":"hi"}'
//
// It exits 2 when a call was refused or failed, 1 on any other error.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

type calls []string

func (c *calls) String() string     { return strings.Join(*c, " ") }
func (c *calls) Set(v string) error { *c = append(*c, v); return nil }

func main() {
	var cs calls
	skillbox := flag.String("skillbox", "skillbox", "the skillbox command to start as the MCP server")
	url := flag.String("url", "", "speak MCP over Streamable HTTP to this URL (with $SKILLBOX_TOKEN) instead of starting skillbox mcp")
	list := flag.Bool("list", true, "list the tools first")
	flag.Var(&cs, "call", "NAME=JSON: call tool NAME with these arguments (repeatable)")
	flag.Parse()
	var transport sdk.Transport = &sdk.CommandTransport{Command: exec.Command(*skillbox, "mcp")}
	if *url != "" {
		hc := &http.Client{Transport: bearer{token: os.Getenv("SKILLBOX_TOKEN"), next: http.DefaultTransport}}
		transport = &sdk.StreamableClientTransport{Endpoint: *url, HTTPClient: hc}
	}
	failed, err := run(transport, *list, cs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcp-agent:", err)
		os.Exit(1)
	}
	if failed {
		os.Exit(2)
	}
}

// bearer adds the token to every request of the HTTP transport.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if b.token != "" {
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return b.next.RoundTrip(r)
}

func run(transport sdk.Transport, list bool, cs calls) (failed bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := sdk.NewClient(&sdk.Implementation{Name: "mcp-agent", Version: "1"}, nil)
	session, err := client.Connect(ctx, transport, nil)
	if err != nil {
		return false, fmt.Errorf("connect to skillbox: %w", err)
	}
	defer session.Close()

	if list {
		tools, err := session.ListTools(ctx, nil)
		if err != nil {
			return false, err
		}
		for _, t := range tools.Tools {
			fmt.Printf("tool %-10s %s%s\n", t.Name, t.Description, hints(t.Annotations))
			if b, ok := t.Meta["skillbox/brokeredSecrets"]; ok {
				j, _ := json.Marshal(b)
				fmt.Printf("     %-10s brokered secrets (_meta): %s\n", "", j)
			}
		}
	}
	for _, c := range cs {
		name, args, ok := strings.Cut(c, "=")
		if !ok {
			return failed, fmt.Errorf("--call %q: want NAME=JSON", c)
		}
		var arguments map[string]any
		if err := json.Unmarshal([]byte(args), &arguments); err != nil {
			return failed, fmt.Errorf("--call %s: arguments: %w", name, err)
		}
		fmt.Printf("mcp call %s %s\n", name, args)
		res, err := session.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: arguments})
		if err != nil {
			return failed, fmt.Errorf("call %s: %w", name, err)
		}
		if res.IsError {
			failed = true
			why, _ := json.Marshal(res.Meta["skillbox/error"])
			fmt.Printf("  refused: %s\n  _meta: %s\n", text(res), why)
			continue
		}
		out, _ := json.Marshal(res.StructuredContent)
		fmt.Printf("  result: %s (audit %v)\n", out, res.Meta["skillbox/auditId"])
	}
	return failed, nil
}

// text is the result's text blocks: what the model reads.
func text(res *sdk.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if t, ok := c.(*sdk.TextContent); ok {
			parts = append(parts, t.Text)
		}
	}
	if len(parts) == 0 {
		return "(no text)"
	}
	return strings.Join(parts, " ")
}

// hints shows the annotations skillbox derives from the operator's grant.
func hints(a *sdk.ToolAnnotations) string {
	if a == nil {
		return ""
	}
	var h []string
	if a.ReadOnlyHint {
		h = append(h, "read-only")
	}
	if a.OpenWorldHint != nil && *a.OpenWorldHint {
		h = append(h, "network")
	}
	if a.DestructiveHint != nil && *a.DestructiveHint {
		h = append(h, "writes files")
	}
	if len(h) == 0 {
		return ""
	}
	return " [" + strings.Join(h, ", ") + "]"
}
