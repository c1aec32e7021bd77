package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

// A call that has to wait for its module's compilation (here: a second server over the
// same home, which has not compiled the module yet, as after a restart without a cache)
// reports the wait as Usage.compile_ms and in the details of its invoke.end audit
// record, apart from wall_ms; a call whose module is ready reports none.
func TestCompileTimeReported(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "big", Version: "1.0.0", Module: slowCompileEcho(t, 3000), Body: echoBody}, nil)
	const in = `{"q":"hello"}`
	res, err := f.invoke(ctx, "big", in, nil)
	if err != nil || res.GetOutputJson() != in {
		t.Fatalf("%v %v", res, err)
	}
	if c := res.GetUsage().GetCompileMs(); c != 0 {
		t.Fatalf("compiled at install, yet the call reports compile_ms %d", c)
	}

	f2 := newFixtureAt(t, f.home)
	first, err := f2.invoke(ctx, "big", in, nil)
	if err != nil || first.GetOutputJson() != in {
		t.Fatalf("%v %v", first, err)
	}
	compile := first.GetUsage().GetCompileMs()
	if compile <= 0 {
		t.Fatalf("the first call of an uncompiled module reports compile_ms %d", compile)
	}
	second, err := f2.invoke(ctx, "big", in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := second.GetUsage().GetCompileMs(); c != 0 {
		t.Fatalf("the second call reports compile_ms %d", c)
	}

	byID := map[string]audit.Entry{}
	for _, e := range readAudit(t, f2.eng) {
		if e.Event == audit.EventInvokeEnd {
			byID[e.CallID] = e
		}
	}
	e, ok := byID[first.GetCallId()]
	if !ok {
		t.Fatalf("no invoke.end record for call %s", first.GetCallId())
	}
	// JSON numbers read back as float64.
	if got, ok := e.Details["compileMs"].(float64); !ok || int64(got) != compile {
		t.Fatalf("audit details %v, want compileMs %d", e.Details, compile)
	}
	if e.Usage == nil || e.Usage.WallMS != first.GetUsage().GetWallMs() {
		t.Fatalf("audit usage %+v, reply usage %+v", e.Usage, first.GetUsage())
	}
	if d := byID[second.GetCallId()].Details; d["compileMs"] != nil {
		t.Fatalf("a call that did not wait has audit details %v", d)
	}
}

// slowCompileEcho writes echo.wasm with n more functions that nothing calls, so that
// compiling it takes well over a millisecond (the resolution of compile_ms), and
// returns its path. The functions take the type of _start, () -> ().
func slowCompileEcho(t *testing.T, n int) string {
	t.Helper()
	code, err := os.ReadFile(echoWasm)
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte{}, code[:8]...) // magic and version
	startType := -1
	rest := code[8:]
	for len(rest) > 0 {
		id := rest[0]
		size, k := binary.Uvarint(rest[1:])
		body := rest[1+k : 1+k+int(size)]
		rest = rest[1+k+int(size):]
		switch id {
		case 3: // function section: the types of the module's functions
			count, k := binary.Uvarint(body)
			entries := body[k:]
			startType = int(entries[len(entries)-1]) // echo.wasm's one function is _start
			if count != 1 || startType > 127 {
				t.Fatalf("echo.wasm has %d functions; this helper expects one", count)
			}
			body = binary.AppendUvarint(nil, count+uint64(n))
			body = append(body, entries...)
			body = append(body, bytes.Repeat([]byte{byte(startType)}, n)...)
		case 10: // code section
			count, k := binary.Uvarint(body)
			fns := body[k:]
			body = binary.AppendUvarint(nil, count+uint64(n))
			body = append(body, fns...)
			// Each: no locals; (i32.const i) (i32.const 3) i32.mul drop, 16 times; end.
			var fn []byte
			fn = append(fn, 0) // local declarations
			for i := range 16 {
				fn = append(fn, 0x41, byte(i), 0x41, 3, 0x6c, 0x1a)
			}
			fn = append(fn, 0x0b)
			for range n {
				body = binary.AppendUvarint(body, uint64(len(fn)))
				body = append(body, fn...)
			}
		}
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	if startType < 0 {
		t.Fatal("echo.wasm has no function section")
	}
	path := filepath.Join(t.TempDir(), "big.wasm")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
