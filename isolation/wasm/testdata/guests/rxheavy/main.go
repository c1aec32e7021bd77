// Command rxheavy is a Go reactor with real start-up work: init builds a
// 20,000-entry map; each call echoes its input after one lookup.
package main

import (
	"io"
	"os"
	"strconv"
)

var table = func() map[string]int {
	m := make(map[string]int, 20000)
	for i := range 20000 {
		m["key-"+strconv.Itoa(i)] = i
	}
	return m
}()

func main() {}

//go:wasmexport skillbox_handle
func handle() int32 {
	if table["key-19999"] != 19999 {
		return 1
	}
	if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
		return 1
	}
	return 0
}
