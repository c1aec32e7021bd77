// Package audit is skillbox's tamper-evident audit log: JSON lines, one per event, each
// carrying the sha256 of the previous line (prev) and of its own content (hash), so that
// an edited, dropped, inserted or reordered line breaks the chain at a line Verify names.
//
// Appends are durable before they return (write + fsync). Concurrent appenders share
// fsyncs (group commit): whoever finds no sync running writes every record queued so far
// and syncs once, and everyone whose record was in that batch returns together. Batches
// are written under a file lock and continue from whatever another process appended, so
// a server and a CLI command can share one log. Enqueue adds a record without waiting:
// it rides in the next batch, which any later Append (or Close) writes before its own
// record, so the order of the chain is the order of the calls either way.
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
)

// FileName is the log's file name inside the audit directory ($SKILLBOX_HOME/audit).
const FileName = "audit.jsonl"

// Genesis is the prev of the first line.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Event names. Others may be added; readers must accept unknown events.
const (
	EventInstall      = "install"
	EventApprove      = "approve"
	EventInvokeStart  = "invoke.start"
	EventInvokeEnd    = "invoke.end"
	EventEgressDenied = "egress.denied"
	EventDisable      = "disable"
	EventEnable       = "enable"
	EventReload       = "reload"
	EventVerifyFailed = "verify.failed"
)

// Record is what a caller appends; the log adds Seq, Time, Prev and Hash.
type Record struct {
	Event          string         `json:"event"`
	Caller         string         `json:"caller,omitempty"`
	Skill          string         `json:"skill,omitempty"`
	Version        string         `json:"version,omitempty"`
	ManifestDigest string         `json:"manifestDigest,omitempty"`
	CodeDigest     string         `json:"codeDigest,omitempty"`
	CallID         string         `json:"callId,omitempty"`
	Outcome        string         `json:"outcome,omitempty"` // e.g. ok, denied, error
	Reason         string         `json:"reason,omitempty"`  // machine-readable, e.g. TIMEOUT
	Usage          *Usage         `json:"usage,omitempty"`
	Details        map[string]any `json:"details,omitempty"`
}

// Usage is what one call consumed, as recorded.
type Usage struct {
	WallMS          int64 `json:"wallMs"`
	PeakMemoryBytes int64 `json:"peakMemoryBytes"`
	OutputBytes     int64 `json:"outputBytes"`
	Requests        int   `json:"requests"`
	DeniedRequests  int   `json:"deniedRequests"`
}

// Entry is one line of the log as stored. Field order is the line's byte order.
type Entry struct {
	Seq  uint64 `json:"seq"`
	Time string `json:"time"` // RFC 3339, nanoseconds, UTC
	Record
	Prev string `json:"prev"`
	Hash string `json:"hash"`
}

// unhashed is an Entry without Hash: its JSON encoding is what Hash is taken over.
type unhashed struct {
	Seq  uint64 `json:"seq"`
	Time string `json:"time"`
	Record
	Prev string `json:"prev"`
}

// Log appends to one audit file. It is safe for concurrent use, and several Logs (in
// several processes: a server and a CLI command) may append to the same file: each batch
// is written under an exclusive file lock, after reading any lines another writer added.
type Log struct {
	path string
	f    *os.File

	mu       sync.Mutex
	cond     *sync.Cond
	queue    []*pending // records waiting for the next batch
	enqueued uint64     // tickets handed out
	finished uint64     // tickets whose batch is done (written or failed)
	syncing  bool       // a leader is writing a batch
	err      error      // sticky: once a write fails, every later append fails
	closed   bool

	// The chain's end on disk. Changed only by the leader, under mu.
	seq    uint64 // last line's sequence number
	prev   string // last line's hash
	offset int64  // file size after the last line

	wbuf []byte // the leader's batch buffer, reused; touched only while syncing
}

// MaxRecordBytes bounds one line of the log, newline included. Append and Enqueue
// refuse a bigger record (ErrTooLarge), so every line written can be read back by
// Verify, whose limit is larger. 64 KiB holds any record skillbox itself writes (whose
// free-text fields the engine bounds to a few hundred bytes) with room to spare, including
// an approve record listing a grant of hundreds of origins and paths.
const MaxRecordBytes = 64 << 10

// ErrTooLarge is the error of a record bigger than MaxRecordBytes. The record is not
// written; the log stays usable.
var ErrTooLarge = errors.New("audit record too large")

func tooLarge(op string, n int) error {
	return fmt.Errorf("%s: the record is %d bytes, the limit is %d: %w", op, n, MaxRecordBytes, ErrTooLarge)
}

