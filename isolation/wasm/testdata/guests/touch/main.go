// Command touch is a test guest: it sets a file's times through raw WASI
// (path_filestat_set_times or fd_filestat_set_times) with the flags its input names,
// so that a test can leave a time out or ask for "now", which Go's os.Chtimes cannot.
// It prints the errno the host returned.
package main

import (
	"encoding/json"
	"os"
	"path"
	"unsafe"
)

type input struct {
	Path  string `json:"path"`  // e.g. /data/f.txt
	Via   string `json:"via"`   // "path" (following links) or "fd"
	Atim  int64  `json:"atim"`  // nanoseconds
	Mtim  int64  `json:"mtim"`  // nanoseconds
	Flags uint32 `json:"flags"` // WASI fstflags: 1 atim, 2 atim now, 4 mtim, 8 mtim now
}

//go:wasmimport wasi_snapshot_preview1 path_filestat_set_times
func pathFilestatSetTimes(fd int32, lookup uint32, p unsafe.Pointer, n uint32, atim, mtim int64, flags uint32) uint32

//go:wasmimport wasi_snapshot_preview1 fd_filestat_set_times
func fdFilestatSetTimes(fd int32, atim, mtim int64, flags uint32) uint32

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		os.Stderr.WriteString("bad input: " + err.Error() + "\n")
		os.Exit(2)
	}
	var errno uint32
	switch in.Via {
	case "path":
		dir, err := os.Open(path.Dir(in.Path))
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(2)
		}
		name := []byte(path.Base(in.Path))
		errno = pathFilestatSetTimes(int32(dir.Fd()), 1, unsafe.Pointer(&name[0]), uint32(len(name)), in.Atim, in.Mtim, in.Flags)
		dir.Close()
	case "fd":
		f, err := os.OpenFile(in.Path, os.O_RDWR, 0)
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(2)
		}
		errno = fdFilestatSetTimes(int32(f.Fd()), in.Atim, in.Mtim, in.Flags)
		f.Close()
	default:
		os.Stderr.WriteString("via: path or fd\n")
		os.Exit(2)
	}
	json.NewEncoder(os.Stdout).Encode(map[string]uint32{"errno": errno})
}
