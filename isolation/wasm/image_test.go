package wasm

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// The restore brings back every byte of the image, whatever the call wrote: in zero
// chunks and stored ones, at chunk edges and in a short last chunk; chunks left alone
// are not rewritten.
func TestMemImageRestore(t *testing.T) {
	var zero [imageChunk]byte
	r := rand.New(rand.NewPCG(16, 16))
	for _, size := range []int{0, 24, imageChunk, 3*imageChunk + 100, 64 << 10} {
		orig := make([]byte, size)
		for i := 0; i < size; i += imageChunk {
			if (i/imageChunk)%2 == 1 { // every other chunk has data, at its ends too
				c := chunkOf(orig, i/imageChunk)
				c[0], c[len(c)-1] = 1, byte(r.Uint32())|1
				c[len(c)/2] = 7
			}
		}
		im := takeImage(orig, &zero)
		mem := bytes.Clone(orig)
		if n := im.restore(mem); n != 0 || !bytes.Equal(mem, orig) {
			t.Fatalf("size %d: an untouched memory: %d chunks rewritten", size, n)
		}
		for trial := range 50 {
			dirty := map[int]bool{}
			for range r.IntN(6) + 1 {
				if size == 0 {
					break
				}
				at := r.IntN(size)
				if trial%5 == 0 { // chunk edges
					at = min(size-1, (at/imageChunk)*imageChunk+imageChunk*(r.IntN(2))-r.IntN(2))
					at = max(at, 0)
				}
				mem[at] ^= byte(r.IntN(255) + 1)
				dirty[at/imageChunk] = true
			}
			n := im.restore(mem)
			if !bytes.Equal(mem, orig) {
				t.Fatalf("size %d trial %d: memory differs from the image after restore", size, trial)
			}
			if n != len(dirty) {
				t.Fatalf("size %d trial %d: %d chunks rewritten, %d dirtied", size, trial, n, len(dirty))
			}
		}
		// A call that overwrote everything.
		for i := range mem {
			mem[i] = 0xAA
		}
		im.restore(mem)
		if !bytes.Equal(mem, orig) {
			t.Fatalf("size %d: after a full overwrite the memory differs", size)
		}
		if want := (size / imageChunk / 2) * imageChunk; size%imageChunk == 0 && im.stored() != want {
			t.Fatalf("size %d: image stores %d bytes, want %d (the non-zero chunks)", size, im.stored(), want)
		}
	}
}
