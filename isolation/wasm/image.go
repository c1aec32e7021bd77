package wasm

import "bytes"

// imageChunk is the unit in which a memory image is kept and compared: a host page.
const imageChunk = 4096

// memImage is a linear memory as it was after _initialize, kept sparse: chunks that
// were all zero are not stored (half of a small Go reactor's 4 MiB are).
//
// restore makes the memory equal to the image byte for byte, whatever the call wrote:
// it compares every chunk and rewrites only those that differ. A call dirties few of
// them (18 of 1,024 for a Go echo), and comparing reads memory where copying reads and
// writes it, so this beats copying the whole image back; it relies on no knowledge of
// what the call wrote (wazero does not say), only on the comparison.
type memImage struct {
	size   int     // bytes
	data   []byte  // the stored chunks, in order
	chunks []int32 // per chunk, its index in data, or -1 for a chunk of zeros
	zero   *[imageChunk]byte
}

// takeImage records mem. zero is an all-zero chunk the restores compare with.
func takeImage(mem []byte, zero *[imageChunk]byte) *memImage {
	n := (len(mem) + imageChunk - 1) / imageChunk
	im := &memImage{size: len(mem), chunks: make([]int32, n), zero: zero}
	stored := 0
	for i := range n {
		if !isZero(chunkOf(mem, i), zero) {
			stored++
		}
	}
	im.data = make([]byte, 0, stored*imageChunk)
	for i := range n {
		c := chunkOf(mem, i)
		if isZero(c, zero) {
			im.chunks[i] = -1
			continue
		}
		im.chunks[i] = int32(len(im.data) / imageChunk)
		im.data = append(im.data, c...)
		im.data = im.data[:len(im.data)+imageChunk-len(c)] // a short last chunk: pad
	}
	return im
}

// restore puts mem back to the image; mem must be as long as the image was. It
// returns how many chunks it rewrote.
func (im *memImage) restore(mem []byte) int {
	written := 0
	for i, at := range im.chunks {
		c := chunkOf(mem, i)
		if at < 0 {
			if !isZero(c, im.zero) {
				clear(c)
				written++
			}
			continue
		}
		want := im.data[int(at)*imageChunk:][:len(c)]
		if !bytes.Equal(c, want) {
			copy(c, want)
			written++
		}
	}
	return written
}

// stored is the bytes the image holds.
func (im *memImage) stored() int { return len(im.data) }

func chunkOf(mem []byte, i int) []byte {
	return mem[i*imageChunk : min((i+1)*imageChunk, len(mem))]
}

func isZero(c []byte, zero *[imageChunk]byte) bool { return bytes.Equal(c, zero[:len(c)]) }
