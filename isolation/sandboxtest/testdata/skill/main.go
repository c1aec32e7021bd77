// Command skill is the contract suite's test skill: one program whose input names a
// behaviour (see sandboxtest.Input). Each sandbox's test builds it in that sandbox's
// form: a WASI module, a static binary in a FROM scratch image, and so on.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// input mirrors sandboxtest.Input.
type input struct {
	Do    string `json:"do"`
	N     int64  `json:"n,omitempty"`
	URL   string `json:"url,omitempty"`
	Count int    `json:"count,omitempty"`
}

// fetched is one request's outcome as the skill saw it.
type fetched struct {
	Status int    `json:"status,omitempty"`
	Body   string `json:"body,omitempty"`
	Error  string `json:"error,omitempty"`
}

// keep holds what alloc allocated, so the collector cannot free it.
var keep [][]byte

func main() {
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(2, "read stdin: %v", err)
	}
	var in input
	if err := json.Unmarshal(raw, &in); err != nil {
		fail(2, "decode input: %v", err)
	}
	switch in.Do {
	case "echo":
		write(os.Stdout, raw)
	case "stdout":
		write(os.Stdout, []byte(strings.Repeat("o", int(in.N))))
	case "stderr":
		write(os.Stderr, []byte(strings.Repeat("e", int(in.N))))
	case "sleep":
		for {
			time.Sleep(time.Hour)
		}
	case "spin":
		for n := 0; ; n++ {
			if n < 0 {
				fmt.Println(n) // never: keeps the loop from being optimised away
			}
		}
	case "fail":
		fail(3, "contract: failing on purpose")
	case "alloc":
		for got := int64(0); got < in.N; got += 1 << 20 {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1 // touch every page, so it is resident
			}
			keep = append(keep, b)
		}
		write(os.Stdout, []byte(fmt.Sprintf(`{"allocated":%d}`, in.N)))
	case "fetch":
		var out []fetched
		for range max(in.Count, 1) {
			out = append(out, fetch(in.URL))
		}
		b, _ := json.Marshal(out)
		write(os.Stdout, b)
	default:
		fail(2, "unknown behaviour %q", in.Do)
	}
}

// write writes all of b or exits 4: a write the sandbox refused ends the skill.
func write(w *os.File, b []byte) {
	if _, err := w.Write(b); err != nil {
		os.Exit(4)
	}
}

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(code)
}
