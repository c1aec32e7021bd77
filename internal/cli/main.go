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
	"strings"
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
			pushCommand(),
			approveCommand(),
			runCommand(),
			serveCommand(),
			mcpCommand(),
			invokeCommand(),
			skillsCommand(),
			disableCommand(),
			enableCommand(),
			reloadCommand(),
			callsCommand(),
			pendingCommand(),
			allowCommand(),
			denyCommand(),
			auditCommand(),
			versionCommand(),
			internalCommand(),
		},
		Version: versionLine(),
	}
}

// run executes the CLI and returns the exit code. Every failure ends as one line on
// stderr.
func run(args []string, stdout, stderr *os.File) int {
	app := newApp()
	app.Writer = stdout
	app.ErrWriter = stderr
	app.ExitErrHandler = func(*cli.Context, error) {} // we print errors ourselves
	// A usage error is one line, like every other failure, not the whole help text.
	quiet := func(_ *cli.Context, err error, _ bool) error { return err }
	app.OnUsageError = quiet
	var walk func([]*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, c := range cmds {
			c.OnUsageError = quiet
			walk(c.Subcommands)
		}
	}
	walk(app.Commands)
	args, err := helpTopic(app, args)
	if err != nil {
		fmt.Fprintf(stderr, "skillbox: %s\n", err)
		return 1
	}
	if msg := checkCommandPath(app, args); msg != "" {
		fmt.Fprintf(stderr, "skillbox: %s\n", msg)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reordered, err := interspersed(app, args)
	if err == nil {
		err = app.RunContext(ctx, reordered)
	}
	if err != nil {
		msg := oneLine(err)
		// urfave/cli's flag errors do not say which command they are about.
		for _, p := range []string{"flag provided but not defined", "invalid value", "Required flag", "flag needs an argument"} {
			if strings.HasPrefix(msg, p) {
				if cmd := commandPath(app, args); cmd != "" {
					msg = cmd + ": " + msg
				}
			}
		}
		fmt.Fprintf(stderr, "skillbox: %s\n", msg)
		var ec cli.ExitCoder
		if errors.As(err, &ec) && ec.ExitCode() != 0 {
			return ec.ExitCode()
		}
		return 1
	}
	return 0
}

// interspersed moves flags written after positional arguments in front of them, so
// that `skillbox sign DIR --key K` means what the spec writes: urfave/cli v2, like Go's
// flag package, stops parsing flags at the first positional argument. Which tokens
// take a value is read from the command's own flag definitions; everything after
// "--" stays positional.
func interspersed(app *cli.App, args []string) ([]string, error) {
	if len(args) < 2 {
		return args, nil
	}
	i, cmds := 1, app.Commands
	var cmd *cli.Command
	for i < len(args) && !strings.HasPrefix(args[i], "-") {
		next := findCommand(cmds, args[i])
		if next == nil {
			break
		}
		cmd, cmds = next, next.Subcommands
		i++
		if len(cmds) == 0 {
			break
		}
	}
	if cmd == nil {
		return args, nil
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flags, pos []string
	rest := args[i:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		if a == "--" {
			pos = append(pos, rest[j+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if takesValue[name] && !hasValue {
			if j+1 >= len(rest) || rest[j+1] == "--" {
				return nil, fmt.Errorf("flag needs an argument: %s", a)
			}
			j++
			flags = append(flags, rest[j])
		}
	}
	out := append(append([]string{}, args[:i]...), flags...)
	if len(pos) > 0 {
		out = append(out, "--")
	}
	return append(out, pos...), nil
}

// commandPath is the (sub)command named in args, e.g. "audit verify".
func commandPath(app *cli.App, args []string) string {
	var names []string
	cmds := app.Commands
	for _, a := range args[1:] {
		c := findCommand(cmds, a)
		if c == nil {
			break
		}
		names = append(names, c.Name)
		cmds = c.Subcommands
	}
	return strings.Join(names, " ")
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
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
