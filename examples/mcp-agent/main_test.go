package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// The exit status is skillbox's own: 2 for a command line that is wrong (before any
// server is started), 1 for a call refused or failed, 0 when every call succeeded.
func TestExitStatusAsSkillbox(t *testing.T) {
	srv := sdk.NewServer(&sdk.Implementation{Name: "stand-in", Version: "1"}, nil)
	schema := json.RawMessage(`{"type":"object"}`)
	srv.AddTool(&sdk.Tool{Name: "fine", InputSchema: schema}, func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "ok"}}, StructuredContent: map[string]any{"ok": true}}, nil
	})
	srv.AddTool(&sdk.Tool{Name: "refused", InputSchema: schema}, func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		res := &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: "invalid input"}}}
		res.Meta = sdk.Meta{"skillbox/error": map[string]any{"reason": "INVALID_INPUT"}}
		return res, nil
	})
	ts := httptest.NewServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv }, &sdk.StreamableHTTPOptions{JSONResponse: true}))
	defer ts.Close()
	url := ts.URL + "/mcp"
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"every call succeeded", []string{"--url", url, "--list=false", "--call", `fine={}`}, 0},
		{"a call refused", []string{"--url", url, "--list=false", "--call", `fine={}`, "--call", `refused={}`}, 1},
		{"no server", []string{"--skillbox", "/nonexistent/skillbox", "--list=false", "--call", `fine={}`}, 1},
		{"a call not NAME=JSON", []string{"--skillbox", "/nonexistent/skillbox", "--call", "fine"}, 2},
		{"arguments not JSON", []string{"--skillbox", "/nonexistent/skillbox", "--call", "fine={"}, 2},
		{"a positional argument", []string{"--skillbox", "/nonexistent/skillbox", `fine={}`}, 2},
		{"an unknown flag", []string{"--no-such-flag"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := agentMain(tc.args, &stderr); code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, stderr.String())
			}
			if tc.code == 2 && !strings.Contains(stderr.String(), "call") && !strings.Contains(stderr.String(), "flag") {
				t.Errorf("stderr %q does not say what is wrong", stderr.String())
			}
		})
	}
}
