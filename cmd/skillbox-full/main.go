// Command skillbox-full is the whole skillbox command line (package internal/cli).
// Users type skillbox, which runs the author's loop itself and hands every other
// command to this binary, found next to it; it may also be run directly.
package main

import (
	"os"

	"github.com/skillbox-dev/skillbox/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args, os.Stdout, os.Stderr)) }
