// Command probe is a test guest: it does one operation named by its input and
// reports what happened as JSON, so tests can see what the sandbox allowed.
package main

import (
	"encoding/json"
	"os"
	"strconv"
	"time"
)

//go:wasmimport wasi_snapshot_preview1 fd_renumber
//go:noescape
func fdRenumber(fd, to int32) uint32

type input struct {
	Op   string `json:"op"`
	Path string `json:"path"`
	Data string `json:"data"`
}

type output struct {
	OK    bool     `json:"ok"`
	Data  string   `json:"data,omitempty"`
	Error string   `json:"error,omitempty"`
	Env   []string `json:"env"`
	Args  []string `json:"args"`
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		os.Stderr.WriteString("bad input: " + err.Error() + "\n")
		os.Exit(2)
	}
	out := output{OK: true, Env: os.Environ(), Args: os.Args}
	var err error
	switch in.Op {
	case "read":
		var b []byte
		b, err = os.ReadFile(in.Path)
		out.Data = string(b)
	case "write":
		err = os.WriteFile(in.Path, []byte(in.Data), 0o644)
	case "truncate":
		// Read rights plus O_TRUNC: a read-only mount must refuse it.
		var f *os.File
		if f, err = os.OpenFile(in.Path, os.O_RDONLY|os.O_TRUNC, 0); err == nil {
			f.Close()
		}
	case "create":
		// Read rights plus O_CREATE: a read-only mount must refuse it.
		var f *os.File
		if f, err = os.OpenFile(in.Path, os.O_RDONLY|os.O_CREATE, 0o644); err == nil {
			f.Close()
		}
	case "list":
		var es []os.DirEntry
		es, err = os.ReadDir(in.Path)
		for _, e := range es {
			out.Data += e.Name() + "\n"
		}
	case "hog":
		var keep [][]byte
		for {
			keep = append(keep, make([]byte, 1<<20))
		}
	case "sleep":
		// Go's time.Sleep is WASI poll_oneoff with a clock subscription.
		var d time.Duration
		if d, err = time.ParseDuration(in.Data); err == nil {
			time.Sleep(d)
		}
	case "renumber":
		// Raw WASI fd_renumber of a file just opened to the descriptor Data names.
		var f *os.File
		var to int
		if f, err = os.Open(in.Path); err == nil {
			if to, err = strconv.Atoi(in.Data); err == nil {
				out.Data = strconv.FormatUint(uint64(fdRenumber(int32(f.Fd()), int32(to))), 10)
			}
		}
	case "openmany":
		// Open the file Path Data times without closing any; Data reports how many
		// opened.
		var n int
		if n, err = strconv.Atoi(in.Data); err == nil {
			var keep []*os.File
			for len(keep) < n {
				var f *os.File
				if f, err = os.Open(in.Path); err != nil {
					break
				}
				keep = append(keep, f)
			}
			out.Data = strconv.Itoa(len(keep))
		}
	case "env":
	}
	if err != nil {
		out.OK, out.Error = false, err.Error()
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
