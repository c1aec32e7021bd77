package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// EventRecovered is the record Recover writes after moving a torn tail aside: the first
// event of the continued chain, carrying the torn bytes' length, sha256 and side file.
const EventRecovered = "audit.recovered"

// ReasonTornTail is the reason of an EventRecovered record.
const ReasonTornTail = "TORN_TAIL"

// ErrNoTornTail is Recover's answer for a log that ends with a whole line.
var ErrNoTornTail = errors.New("nothing to recover: the log ends with a whole line")

// Recovery is what Recover did.
type Recovery struct {
	TornBytes  int64  // length of the torn line moved aside
	TornSHA256 string // its sha256, hex, as recorded
	SideFile   string // where the torn bytes are now
	Seq        uint64 // the recovery record's sequence number
	Head       string // the chain's head after it (that record's hash)
}

// Recover continues a log whose last line is torn (see TornTailError): it copies the
// bytes after the last newline to a side file next to the log (durably, first), then
// replaces them with an EventRecovered record naming their length and sha256, so that
// the chain verifies and records why it continues where it does. Only a torn tail is
// repaired: if the whole lines before it do not chain, Recover changes nothing and
// says so (that is tampering or another damage, for `audit verify` to name). by is
// the operator, for the record. It holds the log's file lock; a running server keeps
// its own, so stop the server first (it refuses to start on a torn tail anyway).
func Recover(dir, by string) (*Recovery, error) {
	path := filepath.Join(dir, FileName)
	// Not O_APPEND: the record is written at the cut with WriteAt.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("audit recover: %w", err)
	}
	defer f.Close()
	if err := lockFile(f); err != nil {
		return nil, fmt.Errorf("audit recover: %w", err)
	}
	defer unlockFile(f)
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit recover: %w", err)
	}
	size := st.Size()
	cut, err := lastNewline(f, size)
	if err != nil {
		return nil, fmt.Errorf("audit recover: %s: %w", path, err)
	}
	if cut == size {
		return nil, fmt.Errorf("audit recover: %s: %w", path, ErrNoTornTail)
	}
	seq, prev, err := checkTail(f, cut)
	if err != nil {
		return nil, fmt.Errorf("audit recover: %s: the whole lines before the torn tail do not verify either, so this is not only a torn write; nothing was changed: %w", path, err)
	}
	torn := make([]byte, size-cut)
	if _, err := f.ReadAt(torn, cut); err != nil {
		return nil, fmt.Errorf("audit recover: %w", err)
	}
	sum := sha256.Sum256(torn)
	sumHex := hex.EncodeToString(sum[:])
	side := filepath.Join(dir, FileName+".torn-"+strconv.FormatUint(seq+1, 10)+"-"+sumHex[:16])
	// The evidence is durable before the log changes.
	if err := writeDurable(side, torn); err != nil {
		return nil, fmt.Errorf("audit recover: keep the torn bytes: %w", err)
	}
	line, err := encode(unhashed{Seq: seq + 1, Time: time.Now().UTC().Format(time.RFC3339Nano), Prev: prev, Record: Record{
		Event: EventRecovered, Caller: by, Outcome: "ok", Reason: ReasonTornTail,
		Details: map[string]any{"tornBytes": len(torn), "tornSha256": sumHex, "sideFile": filepath.Base(side)},
	}})
	if err != nil {
		return nil, fmt.Errorf("audit recover: %w", err)
	}
	// Written over the torn bytes, then cut: a crash in between leaves either the
	// torn log (recover again) or the record followed by a rest of the torn bytes,
	// which is again a torn tail whose bytes are all in the side file already.
	if _, err := f.WriteAt(line, cut); err != nil {
		return nil, fmt.Errorf("audit recover: %w", err)
	}
	if err := f.Truncate(cut + int64(len(line))); err != nil {
		return nil, fmt.Errorf("audit recover: %w", err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("audit recover: %w", err)
	}
	return &Recovery{TornBytes: int64(len(torn)), TornSHA256: sumHex, SideFile: side,
		Seq: seq + 1, Head: hashHex(line[:len(line)-1])}, nil
}

// writeDurable writes b to path (mode 0600) and syncs the file and its directory.
func writeDurable(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
