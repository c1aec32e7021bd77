package wasm

import "github.com/tetratelabs/wazero/experimental"

// callMemory caps one call's linear memory. wazero's own limit is per Runtime, so
// each instantiation gets this allocator through its context instead: a grow past
// the budget returns nil, which wazero turns into memory.grow == -1.
type callMemory struct {
	limit uint64 // bytes
	buf   []byte
	peak  uint64
	hit   bool // a grow was refused

	sized          bool // the initial size was granted
	refusedInitial bool // the module's declared minimum was over the limit
}

// Allocate implements experimental.MemoryAllocator. One call instantiates one
// module, so the allocator is its own single linear memory.
func (m *callMemory) Allocate(capBytes, maxBytes uint64) experimental.LinearMemory {
	// wazero refuses grows past the module's own maximum before asking us, so only
	// the call's budget is checked here.
	capBytes = min(capBytes, maxBytes, m.limit)
	m.buf = make([]byte, 0, capBytes)
	return m
}

// Reallocate implements experimental.LinearMemory. Memory only grows, so bytes
// past the old length are still zero from make.
func (m *callMemory) Reallocate(size uint64) []byte {
	if size > m.limit {
		m.hit = true
		m.refusedInitial = !m.sized
		return nil
	}
	if size > uint64(cap(m.buf)) {
		newCap := max(size, 2*uint64(cap(m.buf)))
		newCap = min(newCap, m.limit)
		nb := make([]byte, size, newCap)
		copy(nb, m.buf)
		m.buf = nb
	} else {
		m.buf = m.buf[:size]
	}
	m.peak = max(m.peak, size)
	m.sized = true
	return m.buf
}

// Free implements experimental.LinearMemory.
func (m *callMemory) Free() { m.buf = nil }
