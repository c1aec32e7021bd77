package cli

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
		Description: "Each skill the server lets this process call is one tool (approved, enabled, and named in\n" +
			"its approval's callers when that lists any); the list follows the server's changes.\n" +
			"Calls go to the server over its socket, so its approvals, budgets, audit log and kill\n" +
			"switch apply; the caller is this process as the server authenticates it (unix:uid=N on\n" +
			"the socket, token:NAME or cert:NAME on TCP).",
		Flags: clientFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("mcp: takes no arguments (see skillbox mcp --help)")
			}
			conn, err := dial(c)
			if err != nil {
				return fmt.Errorf("mcp: %w", err)
			}
			defer conn.Close()
			if err := mcp.Bridge(c.Context, conn, c.App.Version); err != nil {
				// A desktop agent's log shows this line: the same words as every client.
				return fmt.Errorf("mcp: %w", statusLine(err))
			}
			return nil
		},
	}
}