// maxKeptBuf bounds the batch buffer kept between batches.
const maxKeptBuf = 1 << 20

type pending struct {
	rec  Record
	time string
	id   string
	err  error
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit log closed")

// Open opens (creating if needed) dir/audit.jsonl and continues its chain. A log whose
// last lines do not parse or do not chain is an error: it is never repaired silently.
func Open(dir string) (*Log, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l := &Log{path: path, f: f, prev: Genesis}
	l.cond = sync.NewCond(&l.mu)
	if err := l.resume(); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	// Make the file's directory entry durable too (a new file could vanish on crash).
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return l, nil
}

// Head returns the last durable line's sequence number and hash (0 and Genesis for an
// empty log), as of this Log's last write. Verify cannot see lines cut from the end of
// the log; an operator who keeps the head elsewhere (printed by `audit verify`, shipped
// to a log collector) can.
func (l *Log) Head() (seq uint64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, l.prev
}

// UsageOf converts a sandbox's usage report into its audit form.
func UsageOf(u isolation.Usage) *Usage {
	return &Usage{
		WallMS:          u.Wall.Milliseconds(),
		PeakMemoryBytes: u.PeakMemory,
		OutputBytes:     u.OutputBytes,
		Requests:        u.Requests,
		DeniedRequests:  u.DeniedRequests,
	}
}

// Path is the log file's path.
func (l *Log) Path() string { return l.path }

// resume reads the last two lines and checks them, so a damaged tail is caught at start.
func (l *Log) resume() error {
	if err := lockFile(l.f); err != nil {
		return err
	}
	defer unlockFile(l.f)
	st, err := l.f.Stat()
	if err != nil {
		return err
	}
	seq, prev, err := checkTail(l.f, st.Size())
	if err != nil {
		return err
	}
	l.seq, l.prev, l.offset = seq, prev, st.Size()
	return nil
}

// TornTailError is a log whose end is not a whole line: the bytes after the last newline
// are what a crash in the middle of a write leaves. Open refuses such a log rather than
// repair it silently; Recover moves the torn bytes aside and records that it did.
type TornTailError struct {
	Bytes int64 // length of the torn line
}

func (e *TornTailError) Error() string {
	return fmt.Sprintf("the last %d bytes are a torn line (no newline at the end, as a crash in the middle of a write leaves); "+
		"nothing was changed: run `skillbox audit recover` to move them aside and continue the chain", e.Bytes)
}

// checkTail checks the last two lines of the first size bytes of f and returns the
// chain's end there (0 and Genesis for an empty log).
func checkTail(f *os.File, size int64) (uint64, string, error) {
	if size == 0 {
		return 0, Genesis, nil
	}
	cut, err := lastNewline(f, size)
	if err != nil {
		return 0, "", err
	}
	if cut != size {
		return 0, "", &TornTailError{Bytes: size - cut}
	}
	lines, err := lastLines(f, size, 2)
	if err != nil {
		return 0, "", err
	}
	last := lines[len(lines)-1]
	e, err := parseLine(last)
	if err != nil {
		return 0, "", fmt.Errorf("last line: %w (run `skillbox audit verify`)", err)
	}
	if len(lines) == 2 {
		if want := hashHex(lines[0]); e.Prev != want {
			return 0, "", fmt.Errorf("last line: prev does not match the line before it (run `skillbox audit verify`)")
		}
	} else if e.Prev != Genesis || e.Seq != 1 {
		return 0, "", fmt.Errorf("first line: not the start of a chain")
	}
	return e.Seq, hashHex(last), nil
}

// lastNewline returns the offset just past the last newline in the first size bytes of
// f, or 0 if there is none.
func lastNewline(f *os.File, size int64) (int64, error) {
	const block = 64 << 10
	buf := make([]byte, block)
	for off := size; off > 0; {
		start := max(off-block, 0)
		b := buf[:off-start]
		if _, err := f.ReadAt(b, start); err != nil && err != io.EOF {
			return 0, err
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		off = start
	}
	return 0, nil
}

// lastLines returns up to n last lines (without newlines) of a file of the given size.
// The file must end with a newline: a missing one is a truncated last line.
func lastLines(f *os.File, size int64, n int) ([][]byte, error) {
	const block = 64 << 10
	var tail []byte
	off := size
	for {
		start := max(off-block, 0)
		buf := make([]byte, off-start)
		if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
			return nil, err
		}
		tail = append(buf, tail...)
		off = start
		if tail[len(tail)-1] != '\n' {
			return nil, errors.New("last line is truncated (no newline)")
		}
		// n lines need n+1 newlines to be whole unless the file starts within tail.
		if bytes.Count(tail, []byte{'\n'}) > n || off == 0 {
			break
		}
	}
	parts := bytes.Split(tail[:len(tail)-1], []byte{'\n'})
	if off > 0 {
		parts = parts[1:] // first part may be partial
	}
	if len(parts) > n {
		parts = parts[len(parts)-n:]
	}
	return parts, nil
}

// Append records r and returns its id (the line's sequence number) once the line is on
// disk. A record whose line would be bigger than MaxRecordBytes is refused with
// ErrTooLarge (that record only). An error means the record may not be durable; the caller must treat the action
// as unrecorded (the engine fails the call). After a write error the log refuses all
// further appends. ctx is checked before the record is queued; once queued, Append
// waits for the sync rather than return while the line may still land.
func (l *Log) Append(ctx context.Context, r Record) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("audit append: %w", err)
	}
	if r.Event == "" {
		return "", errors.New("audit append: event is required")
	}
	p := &pending{rec: r, time: time.Now().UTC().Format(time.RFC3339Nano)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return "", ErrClosed
	}
	if l.err != nil {
		return "", l.err
	}
	ticket := l.enqueued
	l.enqueued++
	l.queue = append(l.queue, p)
	for l.finished <= ticket {
		if l.syncing {
			l.cond.Wait()
			continue
		}
		l.flushLocked()
	}
	return p.id, p.err
}

