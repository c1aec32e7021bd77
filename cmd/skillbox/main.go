// Command skillbox is the skillbox command line users type. It runs the author's
// loop (`run DIR` of a wasm skill) and `version` itself and hands every other
// command to skillbox-full, installed beside it (package internal/front).
package main

import (
	"os"

	"github.com/skillbox-dev/skillbox/internal/front"
)

func main() { os.Exit(front.Main(os.Args, os.Stdout, os.Stderr)) }
