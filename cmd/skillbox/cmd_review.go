package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func reviewCommand() *cli.Command {
	return &cli.Command{Name: "review", Usage: "not yet implemented", Action: func(*cli.Context) error { return errors.New("review: not yet implemented") }}
}
