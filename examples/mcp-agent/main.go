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
// Its exit status is skillbox's own: 0 when every call succeeded, 1 when one was refused
// or failed or the agent could not work, 2 when the command line is wrong.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
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

func main() { os.Exit(agentMain(os.Args[1:], os.Stderr)) }

// agentMain is main without the process: it returns the exit status.
func agentMain(args []string, stderr io.Writer) int {
	var cs calls
	fs := flag.NewFlagSet("mcp-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	skillbox := fs.String("skillbox", "skillbox", "the skillbox command to start as the MCP server")
	url := fs.String("url", "", "speak MCP over Streamable HTTP to this URL (with $SKILLBOX_TOKEN) instead of starting skillbox mcp")
	list := fs.Bool("list", true, "list the tools first")
	fs.Var(&cs, "call", "NAME=JSON: call tool NAME with these arguments (repeatable)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2 // the flag package has said why
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mcp-agent: unexpected argument %q: write each call as --call NAME=JSON\n", fs.Arg(0))
		return 2
	}
	// Every call is checked before skillbox is started: a call written wrong is the
	// command line's fault, not a failed call.
	for _, c := range cs {
		if _, _, err := parseCall(c); err != nil {
			fmt.Fprintln(stderr, "mcp-agent:", err)
			return 2
		}
	}
	var transport sdk.Transport = &sdk.CommandTransport{Command: exec.Command(*skillbox, "mcp")}
	if *url != "" {
		hc := &http.Client{Transport: bearer{token: os.Getenv("SKILLBOX_TOKEN"), next: http.DefaultTransport}}
		transport = &sdk.StreamableClientTransport{Endpoint: *url, HTTPClient: hc}
	}
	failed, err := run(transport, *list, cs)
	if err != nil {
		fmt.Fprintln(stderr, "mcp-agent:", err)
		return 1
	}
	if failed {
		return 1
	}
	return 0
}

// parseCall reads a --call: the tool's name and its arguments (a JSON object).
func parseCall(c string) (name string, arguments map[string]any, err error) {
	name, args, ok := strings.Cut(c, "=")
	if !ok || name == "" {
		return "", nil, fmt.Errorf("--call %q: want NAME=JSON", c)
	}
	if err := json.Unmarshal([]byte(args), &arguments); err != nil {
		return "", nil, fmt.Errorf("--call %s: arguments: %w", name, err)
	}
	return name, arguments, nil
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
		name, arguments, err := parseCall(c)
		if err != nil {
			return failed, err
		}
		_, args, _ := strings.Cut(c, "=")
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
