package wasm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxTableEntries bounds the table entries one instance may hold, all tables together.
// wazero caps linear memory but not tables: a table without a declared maximum can be
// grown (table.grow) to 2^32-1 entries of 8 host bytes each, outside any budget. So
// before compiling, every table gets a maximum that keeps the total within this bound
// (1 Mi entries, 8 MiB), and a module whose tables start larger is refused.
const MaxTableEntries = 1 << 20

// capTables returns code with a maximum on every table (see MaxTableEntries). Only the
// table section changes; the module's digest is checked on the original bytes.
func capTables(code []byte) ([]byte, error) {
	if len(code) < 8 || !bytes.Equal(code[:4], []byte("\x00asm")) {
		return nil, errors.New("not a WebAssembly module")
	}
	off := 8
	for off < len(code) {
		start := off
		id := code[off]
		off++
		size, n, err := uleb(code[off:])
		if err != nil {
			return nil, fmt.Errorf("section at byte %d: %w", start, err)
		}
		off += n
		end := off + int(size)
		if end > len(code) || end < off {
			return nil, fmt.Errorf("section at byte %d runs past the end", start)
		}
		if id == 4 { // the table section
			payload, err := capTableSection(code[off:end])
			if err != nil {
				return nil, err
			}
			out := make([]byte, 0, len(code)+16)
			out = append(out, code[:start]...)
			out = append(out, 4)
			out = binary.AppendUvarint(out, uint64(len(payload)))
			out = append(out, payload...)
			return append(out, code[end:]...), nil
		}
		off = end
	}
	return code, nil
}

// The reference types a table, an element segment or ref.null may name in one byte.
const (
	refFunc   = 0x70
	refExtern = 0x6f
	refExn    = 0x69
)

type table struct {
	ref      byte
	min, max uint64
	hasMax   bool
}

func capTableSection(p []byte) ([]byte, error) {
	count, n, err := uleb(p)
	if err != nil {
		return nil, fmt.Errorf("table section: %w", err)
	}
	p = p[n:]
	if count > 1024 {
		return nil, fmt.Errorf("table section declares %d tables", count)
	}
	tables := make([]table, count)
	var initial uint64
	for i := range tables {
		if len(p) < 2 {
			return nil, errors.New("table section is cut short")
		}
		t := table{ref: p[0]}
		flag := p[1]
		p = p[2:]
		if t.ref != refFunc && t.ref != refExtern {
			// A typed reference (0x63, 0x64 and a heap type) or a table with an
			// initialiser (0x40) is longer than one byte: read as one, the rest would be
			// taken for the limits, and the table rewritten without a maximum.
			return nil, fmt.Errorf("table %d: element type %#x is not supported (only funcref and externref tables)", i, t.ref)
		}
		if flag > 1 {
			return nil, fmt.Errorf("table %d: limits flag %#x (shared or 64-bit tables) is not supported", i, flag)
		}
		if t.min, n, err = uleb(p); err != nil {
			return nil, fmt.Errorf("table %d: %w", i, err)
		}
		p = p[n:]
		if flag == 1 {
			if t.max, n, err = uleb(p); err != nil {
				return nil, fmt.Errorf("table %d: %w", i, err)
			}
			p = p[n:]
			t.hasMax = true
		}
		initial += t.min
		tables[i] = t
	}
	if len(p) != 0 {
		return nil, errors.New("table section has trailing bytes")
	}
	if initial > MaxTableEntries {
		return nil, fmt.Errorf("tables declare %d entries; at most %d are allowed", initial, MaxTableEntries)
	}
	// The room left is shared evenly, so that all tables grown to their maximum still
	// fit in MaxTableEntries.
	room := (MaxTableEntries - initial) / uint64(max(len(tables), 1))
	out := binary.AppendUvarint(nil, count)
	for _, t := range tables {
		limit := t.min + room
		if t.hasMax && t.max < limit {
			limit = t.max
		}
		out = append(out, t.ref, 1)
		out = binary.AppendUvarint(out, t.min)
		out = binary.AppendUvarint(out, limit)
	}
	return out, nil
}

// uleb reads an unsigned LEB128 of at most 32 bits, as the wasm binary format uses
// for sizes and limits.
func uleb(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < 5 && i < len(b); i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if v > 1<<32-1 {
				return 0, 0, errors.New("number out of range")
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, errors.New("bad LEB128 number")
}
