package cli

import (
	"context"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/skillbox-dev/skillbox/runtime/host"
)

// internalCommand holds the processes skillbox starts itself; they are not for
// people and do not show in the help.
func internalCommand() *cli.Command {
	return &cli.Command{
		Name:      "internal",
		Hidden:    true,
		Usage:     "processes skillbox starts itself",
		UsageText: "skillbox internal COMMAND",
		Subcommands: []*cli.Command{{
			Name:   "container-watchdog",
			Hidden: true,
			Usage:  "remove a container sandbox's containers when its server dies (serve starts it)",
			UsageText: "skillbox internal container-watchdog INSTANCE\n\n" +
				"Example (serve starts it, with a pipe on its standard input):\n  skillbox internal container-watchdog 3f2a9c01b7de",
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return usagef("internal container-watchdog: want one INSTANCE, the sandbox's instance id")
				}
				// Not c.Context: the first SIGTERM ends that, and the watchdog reads its
				// signals itself.
				return host.RunContainerWatchdog(context.Background(), os.Stdin, c.Args().First(),
					slog.New(slog.NewTextHandler(c.App.ErrWriter, nil)))
			},
		}},
	}
}
