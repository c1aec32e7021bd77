package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func keygenCommand() *cli.Command {
	return &cli.Command{Name: "keygen", Usage: "not yet implemented", Action: func(*cli.Context) error { return errors.New("keygen: not yet implemented") }}
}

func signCommand() *cli.Command {
	return &cli.Command{Name: "sign", Usage: "not yet implemented", Action: func(*cli.Context) error { return errors.New("sign: not yet implemented") }}
}

func verifyCommand() *cli.Command {
	return &cli.Command{Name: "verify", Usage: "not yet implemented", Action: func(*cli.Context) error { return errors.New("verify: not yet implemented") }}
}

func verifyBundleCommand() *cli.Command {
	return &cli.Command{Name: "verify-bundle", Usage: "not yet implemented", Action: func(*cli.Context) error { return errors.New("verifyBundle: not yet implemented") }}
}