// Enqueue queues r for the next group commit and returns without waiting for it to be
// written. It is for records that a later durable Append always follows (the engine's
// invoke.start, followed by invoke.end): that Append writes r first, in order, and
// fails if r's batch could not be written. Until then r is in memory only, and a crash
// loses it. A nil error means r is queued, not that it is durable. Like Append, Enqueue
// refuses a canceled ctx, a record without an event, a closed log and a log whose
// earlier write failed; it also checks that Details encodes, so that a queued record
// can never fail on its own later with no one to tell.
func (l *Log) Enqueue(ctx context.Context, r Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit enqueue: %w", err)
	}
	if r.Event == "" {
		return errors.New("audit enqueue: event is required")
	}
	p := &pending{rec: r, time: time.Now().UTC().Format(time.RFC3339Nano)}
	// Encoded here with the longest seq its line can have, so that a queued record can
	// fail neither to encode nor on its size once no one is waiting for it.
	body, err := json.Marshal(unhashed{Seq: math.MaxUint64, Time: p.time, Record: r, Prev: Genesis})
	if err != nil {
		return fmt.Errorf("audit enqueue: %w", err)
	}
	if n := len(body) - 1 + hashSuffixLen + 1; n > MaxRecordBytes {
		return tooLarge("audit enqueue", n)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.err != nil {
		return l.err
	}
	l.enqueued++
	l.queue = append(l.queue, p)
	return nil
}

// Flush writes every record queued so far (by Enqueue) and returns once they are on
// disk, or with the write's error.
func (l *Log) Flush(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit flush: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	target := l.enqueued // every ticket handed out so far
	for l.finished < target {
		if l.syncing {
			l.cond.Wait()
			continue
		}
		l.flushLocked()
	}
	return l.err
}

// flushLocked makes the caller the leader: with l.mu released it writes and syncs every
// record queued so far as one batch, then wakes the waiters. Called with l.mu held and
// no leader running.
func (l *Log) flushLocked() {
	batch := l.queue
	l.queue = nil
	if l.err == nil {
		l.syncing = true
		seq, prev, offset := l.seq, l.prev, l.offset
		l.mu.Unlock()
		seq, prev, offset, err := l.writeBatch(batch, seq, prev, offset)
		l.mu.Lock()
		l.syncing = false
		if err != nil {
			l.err = fmt.Errorf("audit log %s unwritable: %w", l.path, err)
		} else {
			l.seq, l.prev, l.offset = seq, prev, offset
		}
	}
	if l.err != nil {
		for _, p := range batch {
			p.id, p.err = "", l.err
		}
	}
	l.finished += uint64(len(batch))
	l.cond.Broadcast()
}

