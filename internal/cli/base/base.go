// Package base is the part of the command line that skillbox (the lean front,
// package front) and skillbox-full (package cli) share: the app's name and words,
// flag handling and the one-line failure, `version`, and `run DIR` of a skill
// directory with its flags, help text and output. Both import it, so what the two
// binaries say cannot drift. It must stay light: it is linked into the front, whose
// start-up time is the author's loop's (issue 18; TestFrontLinksNoHeavyPackage).
package base

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/skillbox-dev/skillbox/internal/buildinfo"
)

// The app's name and one-line description, the same in both binaries.
const (
	Name  = "skillbox"
	Usage = "run untrusted AI agent skills in verified, granted, budgeted sandboxes"
)

// Exit statuses: a command line that is wrong (ExitUsage) is told apart from a
// failure of the work it asked for (ExitFailure), as Go's flag package and POSIX
// utilities do.
const (
	ExitFailure = 1
	ExitUsage   = 2
)

// UsageError is a command line that asks for nothing the command can do: an unknown
// command, an undefined flag or one missing its value, a flag value of the wrong
// form, a required flag left out, the wrong number of arguments, flags that do not go
// together. Run exits ExitUsage for it (it is a cli.ExitCoder); its message is Err's.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// ExitCode is ExitUsage.
func (e *UsageError) ExitCode() int { return ExitUsage }

// Usagef is a UsageError with fmt.Errorf's message.
func Usagef(format string, a ...any) error { return &UsageError{fmt.Errorf(format, a...)} }

// ExitCode is the exit status of err: 0 for nil, the code of a cli.ExitCoder in its
// chain (ExitUsage for a UsageError), else ExitFailure.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) && ec.ExitCode() != 0 {
		return ec.ExitCode()
	}
	return ExitFailure
}

// Prepare sets app's writers and makes every usage error one line, like every other
// failure, rather than the whole help text, and a UsageError.
func Prepare(app *cli.App, stdout, stderr io.Writer) {
	app.Writer = stdout
	app.ErrWriter = stderr
	app.ExitErrHandler = func(*cli.Context, error) {} // Run prints errors itself
	quiet := func(_ *cli.Context, err error, _ bool) error { return &UsageError{err} }
	app.OnUsageError = quiet
	var walk func([]*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, c := range cmds {
			c.OnUsageError = quiet
			walk(c.Subcommands)
		}
	}
	walk(app.Commands)
}

// Fail prints msg as the one line of a failure and returns the exit code 1.
func Fail(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "skillbox: %s\n", msg)
	return ExitFailure
}

// FailErr prints err as the one line of a failure and returns its exit code
// (ExitCode).
func FailErr(stderr io.Writer, err error) int {
	Fail(stderr, OneLine(err))
	return ExitCode(err)
}

// Run runs app (Prepared) with args under a context that SIGINT and SIGTERM cancel
// and returns the exit code; a failure ends as one line on stderr.
func Run(app *cli.App, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reordered, err := Interspersed(app, args)
	if err == nil {
		err = app.RunContext(ctx, reordered)
	}
	if err == nil {
		return 0
	}
	msg := OneLine(err)
	// urfave/cli's flag errors do not say which command they are about; they are all
	// usage errors (a required flag's is not passed to OnUsageError).
	code := ExitCode(err)
	for _, p := range []string{"flag provided but not defined", "invalid value", "Required flag", "flag needs an argument"} {
		if strings.HasPrefix(msg, p) {
			cmd := CommandPath(app, args)
			msg = FlagWords(FindCommandPath(app, args), cmd, msg)
			if cmd != "" {
				msg = cmd + ": " + msg
			}
			code = ExitUsage
		}
	}
	Fail(app.ErrWriter, msg)
	return code
}

// FlagWords says a flag error of Go's flag package in the CLI's words: the flag as it
// is typed (--timeout, not -timeout), and what it takes or where the flags are listed.
// cmd is the command the error is about (nil for the app's own flags), path its name
// ("audit verify"). Any other message is returned as it is.
func FlagWords(cmd *cli.Command, path, msg string) string {
	help := "skillbox --help"
	if path != "" {
		help = "skillbox " + path + " --help"
	}
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return "unknown flag " + dashes(name) + " (see " + help + ")"
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		name, _, _ = strings.Cut(strings.TrimLeft(name, "-"), "=")
		return dashes(name) + " needs a value (see " + help + ")"
	}
	rest, ok := strings.CutPrefix(msg, "invalid value ")
	if !ok {
		return msg
	}
	value, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return msg
	}
	name, ok := strings.CutPrefix(rest[len(value):], " for flag -")
	if !ok {
		return msg
	}
	name, _, _ = strings.Cut(name, ":")
	want := "see " + help
	if cmd != nil {
		for _, f := range cmd.Flags {
			if !slices.Contains(f.Names(), name) {
				continue
			}
			switch f.(type) {
			case *cli.DurationFlag:
				want = "want a duration such as 30s, 2m or 1h30m"
			case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Uint64Flag:
				want = "want a whole number"
			case *cli.Float64Flag:
				want = "want a number"
			case *cli.BoolFlag:
				want = "want true or false"
			}
		}
	}
	return dashes(name) + " " + value + ": " + want
}

// dashes writes a flag's name as it is typed: -n for one letter, --name otherwise.
func dashes(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// FindCommandPath is the (sub)command named in args, or nil.
func FindCommandPath(app *cli.App, args []string) *cli.Command {
	var cmd *cli.Command
	cmds := app.Commands
	for _, a := range args[1:] {
		c := FindCommand(cmds, a)
		if c == nil {
			break
		}
		cmd, cmds = c, c.Subcommands
	}
	return cmd
}

// Interspersed moves flags written after positional arguments in front of them, so
// that `skillbox sign DIR --key K` means what the spec writes: urfave/cli v2, like Go's
// flag package, stops parsing flags at the first positional argument. Which tokens
// take a value is read from the command's own flag definitions; everything after
// "--" stays positional.
func Interspersed(app *cli.App, args []string) ([]string, error) {
	if len(args) < 2 {
		return args, nil
	}
	i, cmds := 1, app.Commands
	var cmd *cli.Command
	for i < len(args) && !strings.HasPrefix(args[i], "-") {
		next := FindCommand(cmds, args[i])
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
				return nil, Usagef("flag needs an argument: %s", a)
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

// CommandPath is the (sub)command named in args, e.g. "audit verify".
func CommandPath(app *cli.App, args []string) string {
	var names []string
	cmds := app.Commands
	for _, a := range args[1:] {
		c := FindCommand(cmds, a)
		if c == nil {
			break
		}
		names = append(names, c.Name)
		cmds = c.Subcommands
	}
	return strings.Join(names, " ")
}

// FindCommand is the command of cmds called name, or nil.
func FindCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// OneLine flattens an error to a single line.
func OneLine(err error) string {
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

// VersionLine is what `skillbox version` and `--version` print after the name.
func VersionLine() string { return buildinfo.Read().Line() }

// VersionCommand is `skillbox version`.
func VersionCommand() *cli.Command {
	return &cli.Command{
		Name:      "version",
		Usage:     "print skillbox's version, commit and Go toolchain",
		UsageText: "skillbox version\n\nExample:\n  skillbox version   (the same as skillbox --version)",
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return Usagef("version: takes no arguments")
			}
			fmt.Fprintf(c.App.Writer, "skillbox version %s\n", VersionLine())
			return nil
		},
	}
}
