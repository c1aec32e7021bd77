package audit

import (
	"bytes"
	"errors"
	"testing"
)

// Any byte string either verifies or fails with a ChainError (or a read error); never a
// panic. A flipped byte in a valid log is always caught.
func FuzzVerifyReader(f *testing.F) {
	_, lines := newLog(f, 3)
	var valid []byte
	for _, l := range lines {
		valid = append(valid, l...)
	}
	f.Add(valid, 0)
	f.Add([]byte("{}\n"), 1)
	f.Add([]byte(""), 0)
	f.Fuzz(func(t *testing.T, data []byte, flip int) {
		_, _, err := VerifyReader(bytes.NewReader(data))
		var ce *ChainError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("non-chain error: %v", err)
		}
		if len(valid) > 0 {
			mod := bytes.Clone(valid)
			i := (flip%len(mod) + len(mod)) % len(mod)
			mod[i] ^= 0x20
			if _, _, err := VerifyReader(bytes.NewReader(mod)); err == nil {
				// Flipping the case of a hex digit in "prev"/"hash" or of a letter in a
				// field name must still be detected; nothing in a line is unprotected.
				t.Fatalf("flipped byte %d (%q) not detected", i, valid[i])
			}
		}
	})
}