// writeBatch appends the batch under the file lock, first catching up with lines other
// writers appended since this Log last wrote. It returns the new end of the chain.
func (l *Log) writeBatch(batch []*pending, seq uint64, prev string, offset int64) (uint64, string, int64, error) {
	if err := lockFile(l.f); err != nil {
		return seq, prev, offset, err
	}
	defer unlockFile(l.f)
	st, err := l.f.Stat()
	if err != nil {
		return seq, prev, offset, err
	}
	if st.Size() != offset {
		if seq, prev, err = catchUp(l.f, offset, st.Size(), seq, prev); err != nil {
			return seq, prev, offset, err
		}
		offset = st.Size()
	}
	// The batch buffer is the leader's alone (one leader at a time) and kept between
	// batches: at 32 callers this saves a growing allocation per batch.
	buf := l.wbuf[:0]
	defer func() {
		if cap(buf) <= maxKeptBuf {
			l.wbuf = buf[:0]
		}
	}()
	for _, p := range batch {
		start := len(buf)
		var err error
		buf, err = appendEncoded(buf, unhashed{Seq: seq + 1, Time: p.time, Record: p.rec, Prev: prev})
		if err != nil {
			buf = buf[:start]
			p.err = fmt.Errorf("audit append: %w", err) // this record only
			continue
		}
		if n := len(buf) - start; n > MaxRecordBytes {
			buf = buf[:start]
			p.err = tooLarge("audit append", n) // this record only
			continue
		}
		seq++
		prev = hashHex(buf[start : len(buf)-1])
		p.id = strconv.FormatUint(seq, 10)
	}
	if len(buf) == 0 {
		return seq, prev, offset, nil
	}
	if _, err := l.f.Write(buf); err != nil {
		return seq, prev, offset, err
	}
	if err := l.f.Sync(); err != nil {
		return seq, prev, offset, err
	}
	return seq, prev, offset + int64(len(buf)), nil
}

// catchUp reads the lines another writer appended in [from, to) and checks that they
// continue the chain from (seq, prev).
func catchUp(f *os.File, from, to int64, seq uint64, prev string) (uint64, string, error) {
	if to < from {
		return seq, prev, fmt.Errorf("the log shrank from %d to %d bytes under us", from, to)
	}
	buf := make([]byte, to-from)
	if _, err := f.ReadAt(buf, from); err != nil {
		return seq, prev, err
	}
	if buf[len(buf)-1] != '\n' {
		return seq, prev, errors.New("another writer left a truncated line")
	}
	for _, line := range bytes.Split(buf[:len(buf)-1], []byte{'\n'}) {
		e, err := parseLine(line)
		if err != nil {
			return seq, prev, fmt.Errorf("line %d (another writer's): %w", seq+1, err)
		}
		if e.Prev != prev || e.Seq != seq+1 {
			return seq, prev, fmt.Errorf("line %d (another writer's) does not continue the chain", seq+1)
		}
		seq, prev = e.Seq, hashHex(line)
	}
	return seq, prev, nil
}

// Close writes any record still queued, refuses further appends and closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	l.closed = true
	for l.syncing || len(l.queue) > 0 {
		if l.syncing {
			l.cond.Wait()
			continue
		}
		l.flushLocked()
	}
	err := l.err
	l.mu.Unlock()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// encode returns the full line, newline included: the unhashed JSON with the hash of
// exactly those bytes spliced in as the last field.
func encode(u unhashed) ([]byte, error) { return appendEncoded(nil, u) }

// appendEncoded appends encode(u) to dst.
func appendEncoded(dst []byte, u unhashed) ([]byte, error) {
	body, err := json.Marshal(u)
	if err != nil {
		return dst, err
	}
	sum := sha256.Sum256(body)
	dst = append(dst, body[:len(body)-1]...)
	dst = append(dst, `,"hash":"`...)
	dst = hex.AppendEncode(dst, sum[:])
	dst = append(dst, "\"}\n"...)
	return dst, nil
}

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

const hashSuffixLen = len(`,"hash":""}`) + 64

// parseLine checks one line (without newline) on its own: strict JSON and a hash that
// matches its content.
func parseLine(line []byte) (Entry, error) {
	var e Entry
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return e, fmt.Errorf("not a valid audit record: %v", err)
	}
	if dec.More() {
		return e, errors.New("not a valid audit record: trailing data")
	}
	if len(line) < hashSuffixLen || !bytes.HasPrefix(line[len(line)-hashSuffixLen:], []byte(`,"hash":"`)) {
		return e, errors.New("hash is not the last field")
	}
	body := make([]byte, 0, len(line)-hashSuffixLen+1)
	body = append(body, line[:len(line)-hashSuffixLen]...)
	body = append(body, '}')
	if hashHex(body) != e.Hash {
		return e, errors.New("hash does not match the line's content (edited)")
	}
	return e, nil
}
