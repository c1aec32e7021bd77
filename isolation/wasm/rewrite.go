package wasm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/skillbox-dev/skillbox/manifest"
)

// A reactor's instance is reused for many calls and put back to its state after
// _initialize between them (pool.go). wazero exposes an instance's memory but not
// its unexported globals nor its tables, so before compiling a reactor the module is
// rewritten (rewriteReactor) to give the host what it needs, without changing what
// any of the module's own code does or which indices it uses:
//   - every mutable global is exported as "skillbox.global.<index>";
//   - every table gets a shadow table (appended, so no index moves) and two appended
//     functions copy each table into its shadow ("skillbox.tables_save") and back
//     ("skillbox.tables_restore"); both return 1 instead when a table's size is no
//     longer its declared minimum (it grew: the instance is discarded);
//   - when the module imports wasi fd_fdstat_get, an appended function
//     ("skillbox.fd_probe") calls it for the host, which reads the file table with it
//     after a call: a closed or replaced stdio or preopened descriptor is seen.
//
// The module's own code cannot reach the appended functions, tables or exports: its
// instructions were validated against the original index spaces.
const (
	exportGlobalPrefix = "skillbox.global."
	exportTablesSave   = "skillbox.tables_save"
	exportTablesRest   = "skillbox.tables_restore"
	exportFDProbe      = "skillbox.fd_probe"
)

// reactorPlan is what the rewrite found in a reactor module and added to it.
type reactorPlan struct {
	// globals are the indices of the mutable globals, exported under
	// exportGlobalPrefix.
	globals []uint32
	tables  int  // tables shadowed (0: no table functions were added)
	probe   bool // exportFDProbe was added
	// fdChanges: the module imports a function that can close or move descriptors
	// (fd_close, fd_renumber, sock_accept); the host must probe the file table.
	fdChanges bool
	// unpoolable says why an instance of this module cannot be restored (it then
	// gets a fresh instance per call, as a command does); "" when it can.
	unpoolable string
}

type section struct {
	id      byte
	payload []byte
}

