package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func packCommand() *cli.Command {
	return &cli.Command{Name: "pack", Usage: "not yet implemented", Action: func(*cli.Context) error { return errors.New("pack: not yet implemented") }}
}
