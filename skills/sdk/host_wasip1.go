//go:build wasip1

package sdk

import (
	"errors"
	"fmt"
	"unsafe"
)

// The host functions of the "skillbox" module (skills/ABI.md). The host links this
// module only into skills granted network; a module that never calls them (the linker
// drops unused imports) needs no grant.
//
//go:wasmimport skillbox http_request
func httpRequest(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport skillbox http_response
func httpResponse(ptr unsafe.Pointer, n uint32) int32

// hostCall hands the request JSON to the host, which makes the request (blocking this
// module), and reads back the pending result.
func hostCall(req []byte) ([]byte, error) {
	if len(req) == 0 {
		return nil, errors.New("skillbox: empty request")
	}
	n := httpRequest(unsafe.Pointer(&req[0]), uint32(len(req)))
	if n < 0 {
		return nil, &EgressError{Reason: ReasonInvalidRequest, Message: "the host could not read the request"}
	}
	if n == 0 {
		return nil, errors.New("skillbox: empty result from host")
	}
	buf := make([]byte, n)
	got := httpResponse(unsafe.Pointer(&buf[0]), uint32(len(buf)))
	if got < 0 || got > n {
		return nil, fmt.Errorf("skillbox: http_response returned %d for a %d-byte result", got, n)
	}
	return buf[:got], nil
}
