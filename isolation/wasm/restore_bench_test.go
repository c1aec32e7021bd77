//go:build linux

package wasm

import (
	"testing"

	"golang.org/x/sys/unix"
)

// The two ways to put a linear memory back after a call, measured on the primitive
// alone for an image of the size a small Go reactor has after _initialize (4 MiB),
// with a call that dirtied few or many pages:
//
//	copy:     copy the whole image back (what pool.go did first);
//	compare:  compare chunk by chunk and rewrite only the chunks that differ (what
//	          pool.go does, image.go);
//	madvise:  the memory is a private mapping of a memfd holding the image, and
//	          MADV_DONTNEED drops the call's copy-on-write pages, so the next touch
//	          faults the image's page back in (Wasmtime's pooling allocator on Linux).
//	          The faults the next call pays are counted here by touching the dirtied
//	          pages again after the reset.
func BenchmarkRestore(b *testing.B) {
	const size = 4 << 20
	for _, dirty := range []int{16, 256} { // pages written by the call
		b.Run("copy/dirty="+itoa(dirty), func(b *testing.B) {
			image := make([]byte, size)
			for i := range image {
				image[i] = byte(i)
			}
			mem := make([]byte, size)
			copy(mem, image)
			b.SetBytes(size)
			for b.Loop() {
				touch(mem, dirty)
				copy(mem, image)
			}
		})
		b.Run("compare/dirty="+itoa(dirty), func(b *testing.B) {
			// What pool.go does (memImage): compare each 4 KiB chunk, rewrite those that
			// differ. Half the image's chunks are zeros, as in a small Go reactor's.
			var zero [imageChunk]byte
			image := make([]byte, size)
			for i := range image {
				if (i/imageChunk)%2 == 1 {
					image[i] = byte(i)
				}
			}
			im := takeImage(image, &zero)
			mem := make([]byte, size)
			copy(mem, image)
			b.SetBytes(size)
			for b.Loop() {
				touch(mem, dirty)
				im.restore(mem)
			}
			if mem[4096*3+1] != image[4096*3+1] {
				b.Fatal("the reset did not bring the image back")
			}
		})
		b.Run("madvise/dirty="+itoa(dirty), func(b *testing.B) {
			fd, err := unix.MemfdCreate("skillbox-image", 0)
			if err != nil {
				b.Skip("memfd:", err)
			}
			defer unix.Close(fd)
			image := make([]byte, size)
			for i := range image {
				image[i] = byte(i)
			}
			if _, err := unix.Pwrite(fd, image, 0); err != nil {
				b.Fatal(err)
			}
			mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
			if err != nil {
				b.Fatal(err)
			}
			defer unix.Munmap(mem)
			b.SetBytes(size)
			for b.Loop() {
				touch(mem, dirty)
				if err := unix.Madvise(mem, unix.MADV_DONTNEED); err != nil {
					b.Fatal(err)
				}
			}
			if mem[4096*3+1] != image[4096*3+1] {
				b.Fatal("the reset did not bring the image back")
			}
		})
	}
}

// touch writes one byte in each of n pages spread over mem.
func touch(mem []byte, n int) {
	step := len(mem) / n
	for i := 0; i < n; i++ {
		mem[i*step+1]++
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}
