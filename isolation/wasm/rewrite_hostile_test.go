package wasm_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/skillbox-dev/skillbox/isolation"
)

// withSection returns the module with the payload of its section id replaced.
func withSection(tb testing.TB, code []byte, id byte, payload []byte) []byte {
	tb.Helper()
	out := append([]byte(nil), code[:8]...)
	found := false
	for off := 8; off < len(code); {
		sid := code[off]
		size, n := binary.Uvarint(code[off+1:])
		start := off + 1 + n
		end := start + int(size)
		p := code[start:end]
		if sid == id {
			p, found = payload, true
		}
		out = append(out, sid)
		out = binary.AppendUvarint(out, uint64(len(p)))
		out = append(out, p...)
		off = end
	}
	if !found {
		tb.Fatalf("no section %d", id)
	}
	return out
}

// hostileSkill writes code as a module in a fresh directory.
func hostileSkill(tb testing.TB, code []byte) isolation.Skill {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "m.wasm"), code, 0o644); err != nil {
		tb.Fatal(err)
	}
	return skillAt(tb, dir, "m.wasm")
}

// A mutable global hidden from the rewrite by an encoding wazero accepts: global 0 is a
// funcref initialised by ref.null whose type index is the 5-byte LEB128 80 fd 8c 80 00.
// Read as one byte after ref.null, the rest is v128.const's prefix and 12, whose 16
// bytes of "immediate" swallow the mutable i32 global 1 and the start of global 2 (a
// v128 whose constant bytes then read as two harmless globals). Unnoticed, global 1
// would not be exported nor set back, and each call would see the one before it.
func TestReactorHiddenGlobal(t *testing.T) {
	base, err := os.ReadFile(filepath.Join("testdata", "rxhidden.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	globals := []byte{3,
		0x70, 0x00, 0xd0, 0x80, 0xfd, 0x8c, 0x80, 0x00, 0x0b, // funcref = ref.null (type 212608)
		0x7f, 0x01, 0x41, 0x00, 0x0b, // (mut i32) = 0: the state
		0x7b, 0x00, 0xfd, 0x0c, // v128.const ...
		0, 0, 0, 0, 0, 0, 0x0b, 0x7f, 0x00, 0x0b, 0x7f, 0x00, 0x0b, 0, 0, 0,
		0x0b}
	code := withSection(t, base, 6, globals)
	if bytes.Equal(code, base) {
		t.Fatal("section not replaced")
	}
	// The base module (the same state, encoded plainly) is pooled and reset; reused
	// without the reset it shows the leak, so the outputs below can see one.
	plain := pooledCall(watSkill(t, "rxhidden"), "{}")
	resetAndControl(t, []isolation.Call{plain, plain, plain}, allEqual)

	call := pooledCall(hostileSkill(t, code), "{}")
	sb := newSandbox(t)
	var outs []string
	for i := 0; i < 3; i++ {
		res, err := sb.Run(t.Context(), call)
		if err != nil {
			var ie *isolation.Error
			if errors.As(err, &ie) && ie.Reason == isolation.ReasonInvalidModule {
				t.Logf("refused as a module: %v", err)
				return // refusing the module is a safe answer too
			}
			t.Fatalf("call %d: %v", i, err)
		}
		outs = append(outs, string(res.Output))
	}
	if err := allEqual(outs); err != nil {
		t.Fatalf("state crossed calls: %v (outputs %q)", err, outs)
	}
	if outs[0] != "0" {
		t.Fatalf("first call saw %q, want 0", outs[0])
	}
}

// A table section that the table cap read differently from wazero: 63 00 00 (a typed
// reference table, as the cap once read it: ref byte 0x63, flags 0, min 0) was
// rewritten as 63 01 00 <max>, which wazero reads as a (ref null 1) table with no
// maximum, so table.grow went past MaxTableEntries, outside any budget. The grown-in
// value is the table's own entry 0 (table.get), of the table's type.
func TestTypedTableKeepsItsCap(t *testing.T) {
	base, err := os.ReadFile(filepath.Join("testdata", "typedtable.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	code := withSection(t, base, 4, []byte{1, 0x63, 0x00, 0x00})
	sb := newSandbox(t)
	res, err := sb.Run(t.Context(), isolation.Call{ID: "typed", Skill: hostileSkill(t, code), Input: []byte("{}"), Limits: limits()})
	if err != nil {
		requireReason(t, err, isolation.ReasonInvalidModule)
		t.Logf("refused: %v", err)
		return
	}
	if string(res.Output) != "refused" {
		t.Fatalf("the table grew past MaxTableEntries: %q", res.Output)
	}
}
