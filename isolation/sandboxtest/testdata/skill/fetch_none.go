//go:build wasip1 && !skillbox_net

package main

// fetch is absent from the module built without the skillbox_net tag, which so
// imports no network function and runs without a network grant.
func fetch(string) fetched { return fetched{Error: "built without skillbox_net"} }
