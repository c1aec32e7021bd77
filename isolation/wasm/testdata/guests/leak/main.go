// Command leak is a Go reactor that reports the state it finds at the start of each
// call and then changes it: a package variable, a map, goroutines, a file left open,
// a directory's cached listing and grown memory. A plainly reused instance shows every change to the next call; a
// reset (or discarded) instance shows none.
package main

import (
	"encoding/json"
	"io"
	"os"
	"runtime"
	"time"
	"unsafe"
)

type input struct {
	Do     string `json:"do"`
	Path   string `json:"path,omitempty"`
	FD     int    `json:"fd,omitempty"`
	Cookie uint64 `json:"cookie,omitempty"`
}

type report struct {
	Counter    int   `json:"counter"`
	Map        int   `json:"map"`
	Goroutines int   `json:"goroutines"`
	Ticks      int64 `json:"ticks"`
	Files      int   `json:"files"`
	Grown      int   `json:"grown"`
	FD         int   `json:"fd,omitempty"`     // the descriptor "open" left open
	FDOpen     bool  `json:"fdOpen,omitempty"` // "probefd": the descriptor is open
	// "list": fd_readdir of descriptor FD from Cookie, raw (os.ReadDir opens a new
	// descriptor and starts at 0): the names, or the errno.
	Names []string `json:"names,omitempty"`
	Errno uint32   `json:"errno,omitempty"`
	Data  string   `json:"data,omitempty"` // "read": the file Path holds
}

//go:wasmimport wasi_snapshot_preview1 fd_readdir
//go:noescape
func fdReaddir(fd int32, buf unsafe.Pointer, bufLen uint32, cookie uint64, used unsafe.Pointer) uint32

// list reads the entries of directory fd from cookie, as wasi-libc's readdir does
// after a seekdir: a dirent is d_next u64, d_ino u64, d_namlen u32, d_type u8 and
// padding (24 bytes), then the name.
func list(fd int, cookie uint64) ([]string, uint32) {
	buf := make([]byte, 4096)
	var used uint32
	if e := fdReaddir(int32(fd), unsafe.Pointer(&buf[0]), uint32(len(buf)), cookie, unsafe.Pointer(&used)); e != 0 {
		return nil, e
	}
	var names []string
	for off := uint32(0); off+24 <= used; {
		n := uint32(buf[off+16]) | uint32(buf[off+17])<<8 | uint32(buf[off+18])<<16 | uint32(buf[off+19])<<24
		if off+24+n > used {
			break
		}
		names = append(names, string(buf[off+24:off+24+n]))
		off += 24 + n
	}
	return names, 0
}

var (
	counter int
	seen    = map[int]bool{}
	ticks   int64
	files   []*os.File
	grown   [][]byte
)

func main() {}

// init lists the directory LEAK_INIT_LIST names, if any, as a reactor's
// _initialize may (TestReactorInitListingNotPooled).
func init() {
	if d := os.Getenv("LEAK_INIT_LIST"); d != "" {
		os.ReadDir(d)
	}
}

//go:wasmexport skillbox_handle
func handle() int32 {
	raw, _ := io.ReadAll(os.Stdin)
	var in input
	if err := json.Unmarshal(raw, &in); err != nil {
		os.Stderr.WriteString("bad input\n")
		return 2
	}
	// Let goroutines a previous call left behind run a little, as they would.
	time.Sleep(5 * time.Millisecond)
	rep := report{Counter: counter, Map: len(seen), Goroutines: runtime.NumGoroutine(), Ticks: ticks, Files: len(files), Grown: len(grown)}
	counter++
	seen[len(seen)] = true
	switch in.Do {
	case "goroutine":
		go func() {
			for {
				ticks++
				time.Sleep(time.Millisecond)
			}
		}()
	case "open":
		f, err := os.Open(in.Path)
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			return 3
		}
		files = append(files, f)
		rep.FD = int(f.Fd())
	case "read":
		b, err := os.ReadFile(in.Path)
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			return 3
		}
		rep.Data = string(b)
	case "probefd":
		var st [1]byte
		f := os.NewFile(uintptr(in.FD), "probe")
		_, err := f.Read(st[:])
		rep.FDOpen = err == nil || err == io.EOF
		files = append(files, f) // never closed: a finalizer would close the descriptor
	case "list":
		// Write (and remove) the file named by Path around the listing, so the names
		// a listing saw include one that is gone when it ends.
		if in.Path != "" {
			if err := os.WriteFile(in.Path, nil, 0o644); err != nil {
				os.Stderr.WriteString(err.Error() + "\n")
				return 3
			}
		}
		rep.Names, rep.Errno = list(in.FD, in.Cookie)
		if in.Path != "" {
			os.Remove(in.Path)
		}
	case "grow":
		grown = append(grown, make([]byte, 8<<20))
	case "exit":
		os.Exit(7)
	case "closestdout":
		b, _ := json.Marshal(rep)
		os.Stdout.Write(b)
		os.Stdout.Close()
		return 0
	case "sleep":
		for {
			time.Sleep(time.Hour)
		}
	}
	b, _ := json.Marshal(rep)
	os.Stdout.Write(b)
	return 0
}
