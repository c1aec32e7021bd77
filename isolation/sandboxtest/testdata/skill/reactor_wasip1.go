//go:build wasip1

package main

// handle makes the same program a reactor when built with -buildmode=c-shared
// (BuildReactorSkill): the host calls it once per call, with stdin and stdout bound
// to the call. In a command build it is exported but never called.
//
//go:wasmexport skillbox_handle
func handle() int32 {
	main()
	return 0
}
