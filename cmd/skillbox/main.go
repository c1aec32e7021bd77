// Command skillbox is the command line of the skillbox runtime: author commands (init,
// keygen, pack, sign), operator commands (verify, review, install, approve, disable,
// audit) and clients of the gRPC server (invoke, skills). It parses flags, calls a
// package and prints one clear line; it holds no logic of its own.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

func newApp() *cli.App {
	return &cli.App{
		Name:                 "skillbox",
		Usage:                "run untrusted AI agent skills in verified, granted, budgeted sandboxes",
		HideHelpCommand:      true,
		EnableBashCompletion: false,
		Commands: []*cli.Command{
			initCommand(),
			keygenCommand(),
			packCommand(),
			signCommand(),
			verifyCommand(),
			verifyBundleCommand(),
			reviewCommand(),
			installCommand(),
			approveCommand(),
			runCommand(),
			serveCommand(),
			invokeCommand(),
			skillsCommand(),
			disableCommand(),
			enableCommand(),
			auditCommand(),
		},
	}
}

// run executes the CLI and returns the exit code. Every failure ends as one line on
// stderr.
func run(args []string, stdout, stderr *os.File) int {
	app := newApp()
	app.Writer = stdout
	app.ErrWriter = stderr
	app.ExitErrHandler = func(*cli.Context, error) {} // we print errors ourselves
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.RunContext(ctx, args); err != nil {
		fmt.Fprintf(stderr, "skillbox: %v\n", oneLine(err))
		var ec cli.ExitCoder
		if errors.As(err, &ec) && ec.ExitCode() != 0 {
			return ec.ExitCode()
		}
		return 1
	}
	return 0
}

// oneLine flattens an error to a single line.
func oneLine(err error) string {
	s := err.Error()
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '\n' || r == '\r' {
			r = ' '
		}
		out = append(out, r)
	}
	return string(out)
}
