// Command leak is a Go reactor that reports the state it finds at the start of each
// call and then changes it: a package variable, a map, goroutines, a file left open
// and grown memory. A plainly reused instance shows every change to the next call; a
// reset (or discarded) instance shows none.
package main

import (
	"encoding/json"
	"io"
	"os"
	"runtime"
	"time"
)

type input struct {
	Do   string `json:"do"`
	Path string `json:"path,omitempty"`
	FD   int    `json:"fd,omitempty"`
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
}

var (
	counter int
	seen    = map[int]bool{}
	ticks   int64
	files   []*os.File
	grown   [][]byte
)

func main() {}

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
	case "probefd":
		var st [1]byte
		f := os.NewFile(uintptr(in.FD), "probe")
		_, err := f.Read(st[:])
		rep.FDOpen = err == nil || err == io.EOF
		files = append(files, f) // never closed: a finalizer would close the descriptor
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
