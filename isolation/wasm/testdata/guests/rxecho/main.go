// Command rxecho is the smallest Go reactor: each call copies stdin to stdout.
package main

import (
	"io"
	"os"
)

func main() {}

//go:wasmexport skillbox_handle
func handle() int32 {
	if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
		return 1
	}
	return 0
}
