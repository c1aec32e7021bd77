// Command rxinitnet is a reactor that asks for the network in its package init, run by
// _initialize, and again in its handler; it fetches $INIT_URL both times. Every call
// answers {"init": <the host's reply to init's request, or null>, "call": <the reply to
// its own>}.
package main

import (
	"os"
	"unsafe"
)

//go:wasmimport skillbox http_request
func httpRequest(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport skillbox http_response
func httpResponse(ptr unsafe.Pointer, n uint32) int32

var atInit []byte

func init() { atInit = fetch(os.Getenv("INIT_URL") + "/init") }

func main() {}

// fetch sends a GET for url and returns the host's reply, or null when there is none.
func fetch(url string) []byte {
	req := []byte(`{"method":"GET","url":"` + url + `"}`)
	n := httpRequest(unsafe.Pointer(&req[0]), uint32(len(req)))
	if n <= 0 {
		return []byte("null")
	}
	buf := make([]byte, n)
	if httpResponse(unsafe.Pointer(&buf[0]), uint32(n)) != n {
		return []byte("null")
	}
	return buf
}

//go:wasmexport skillbox_handle
func handle() int32 {
	out := append([]byte(`{"init":`), atInit...)
	out = append(out, `,"call":`...)
	out = append(out, fetch(os.Getenv("INIT_URL")+"/call")...)
	out = append(out, '}')
	os.Stdout.Write(out)
	return 0
}