// rewriteReactor returns the module with the exports described above, and the plan.
// A module whose state cannot be captured this way is returned unchanged with a plan
// that says why (plan.unpoolable).
func rewriteReactor(code []byte) ([]byte, *reactorPlan, error) {
	secs, err := splitSections(code)
	if err != nil {
		return nil, nil, err
	}
	plan := &reactorPlan{}
	var (
		typeIdx, funcIdx, tableIdx, exportIdx, codeIdx = -1, -1, -1, -1, -1
		importedFuncs, importedTables, importedGlobals uint32
		fdstatFunc                                     = -1
		fdstatType                                     uint32
		exportNames                                    = map[string]bool{}
		tables                                         []table
	)
	for i, s := range secs {
		r := &reader{b: s.payload}
		switch s.id {
		case 1:
			typeIdx = i
		case 2:
			n := r.u32()
			for k := uint32(0); k < n && r.err == nil; k++ {
				mod, name := r.name(), r.name()
				switch kind := r.byte(); kind {
				case 0:
					t := r.u32()
					if mod == "wasi_snapshot_preview1" {
						switch name {
						case "fd_fdstat_get":
							fdstatFunc, fdstatType = int(importedFuncs), t
						case "fd_close", "fd_renumber", "sock_accept":
							plan.fdChanges = true
						}
					}
					importedFuncs++
				case 1:
					r.byte()
					r.limits()
					importedTables++
				case 2:
					r.limits()
				case 3:
					r.byte()
					r.byte()
					importedGlobals++
				default:
					return nil, nil, fmt.Errorf("import %d: kind %#x is not supported", k, kind)
				}
			}
		case 3:
			funcIdx = i
		case 4:
			tableIdx = i
			n := r.u32()
			for k := uint32(0); k < n && r.err == nil; k++ {
				t := table{ref: r.byte()}
				t.min, t.max, t.hasMax = r.limits()
				tables = append(tables, t)
			}
		case 6:

			n := r.u32()
			for k := uint32(0); k < n && r.err == nil; k++ {
				vt, mut := r.byte(), r.byte()
				r.constExpr()
				if mut == 1 {
					switch vt {
					case 0x7f, 0x7e, 0x7d, 0x7c: // i32 i64 f32 f64
						plan.globals = append(plan.globals, importedGlobals+k)
					default:
						plan.unpoolable = "the module has a mutable vector or reference global"
					}
				}
			}
		case 7:
			exportIdx = i
			n := r.u32()
			for k := uint32(0); k < n && r.err == nil; k++ {
				exportNames[r.name()] = true
				r.byte()
				r.u32()
			}
		case 9:
			n := r.u32()
			for k := uint32(0); k < n && r.err == nil; k++ {
				if passiveElem(r) {
					plan.unpoolable = "the module has a passive element segment"
				}
			}
		case 10:
			codeIdx = i
		case 11:
			n := r.u32()
			for k := uint32(0); k < n && r.err == nil; k++ {
				switch flag := r.u32(); flag {
				case 0:
					r.constExpr()
				case 1:
					plan.unpoolable = "the module has a passive data segment"
				case 2:
					r.u32()
					r.constExpr()
				default:
					return nil, nil, fmt.Errorf("data segment %d: flag %d", k, flag)
				}
				r.skip(int(r.u32()))
			}
		}
		if r.err != nil {
			return nil, nil, fmt.Errorf("section %d: %w", s.id, r.err)
		}
	}
	switch {
	case importedTables > 0:
		plan.unpoolable = "the module imports a table"
	case importedGlobals > 0:
		plan.unpoolable = "the module imports a global"
	case exportIdx < 0 || typeIdx < 0 || funcIdx < 0 || codeIdx < 0:
		plan.unpoolable = "the module defines no functions or exports"
	case plan.fdChanges && fdstatFunc < 0:
		plan.unpoolable = "the module can close file descriptors but does not import fd_fdstat_get to have them checked"
	}
	for _, n := range []string{exportTablesSave, exportTablesRest, exportFDProbe} {
		if exportNames[n] {
			plan.unpoolable = "the module already exports " + strconv.Quote(n)
		}
	}
	if plan.unpoolable != "" {
		return code, plan, nil
	}

	// New exports: globals, then the appended functions.
	exports := reader{b: secs[exportIdx].payload}
	nExports := exports.u32()
	ex := exports.b[exports.off:]
	var added []byte
	addExport := func(name string, kind byte, idx uint32) {
		added = binary.AppendUvarint(added, uint64(len(name)))
		added = append(added, name...)
		added = append(added, kind)
		added = binary.AppendUvarint(added, uint64(idx))
		nExports++
	}
	for _, g := range plan.globals {
		name := exportGlobalPrefix + strconv.FormatUint(uint64(g), 10)
		if exportNames[name] {
			return code, &reactorPlan{unpoolable: "the module already exports " + strconv.Quote(name)}, nil
		}
		addExport(name, 3, g)
	}

	types := reader{b: secs[typeIdx].payload}
	nTypes := types.u32()
	funcs := reader{b: secs[funcIdx].payload}
	nFuncs := funcs.u32()
	bodies := reader{b: secs[codeIdx].payload}
	nBodies := bodies.u32()
	if types.err != nil || funcs.err != nil || bodies.err != nil || nFuncs != nBodies {
		return nil, nil, errors.New("function and code sections disagree")
	}
	var newTypes, newFuncs, newBodies []byte
	appendFunc := func(typ uint32, body []byte) uint32 {
		idx := importedFuncs + nFuncs
		newFuncs = binary.AppendUvarint(newFuncs, uint64(typ))
		full := append([]byte{0}, body...) // no locals
		newBodies = binary.AppendUvarint(newBodies, uint64(len(full)))
		newBodies = append(newBodies, full...)
		nFuncs++
		return idx
	}
	var newTables []byte
	if len(tables) > 0 {
		// type () -> i32
		newTypes = append(newTypes, 0x60, 0, 1, 0x7f)
		voidI32 := nTypes
		nTypes++
		n := uint32(len(tables))
		copyBody := func(restore bool) []byte {
			var b []byte
			for i, t := range tables {
				src, dst := uint32(i), n+uint32(i) // save: table -> shadow
				if restore {
					src, dst = dst, src
				}
				// if (table.size i != min) return 1
				b = append(b, 0xfc, 16)
				b = binary.AppendUvarint(b, uint64(i))
				b = append(b, 0x41)
				b = appendSLEB(b, int64(int32(uint32(t.min))))
				b = append(b, 0x47, 0x04, 0x40, 0x41, 1, 0x0f, 0x0b)
				// table.copy dst src (0, 0, min)
				b = append(b, 0x41, 0, 0x41, 0, 0x41)
				b = appendSLEB(b, int64(int32(uint32(t.min))))
				b = append(b, 0xfc, 14)
				b = binary.AppendUvarint(b, uint64(dst))
				b = binary.AppendUvarint(b, uint64(src))
			}
			return append(b, 0x41, 0, 0x0b)
		}
		addExport(exportTablesSave, 0, appendFunc(voidI32, copyBody(false)))
		addExport(exportTablesRest, 0, appendFunc(voidI32, copyBody(true)))
		for _, t := range tables {
			newTables = append(newTables, t.ref, 1)
			newTables = binary.AppendUvarint(newTables, t.min)
			newTables = binary.AppendUvarint(newTables, t.min)
		}
		plan.tables = len(tables)
	}
	if fdstatFunc >= 0 {
		// (fd, buf) -> errno: call the module's own import of fd_fdstat_get.
		body := []byte{0x20, 0, 0x20, 1, 0x10}
		body = binary.AppendUvarint(body, uint64(fdstatFunc))
		body = append(body, 0x0b)
		addExport(exportFDProbe, 0, appendFunc(fdstatType, body))
		plan.probe = true
	}

	replace := func(i int, count uint32, old reader, extra []byte) {
		p := binary.AppendUvarint(nil, uint64(count))
		p = append(p, old.b[old.off:]...)
		secs[i].payload = append(p, extra...)
	}
	replace(typeIdx, nTypes, types, newTypes)
	replace(funcIdx, nFuncs, funcs, newFuncs)
	replace(codeIdx, nFuncs, bodies, newBodies) // as many bodies as functions
	if len(newTables) > 0 {
		tr := reader{b: secs[tableIdx].payload}
		nt := tr.u32()
		replace(tableIdx, nt+uint32(len(tables)), tr, newTables)
	}
	p := binary.AppendUvarint(nil, uint64(nExports))
	p = append(p, ex...)
	secs[exportIdx].payload = append(p, added...)
	return joinSections(code[:8], secs), plan, nil
}

