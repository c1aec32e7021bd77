//go:build wasip1 && skillbox_net

package main

import (
	"encoding/json"
	"unsafe"
)

//go:wasmimport skillbox http_request
func httpRequest(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport skillbox http_response
func httpResponse(ptr unsafe.Pointer, n uint32) int32

// fetch makes one GET through skillbox's network host functions.
func fetch(rawURL string) fetched {
	req, _ := json.Marshal(map[string]string{"method": "GET", "url": rawURL})
	n := httpRequest(unsafe.Pointer(&req[0]), uint32(len(req)))
	if n <= 0 {
		return fetched{Error: "http_request failed"}
	}
	buf := make([]byte, n)
	if httpResponse(unsafe.Pointer(&buf[0]), uint32(n)) != n {
		return fetched{Error: "http_response failed"}
	}
	var r struct {
		Status int    `json:"status"`
		Body   []byte `json:"body"`
		Error  *struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(buf, &r); err != nil {
		return fetched{Error: "reply: " + err.Error()}
	}
	if r.Error != nil {
		return fetched{Error: r.Error.Reason + ": " + r.Error.Message}
	}
	return fetched{Status: r.Status, Body: string(r.Body)}
}
