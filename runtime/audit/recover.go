package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// EventRecovered is the record Recover writes: the first event of the continued chain,
// saying what it found at the end of the log and what it did.
const EventRecovered = "audit.recovered"

// Reasons of an EventRecovered record.
const (
	ReasonTornTail       = "TORN_TAIL"       // a last line without newline, moved aside
	ReasonBadLastLine    = "BAD_LAST_LINE"   // a whole last line that is not a record continuing the chain, moved aside
	ReasonMissingNewline = "MISSING_NEWLINE" // a last record complete but for its newline, which was added
)

// ErrNothingToRecover is Recover's answer for a log whose chain verifies to its end.
var ErrNothingToRecover = errors.New("nothing to recover: the chain verifies to the log's last line")

// ErrInUse is Recover's answer while another process (a running server, or a command
// in progress) has the log open.
var ErrInUse = errors.New("the audit log is open in another skillbox process (a running server?): stop it, then recover")

// Recovery is what Recover did.
type Recovery struct {
	Reason string // ReasonTornTail, ReasonBadLastLine or ReasonMissingNewline
	Line   int    // the line it was about
	Why    string // what was wrong with the line moved aside, in words that follow "line N"
	// For a line moved aside: its length (newline included, if any), sha256 and where
	// its bytes are now.
	Bytes    int64
	SHA256   string
	SideFile string
	Seq      uint64 // the recovery record's sequence number
	Head     string // the chain's head after it (that record's hash)
}

// Recover continues a log whose last line is bad: torn by a crash in the middle of a
// write, or whole but not a record that continues the chain (damaged, or edited). It
// copies that line's bytes to a side file next to the log (durably, first), then
// replaces them with an EventRecovered record naming their length and sha256, so that
// the chain verifies and records why it continues where it does. A last record that
// is complete but for its newline stays: Recover adds the newline and a record saying
// so. Damage before the last line is never repaired: Recover changes nothing and says
// which line (that is tampering or another damage, for `audit verify` to name). by is
// the operator, for the record. Recover refuses with ErrInUse while any other process
// has the log open (a server appending to it would continue the chain from the line
// Recover replaces).
func Recover(dir, by string) (*Recovery, error) {
	return RecoverFile(filepath.Join(dir, FileName), by)
}

// RecoverFile is Recover of the log at path, which need not be a home's: a log kept or
// copied elsewhere. Its directory is locked as Open locks a home's audit directory, and
// the side file is written next to it (PATH.torn-LINE-HASH or PATH.bad-LINE-HASH).
func RecoverFile(path, by string) (*Recovery, error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("audit recover: there is no audit log at %s (is --home or SKILLBOX_HOME right?)", path)
	}
	dirLock, err := lockDir(dir, true)
	if err != nil {
		return nil, fmt.Errorf("audit recover: %w", err)
	}
	defer unlockDir(dirLock)
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
	s, err := scan(io.NewSectionReader(f, 0, size), nil)
	var bad *ChainError
	switch {
	case err == nil:
		return nil, fmt.Errorf("audit recover: %w (%s, %d records)", ErrNothingToRecover, path, s.lines)
	case !errors.As(err, &bad):
		return nil, fmt.Errorf("audit recover: %s: %w", path, err)
	case !bad.Last || s.end+bad.Bytes != size:
		return nil, fmt.Errorf("audit recover: %s: %w; only a bad last line after lines that chain is what a crash leaves, so nothing was changed", path, err)
	}
	rec := &Recovery{Line: bad.Line, Seq: s.seq + 1}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if bad.Whole {
		// The record stays; a newline ends it and a record says why the log changed.
		rec.Reason = ReasonMissingNewline
		line, err := encode(unhashed{Seq: s.seq + 2, Time: now, Record: Record{
			Event: EventRecovered, Caller: by, Outcome: "ok", Reason: ReasonMissingNewline,
			Details: map[string]any{"line": bad.Line},
		}, Prev: hashHex(lastBytes(f, s.end, size))})
		if err != nil {
			return nil, fmt.Errorf("audit recover: %w", err)
		}
		rec.Seq = s.seq + 2
		rec.Head = hashField(line)
		// A crash part way leaves the newline and a torn record: recover again.
		if err := writeSync(f, append([]byte{'\n'}, line...), size, -1); err != nil {
			return nil, err
		}
		return rec, nil
	}
	removed := lastBytes(f, s.end, size)
	sum := sha256.Sum256(removed)
	rec.Bytes, rec.SHA256 = int64(len(removed)), hex.EncodeToString(sum[:])
	kind := "bad"
	rec.Reason, rec.Why = ReasonBadLastLine, bad.Reason
	if bad.Torn {
		kind, rec.Reason, rec.Why = "torn", ReasonTornTail, "is torn (no newline at the end)"
	}
	rec.SideFile = filepath.Join(dir, base+"."+kind+"-"+strconv.Itoa(bad.Line)+"-"+rec.SHA256[:16])
	// The evidence is durable before the log changes.
	if err := writeDurable(rec.SideFile, removed); err != nil {
		return nil, fmt.Errorf("audit recover: keep the line's bytes: %w", err)
	}
	line, err := encode(unhashed{Seq: s.seq + 1, Time: now, Prev: s.prev, Record: Record{
		Event: EventRecovered, Caller: by, Outcome: "ok", Reason: rec.Reason,
		Details: map[string]any{"line": bad.Line, "why": rec.Why, "bytes": rec.Bytes, "sha256": rec.SHA256,
			"sideFile": filepath.Base(rec.SideFile)},
	}})
	if err != nil {
		return nil, fmt.Errorf("audit recover: %w", err)
	}
	rec.Head = hashField(line)
	// Written over the bad line, then cut: a crash in between leaves either the log as
	// it was (recover again) or the record followed by the rest of the bad line (at most
	// one line: it had one newline, at its end), which is again a bad last line whose
	// bytes are all in the side file already.
	if err := writeSync(f, line, s.end, s.end+int64(len(line))); err != nil {
		return nil, err
	}
	return rec, nil
}

// lastBytes reads [from, to) of f; an error leaves it short, which the caller's hash
// then does not match (the file is locked and was just read whole).
func lastBytes(f *os.File, from, to int64) []byte {
	b := make([]byte, to-from)
	n, _ := f.ReadAt(b, from)
	return b[:n]
}

// writeSync writes b at off, truncates the file to size (unless size < 0) and syncs.
func writeSync(f *os.File, b []byte, off, size int64) error {
	if _, err := f.WriteAt(b, off); err != nil {
		return fmt.Errorf("audit recover: %w", err)
	}
	if size >= 0 {
		if err := f.Truncate(size); err != nil {
			return fmt.Errorf("audit recover: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("audit recover: %w", err)
	}
	return nil
}

// hashField is the hash field of an encoded line (newline included).
func hashField(line []byte) string { return string(line[len(line)-3-64 : len(line)-3]) }

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