func splitSections(code []byte) ([]section, error) {
	if len(code) < 8 || !bytes.Equal(code[:4], []byte("\x00asm")) {
		return nil, errors.New("not a WebAssembly module")
	}
	var secs []section
	for off := 8; off < len(code); {
		id := code[off]
		size, n, err := uleb(code[off+1:])
		if err != nil {
			return nil, fmt.Errorf("section at byte %d: %w", off, err)
		}
		start := off + 1 + n
		end := start + int(size)
		if end > len(code) || end < start {
			return nil, fmt.Errorf("section at byte %d runs past the end", off)
		}
		secs = append(secs, section{id: id, payload: code[start:end:end]})
		off = end
	}
	return secs, nil
}

func joinSections(header []byte, secs []section) []byte {
	out := append([]byte(nil), header...)
	for _, s := range secs {
		out = append(out, s.id)
		out = binary.AppendUvarint(out, uint64(len(s.payload)))
		out = append(out, s.payload...)
	}
	return out
}

// passiveElem reads one element segment and reports whether it is passive.
func passiveElem(r *reader) bool {
	flag := r.u32()
	if flag > 7 {
		r.err = fmt.Errorf("element segment flag %d", flag)
		return false
	}
	if flag&2 != 0 && flag&1 == 0 { // explicit table index
		r.u32()
	}
	if flag&1 == 0 { // active: offset
		r.constExpr()
	}
	if flag&3 != 0 { // elemkind or reftype
		r.byte()
	}
	n := r.u32()
	for k := uint32(0); k < n && r.err == nil; k++ {
		if flag&4 != 0 {
			r.constExpr()
		} else {
			r.u32()
		}
	}
	return flag&3 == 1
}

