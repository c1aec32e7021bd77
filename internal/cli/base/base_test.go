package base

import (
	"bytes"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// A flag error reads as the user typed the flag (--timeout, not Go's -timeout) and says
// what the flag takes, or where the command's flags are listed.
func TestFlagErrorsInTheUsersWords(t *testing.T) {
	newApp := func() *cli.App {
		app := &cli.App{Name: Name, Commands: []*cli.Command{
			{Name: "invoke", Flags: []cli.Flag{
				&cli.DurationFlag{Name: "timeout"},
				&cli.IntFlag{Name: "n"},
				&cli.Float64Flag{Name: "cpu"},
				&cli.StringFlag{Name: "input"},
			}, Action: func(*cli.Context) error { return nil }},
			{Name: "audit", Subcommands: []*cli.Command{
				{Name: "verify", Action: func(*cli.Context) error { return nil }},
			}},
		}}
		return app
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"invoke", "--nosuch"}, "skillbox: invoke: unknown flag --nosuch (see skillbox invoke --help)\n"},
		{[]string{"invoke", "-x"}, "skillbox: invoke: unknown flag -x (see skillbox invoke --help)\n"},
		{[]string{"audit", "verify", "--nosuch"}, "skillbox: audit verify: unknown flag --nosuch (see skillbox audit verify --help)\n"},
		{[]string{"--nosuch"}, "skillbox: unknown flag --nosuch (see skillbox --help)\n"},
		{[]string{"invoke", "--timeout", "soon"}, `skillbox: invoke: --timeout "soon": want a duration such as 30s, 2m or 1h30m` + "\n"},
		{[]string{"invoke", "-n", "x"}, `skillbox: invoke: -n "x": want a whole number` + "\n"},
		{[]string{"invoke", "--cpu", "lots"}, `skillbox: invoke: --cpu "lots": want a number` + "\n"},
	} {
		app := newApp()
		var stdout, stderr bytes.Buffer
		Prepare(app, &stdout, &stderr)
		if code := Run(app, append([]string{Name}, tc.args...)); code != ExitUsage || stderr.String() != tc.want {
			t.Errorf("%s: exit %d, stderr %q; want exit 2, %q", strings.Join(tc.args, " "), code, stderr.String(), tc.want)
		}
	}
}

