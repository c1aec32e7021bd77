// Package cli is the whole command line of the skillbox runtime: author commands
// (init, keygen, pack, sign), operator commands (verify, review, install, approve,
// disable, audit), the server (serve) and clients of it (invoke, skills, mcp). It
// parses flags, calls a package and prints one clear line; it holds no logic of its
// own. cmd/skillbox-full is this CLI; cmd/skillbox, the command users type, runs the
// author's loop itself and hands every other command to skillbox-full (package front).
package cli

import (
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/skillbox-dev/skillbox/internal/cli/base"
)

// Main runs the CLI with args (args[0] the program) and returns the exit code.
func Main(args []string, stdout, stderr *os.File) int { return run(args, stdout, stderr) }

func newApp() *cli.App {
	return &cli.App{
		Name:                 base.Name,
		Usage:                base.Usage,
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
			base.VersionCommand(),
			internalCommand(),
		},
		Version: base.VersionLine(),
	}
}

// run executes the CLI and returns the exit code. Every failure ends as one line on
// stderr.
func run(args []string, stdout, stderr *os.File) int {
	app := newApp()
	base.Prepare(app, stdout, stderr)
	if group, ok := bareCommand(app, args); ok {
		// No command (or a command group such as audit with no subcommand) is a
		// command line that asks for nothing, as for go or git: the list of commands
		// goes to stderr and the exit status is 2, so a script that lost its arguments
		// does not read help as a success.
		app.Writer = stderr
		if code := base.Run(app, append(args[:len(args):len(args)], "--help")); code != 0 {
			return code
		}
		if group == "" {
			return base.FailErr(stderr, usagef("no command given: name one of the commands above (skillbox COMMAND --help says more)"))
		}
		return base.FailErr(stderr, usagef("%s: no subcommand given: name one of the commands above (skillbox %s COMMAND --help says more)", group, group))
	}
	args, err := helpTopic(app, args)
	if err != nil {
		return base.FailErr(stderr, err)
	}
	if msg := checkCommandPath(app, args); msg != "" {
		return base.FailErr(stderr, usagef("%s", msg))
	}
	return base.Run(app, args)
}

// bareCommand reports whether args name no command at all (group "") or a command
// group and none of its subcommands, with nothing else on the line.
func bareCommand(app *cli.App, args []string) (group string, ok bool) {
	cmds, path := app.Commands, ""
	for _, a := range args[1:] {
		c := findCommand(cmds, a)
		if c == nil || len(c.Subcommands) == 0 {
			return "", false
		}
		cmds, path = c.Subcommands, strings.TrimSpace(path+" "+c.Name)
	}
	return path, true
}

// The names the rest of this package uses for what package base holds.
func interspersed(app *cli.App, args []string) ([]string, error) { return base.Interspersed(app, args) }

func findCommand(cmds []*cli.Command, name string) *cli.Command { return base.FindCommand(cmds, name) }

func oneLine(err error) string { return base.OneLine(err) }

// usagef is a usage error (base.Usagef): the command line is wrong, and the exit
// status is 2, not 1.
func usagef(format string, a ...any) error { return base.Usagef(format, a...) }