// reader reads the wasm binary format; the first error sticks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(msg string) {
	if r.err == nil {
		r.err = errors.New(msg)
	}
}

func (r *reader) byte() byte {
	if r.err != nil || r.off >= len(r.b) {
		r.fail("cut short")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) u32() uint32 {
	if r.err != nil {
		return 0
	}
	v, n, err := uleb(r.b[r.off:])
	if err != nil {
		r.err = err
		return 0
	}
	r.off += n
	return uint32(v)
}

// sleb skips a signed LEB128 of up to 10 bytes.
func (r *reader) sleb() {
	for i := 0; i < 10; i++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.fail("bad LEB128 number")
}

func (r *reader) skip(n int) {
	if r.err != nil || n < 0 || r.off+n > len(r.b) {
		r.fail("cut short")
		return
	}
	r.off += n
}

func (r *reader) name() string {
	n := int(r.u32())
	if r.err != nil || r.off+n > len(r.b) {
		r.fail("cut short")
		return ""
	}
	s := string(r.b[r.off : r.off+n])
	r.off += n
	return s
}

func (r *reader) limits() (min, max uint64, hasMax bool) {
	flag := r.byte()
	min = uint64(r.u32())
	if flag&1 != 0 {
		max, hasMax = uint64(r.u32()), true
	}
	return
}

// constExpr skips a constant expression up to its end opcode.
func (r *reader) constExpr() {
	for r.err == nil {
		switch op := r.byte(); op {
		case 0x0b:
			return
		case 0x41, 0x42: // i32.const, i64.const
			r.sleb()
		case 0x43:
			r.skip(4)
		case 0x44:
			r.skip(8)
		case 0x23, 0xd2: // global.get, ref.func
			r.u32()
		case 0xd0: // ref.null
			r.byte()
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended constant arithmetic
		case 0xfd: // v128.const
			if r.u32() != 12 {
				r.fail("unsupported vector opcode in a constant expression")
			}
			r.skip(16)
		default:
			r.fail(fmt.Sprintf("opcode %#x in a constant expression", op))
		}
	}
}

// appendSLEB appends v as a signed LEB128.
func appendSLEB(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// The two kinds of module the sandbox runs.
const (
	KindCommand = manifest.WasmCommand // a WASI command: _start, a fresh instance per call
	KindReactor = manifest.WasmReactor // a WASI reactor: _initialize once, skillbox_handle per call
)

// KindOf says from a module's exports which kind it is: a command exports _start, a
// reactor _initialize and skillbox_handle (and no _start).
func KindOf(code []byte) (string, error) {
	secs, err := splitSections(code)
	if err != nil {
		return "", err
	}
	names := map[string]bool{}
	for _, s := range secs {
		if s.id != 7 {
			continue
		}
		r := &reader{b: s.payload}
		n := r.u32()
		for k := uint32(0); k < n && r.err == nil; k++ {
			name := r.name()
			if r.byte() == 0 {
				names[name] = true
			}
			r.u32()
		}
		if r.err != nil {
			return "", fmt.Errorf("export section: %w", r.err)
		}
	}
	switch {
	case names["_start"]:
		return KindCommand, nil
	case names[exportInitialize] && names[exportHandle]:
		return KindReactor, nil
	case names[exportInitialize]:
		return "", fmt.Errorf("module exports _initialize but not %s: a reactor must export its handler", exportHandle)
	}
	return "", errors.New("module exports no _start: not a WASI command (nor a reactor: no _initialize and " + exportHandle + ")")
}
