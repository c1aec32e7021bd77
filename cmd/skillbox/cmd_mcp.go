package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/skillbox-dev/skillbox/runtime/mcp"
)

func mcpCommand() *cli.Command {
	return &cli.Command{
		Name:  "mcp",
		Usage: "serve MCP on stdin/stdout, forwarding every call to a running `skillbox serve`",
		UsageText: "skillbox mcp [--server ADDR] [--token T]\n\n" +
			"Examples:\n  skillbox mcp                                  # forwards to unix://$SKILLBOX_HOME/skillbox.sock\n" +
			"  skillbox mcp --server 10.0.0.5:7443 --ca ca.pem --token $T\n" +
			"  an agent's MCP config: {\"command\": \"skillbox\", \"args\": [\"mcp\"]}",
		Description: "Each approved, enabled skill is one tool. Calls go to the server over its socket, so its\n" +
			"approvals, budgets, audit log and kill switch apply; the caller is this process as the\n" +
			"server authenticates it (unix:uid=N on the socket, token:NAME or cert:NAME on TCP).",
		Flags: clientFlags(),
		Action: func(c *cli.Context) error {
			conn, err := dial(c)
			if err != nil {
				return fmt.Errorf("mcp: %w", err)
			}
			defer conn.Close()
			door := mcp.New(mcp.GRPCBackend{Conn: conn}, c.App.Version)
			if err := door.ServeStdio(c.Context, ""); err != nil {
				return fmt.Errorf("mcp: %w", err)
			}
			return nil
		},
	}
}
