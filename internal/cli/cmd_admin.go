package cli

import (
	"context"
	"fmt"
	"time"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/urfave/cli/v2"
)

// reloadCommand asks a running server to re-read trust.yaml, the approvals and the
// store, and says what it found: the answer SIGHUP cannot give its sender.
func reloadCommand() *cli.Command {
	return &cli.Command{
		Name:      "reload",
		Usage:     "make a running server re-read trust.yaml, the approvals and the store",
		UsageText: "skillbox reload [--server ADDR]\n\nExample:\n  skillbox reload",
		Description: "The same as sending the server SIGHUP, but it answers: how many skills the server\n" +
			"knows after the reload (installed packages: versions, not names), or why the reload failed (the server keeps its old state then).",
		Flags: clientFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("reload: takes no arguments (see skillbox reload --help)")
			}
			conn, err := dial(c)
			if err != nil {
				return fmt.Errorf("reload: %w", err)
			}
			defer conn.Close()
			res, err := pb.NewAdminClient(conn).Reload(c.Context, &pb.ReloadRequest{})
			if err != nil {
				return fmt.Errorf("reload: %w", statusLine(err))
			}
			fmt.Fprintf(c.App.Writer, "reloaded: the server knows %d installed package(s)\n", res.GetSkills())
			return nil
		},
	}
}

// callsCommand lists the calls a running server has in flight.
func callsCommand() *cli.Command {
	return &cli.Command{
		Name:      "calls",
		Usage:     "list the calls a running server has in flight",
		UsageText: "skillbox calls [--server ADDR] [--json]\n\nExample:\n  skillbox calls",
		Flags:     append(clientFlags(), &cli.BoolFlag{Name: "json", Usage: "print JSON"}),
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("calls: takes no arguments (see skillbox calls --help)")
			}
			conn, err := dial(c)
			if err != nil {
				return fmt.Errorf("calls: %w", err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
			defer cancel()
			res, err := pb.NewAdminClient(conn).Calls(ctx, &pb.CallsRequest{})
			if err != nil {
				return clientFailure(c, "calls", err)
			}
			if c.Bool("json") {
				type callJSON struct {
					CallID  string `json:"callId"`
					Skill   string `json:"skill"`
					Version string `json:"version"`
					Caller  string `json:"caller"`
					Started string `json:"started"`
				}
				out := make([]callJSON, 0, len(res.GetCalls()))
				for _, k := range res.GetCalls() {
					out = append(out, callJSON{k.GetCallId(), k.GetSkill(), k.GetVersion(), k.GetCaller(), k.GetStarted()})
				}
				return writeJSON(c.App.Writer, out)
			}
			if len(res.GetCalls()) == 0 {
				fmt.Fprintln(c.App.Writer, "no calls in flight")
				return nil
			}
			now := time.Now()
			for _, k := range res.GetCalls() {
				age := ""
				if t, err := time.Parse(time.RFC3339Nano, k.GetStarted()); err == nil {
					age = " for " + callAge(now.Sub(t))
				}
				fmt.Fprintf(c.App.Writer, "%s  %s %s  caller %s  running%s\n", k.GetCallId(), k.GetSkill(), k.GetVersion(), k.GetCaller(), age)
			}
			return nil
		},
	}
}

// callAge is how long a call has run, as people write it: milliseconds under a minute
// (1.234s), whole seconds beyond (2m5s, 10m).
func callAge(d time.Duration) string {
	if d < time.Minute {
		return manifest.Duration(d.Round(time.Millisecond)).String()
	}
	return manifest.Duration(d.Round(time.Second)).String()
}
