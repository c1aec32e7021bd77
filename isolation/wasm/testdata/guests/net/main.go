// Command net is a test guest for the network host functions: it sends the request in
// its input through skillbox.http_request and prints the host's JSON reply as is.
package main

import (
	"io"
	"os"
	"unsafe"
)

//go:wasmimport skillbox http_request
func httpRequest(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport skillbox http_response
func httpResponse(ptr unsafe.Pointer, n uint32) int32

func main() {
	req, err := io.ReadAll(os.Stdin)
	if err != nil || len(req) == 0 {
		os.Exit(2)
	}
	n := httpRequest(unsafe.Pointer(&req[0]), uint32(len(req)))
	if n < 0 {
		os.Stderr.WriteString("http_request: -1\n")
		os.Exit(3)
	}
	if n == 0 {
		os.Exit(4)
	}
	// One byte short must be refused without consuming the reply.
	buf := make([]byte, n)
	if n > 1 && httpResponse(unsafe.Pointer(&buf[0]), uint32(n-1)) != -1 {
		os.Stderr.WriteString("short buffer accepted\n")
		os.Exit(5)
	}
	if got := httpResponse(unsafe.Pointer(&buf[0]), uint32(n)); got != n {
		os.Stderr.WriteString("http_response: wrong size\n")
		os.Exit(6)
	}
	os.Stdout.Write(buf)
}
