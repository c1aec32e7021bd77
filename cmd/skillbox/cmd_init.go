package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func initCommand() *cli.Command {
	return &cli.Command{Name: "init", Usage: "not yet implemented", Action: func(*cli.Context) error { return errors.New("init: not yet implemented") }}
}
