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

// Dir is home's audit directory, the one Open and Recover take.
func Dir(home string) string { return filepath.Join(home, "audit") }

// Genesis is the prev of the first line.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Event names. Others may be added; readers must accept unknown events.
const (
	EventInstall      = "install"
	EventApprove      = "approve"
	EventInvokeStart  = "invoke.start"
	EventInvokeEnd    = "invoke.end"
	EventEgressDenied = "egress.denied"
	EventEgressSecret = "egress.secret" // a request that carried brokered secrets (by name)
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
	path    string
	f       *os.File
	dirLock *os.File // shared lock on the directory, held while open (see lockDir)

	mu       sync.Mutex
	cond     *sync.Cond
	queue    []*pending // records waiting for the next batch
	spare    []*pending // the last batch's slice, emptied: the next queue
	enqueued uint64     // tickets handed out
	finished uint64     // tickets whose batch is done (written or failed)
	syncing  bool       // a leader is writing a batch
	err      error      // sticky: once a write fails, every later append fails
	closed   bool

	// The chain's end on disk. Changed only by the leader, under mu.
	tip    tip
	offset int64 // file size after the last line

	wbuf []byte // the leader's batch buffer, reused; touched only while syncing

	// Commit delay (WithCommitDelay). waiters counts the durable appends in the queue,
	// lastWaiters those of the last batch; while a leader lingers, lingerFor is the
	// count it waits for, more wakes it when that many are queued, and arrived is when
	// the linger began or the last durable append joined it.
	delay       time.Duration
	waiters     int
	lastWaiters int
	lingerFor   int
	more        chan struct{}
	timer       *time.Timer
	arrived     time.Time

	observe func(time.Duration, error) // WithObserver; nil if none
}

// Option configures Open.
type Option func(*Log)

// lingerGap ends a commit delay early: a leader that saw no new durable append for this
// long stops waiting for more. A variable only so that a test can lengthen it.
var lingerGap = time.Millisecond

// WithCommitDelay lets a batch wait up to max for more records before it is written,
// so that concurrent calls share one fsync instead of a few each. A batch waits only
// when the last batch held more than one durable append, only until as many are queued
// again, and never more than a millisecond without a new one arriving: a lone appender
// never waits, and a burst that ends costs at most a millisecond. Every Append still
// returns only once its line is synced. Zero (the default) never waits.
func WithCommitDelay(max time.Duration) Option {
	return func(l *Log) { l.delay = max }
}

// WithObserver has every Append report how long it took (queueing, writing and
// syncing) and its error, if any: the engine's audit metrics.
func WithObserver(observe func(d time.Duration, err error)) Option {
	return func(l *Log) { l.observe = observe }
}

// tip is the end of a chain: its last line's sequence number, sha256 (the next line's
// prev) and hash field (the head an operator reads in the file).
type tip struct {
	seq        uint64
	prev, head string
}

// genesis is the tip of an empty log.
var genesis = tip{prev: Genesis, head: Genesis}

// next is the tip after line, a good line whose record is e.
func next(e Entry, line []byte) tip { return tip{seq: e.Seq, prev: hashHex(line), head: e.Hash} }

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

// pending is one record on its way to the file. Its body is encoded by the appender,
// outside the lock; the leader only numbers, chains and hashes it.
type pending struct {
	body     []byte // appendBody of the record
	detached bool   // enqueued: no one waits for it, so the leader recycles it
	seq      uint64 // the line's sequence number, once written
	err      error
}

// pendings recycles pending records and their body buffers: two per call on the
// engine's path.
var pendings = sync.Pool{New: func() any { return &pending{body: make([]byte, 0, 512)} }}

// maxKeptBody bounds the body buffer a recycled pending keeps.
const maxKeptBody = 4 << 10

// newPending encodes r, stamped now, into a pending record.
func newPending(r *Record) (*pending, error) {
	p := pendings.Get().(*pending)
	body, err := appendBodyAt(p.body[:0], time.Now(), r)
	p.body = body
	if err != nil {
		freePending(p)
		return nil, err
	}
	return p, nil
}

func freePending(p *pending) {
	if cap(p.body) > maxKeptBody {
		return
	}
	*p = pending{body: p.body[:0]}
	pendings.Put(p)
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit log closed")

// Open opens (creating if needed) dir/audit.jsonl and continues its chain. A log whose
// last lines do not parse or do not chain is an error: it is never repaired silently.
func Open(dir string, opts ...Option) (*Log, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	dirLock, err := lockDir(dir, false)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		unlockDir(dirLock)
		return nil, fmt.Errorf("audit log: %w", err)
	}
	l := &Log{path: path, f: f, dirLock: dirLock, tip: genesis}
	for _, o := range opts {
		o(l)
	}
	l.cond = sync.NewCond(&l.mu)
	if err := l.resume(); err != nil {
		f.Close()
		unlockDir(dirLock)
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	// Make the file's directory entry durable too (a new file could vanish on crash).
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return l, nil
}

// Head returns the last durable line's sequence number and hash field (0 and Genesis
// for an empty log), as of this Log's last write: the head `audit verify` prints.
// Verify cannot see lines cut from the end of the log; an operator who keeps the head
// elsewhere (shipped to a log collector) can.
func (l *Log) Head() (seq uint64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tip.seq, l.tip.head
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
	t, err := checkTail(l.f, st.Size())
	if err != nil {
		return err
	}
	l.tip, l.offset = t, st.Size()
	return nil
}

// checkTail checks the last lines of the first size bytes of f and returns the
// chain's end there (0 and Genesis for an empty log). A bad last line (torn by a crash,
// or whole but not a record that continues the chain) after lines that chain is a
// *ChainError with Last set, whose message names `skillbox audit recover`; damage
// further up is an error naming `skillbox audit verify`. Nothing is repaired here.
func checkTail(f *os.File, size int64) (tip, error) {
	if size == 0 {
		return genesis, nil
	}
	cut, err := lastNewline(f, size)
	if err != nil {
		return tip{}, err
	}
	var lines [][]byte
	fromStart := true
	if cut > 0 {
		if lines, fromStart, err = lastLines(f, cut, 3); err != nil {
			return tip{}, err
		}
	}
	t := genesis
	if !fromStart {
		// The first of the lines read is the anchor: lines before it are Verify's.
		e, err := parseLine(lines[0])
		if err != nil {
			return tip{}, fmt.Errorf("the line before the last two %w (run `skillbox audit verify`)", err)
		}
		t, lines = next(e, lines[0]), lines[1:]
	}
	for i, line := range lines {
		e, reason, chain := checkLine(line, t.seq, t.prev)
		if reason != "" {
			bad := &ChainError{Line: int(t.seq) + 1, Reason: reason}
			if i == len(lines)-1 && cut == size && recoverable(bad.Line, chain) {
				bad.Last, bad.Bytes = true, int64(len(line))+1
				return tip{}, bad
			}
			if i == len(lines)-1 {
				return tip{}, fmt.Errorf("%w (run `skillbox audit verify`)", bad)
			}
			return tip{}, fmt.Errorf("%w; lines follow it, so this is not a crash at the end (run `skillbox audit verify`)", bad)
		}
		t = next(e, line)
	}
	if cut != size {
		torn := make([]byte, size-cut)
		if _, err := f.ReadAt(torn, cut); err != nil {
			return tip{}, err
		}
		_, reason, _ := checkLine(torn, t.seq, t.prev)
		return tip{}, &ChainError{Line: int(t.seq) + 1, Last: true, Torn: true, Whole: reason == "", Bytes: size - cut}
	}
	return t, nil
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

// lastLines returns up to n last lines (without newlines) of the first size bytes of
// f, which must end with a newline, and whether the first of them is the file's first.
func lastLines(f *os.File, size int64, n int) ([][]byte, bool, error) {
	const block = 64 << 10
	var tail []byte
	off := size
	for {
		start := max(off-block, 0)
		buf := make([]byte, off-start)
		if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
			return nil, false, err
		}
		tail = append(buf, tail...)
		off = start
		if tail[len(tail)-1] != '\n' {
			return nil, false, errors.New("the last line has no newline")
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
	fromStart := off == 0
	if len(parts) > n {
		parts = parts[len(parts)-n:]
		fromStart = false
	}
	return parts, fromStart, nil
}

// Append records r and returns its id (the line's sequence number) once the line is on
// disk. A record whose line would be bigger than MaxRecordBytes is refused with
// ErrTooLarge (that record only). An error means the record may not be durable; the caller must treat the action
// as unrecorded (the engine fails the call). After a write error the log refuses all
// further appends. ctx is checked before the record is queued; once queued, Append
// waits for the sync rather than return while the line may still land.
func (l *Log) Append(ctx context.Context, r Record) (string, error) {
	if l.observe == nil {
		return l.append(ctx, r)
	}
	start := time.Now()
	id, err := l.append(ctx, r)
	l.observe(time.Since(start), err)
	return id, err
}

func (l *Log) append(ctx context.Context, r Record) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("audit append: %w", err)
	}
	if r.Event == "" {
		return "", errors.New("audit append: event is required")
	}
	p, err := newPending(&r)
	if err != nil {
		return "", fmt.Errorf("audit append: %w", err) // this record only
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		freePending(p)
		return "", ErrClosed
	}
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		freePending(p)
		return "", err
	}
	ticket := l.enqueued
	l.enqueued++
	l.queue = append(l.queue, p)
	l.waiters++
	if l.lingerFor > 0 {
		l.arrived = time.Now()
		if l.waiters >= l.lingerFor {
			l.lingerFor = 0
			l.more <- struct{}{} // buffered, and only one send per linger
		}
	}
	for l.finished <= ticket {
		if l.syncing {
			l.cond.Wait()
			continue
		}
		l.flushLocked(true)
	}
	l.mu.Unlock()
	seq, err := p.seq, p.err
	freePending(p)
	if err != nil {
		return "", err
	}
	return strconv.FormatUint(seq, 10), nil
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
	// Encoded here, and its size checked with the longest seq its line can have, so
	// that a queued record can fail neither to encode nor on its size once no one is
	// waiting for it.
	p, err := newPending(&r)
	if err != nil {
		return fmt.Errorf("audit enqueue: %w", err)
	}
	if n := lineLen(math.MaxUint64, len(p.body)); n > MaxRecordBytes {
		freePending(p)
		return tooLarge("audit enqueue", n)
	}
	p.detached = true
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		freePending(p)
		return ErrClosed
	}
	if l.err != nil {
		freePending(p)
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
		l.flushLocked(false)
	}
	return l.err
}

// flushLocked makes the caller the leader: with l.mu released it writes and syncs every
// record queued so far as one batch, then wakes the waiters. Called with l.mu held and
// no leader running.
// An appender's batch may first wait for company (WithCommitDelay); a Flush's or a
// Close's never does: their callers (the kill switch, shutdown) want the queue on disk
// now. (A Flush can still wait behind a batch that another leader holds.)
func (l *Log) flushLocked(mayLinger bool) {
	if mayLinger && l.delay > 0 && l.err == nil && !l.closed && l.lastWaiters > 1 && l.waiters < l.lastWaiters {
		l.linger()
	}
	l.lastWaiters, l.waiters = l.waiters, 0
	batch := l.queue
	l.queue = l.spare[:0] // two queues take turns: no new slice per batch
	l.spare = nil
	if l.err == nil {
		l.syncing = true
		t, offset := l.tip, l.offset
		l.mu.Unlock()
		t, offset, err := l.writeBatch(batch, t, offset)
		l.mu.Lock()
		l.syncing = false
		if err != nil {
			l.err = fmt.Errorf("audit log %s unwritable: %w", l.path, err)
		} else {
			l.tip, l.offset = t, offset
		}
	}
	if l.err != nil {
		for _, p := range batch {
			p.seq, p.err = 0, l.err
		}
	}
	l.finished += uint64(len(batch))
	l.cond.Broadcast()
	// Enqueued records are the leader's to recycle: no one waits for them. (The
	// waiters of appended ones recycle their own.)
	for i, p := range batch {
		if p.detached {
			freePending(p)
		}
		batch[i] = nil
	}
	l.spare = batch[:0]
}

// linger is the commit delay: called by a leader with l.mu held, it releases l.mu
// until as many durable appends are queued as the last batch held, no new one came
// for lingerGap, or l.delay is up. Other appenders queue behind it as behind a write.
func (l *Log) linger() {
	if l.more == nil {
		l.more = make(chan struct{}, 1)
		l.timer = time.NewTimer(time.Hour)
		l.timer.Stop()
	}
	l.syncing = true
	l.arrived = time.Now()
	deadline := l.arrived.Add(l.delay)
	for {
		// A gap from the last arrival, not from this wait's start: an append that came
		// just after a wait began must not let the next one idle a whole gap more.
		wait := min(time.Until(l.arrived.Add(lingerGap)), time.Until(deadline))
		if wait <= 0 {
			break
		}
		l.lingerFor = l.lastWaiters
		l.mu.Unlock()
		l.timer.Reset(wait)
		reached := false
		select {
		case <-l.more:
			reached = true
		case <-l.timer.C:
		}
		l.timer.Stop()
		l.mu.Lock()
		if l.lingerFor == 0 && !reached {
			<-l.more // sent after the timer fired, under the lock we now hold
			reached = true
		}
		l.lingerFor = 0
		if reached || l.closed {
			break
		}
	}
	l.syncing = false
}

// writeBatch appends the batch under the file lock, first catching up with lines other
// writers appended since this Log last wrote. It returns the new end of the chain.
func (l *Log) writeBatch(batch []*pending, t tip, offset int64) (tip, int64, error) {
	if err := lockFile(l.f); err != nil {
		return t, offset, err
	}
	defer unlockFile(l.f)
	st, err := l.f.Stat()
	if err != nil {
		return t, offset, err
	}
	if st.Size() != offset {
		if t, err = catchUp(l.f, offset, st.Size(), t); err != nil {
			return t, offset, err
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
	// The chain's end is kept in arrays while the batch is built, and becomes strings
	// once per batch.
	seq, prev, last := t.seq, [64]byte{}, -1
	copy(prev[:], t.prev)
	for _, p := range batch {
		if n := lineLen(seq+1, len(p.body)); n > MaxRecordBytes {
			p.err = tooLarge("audit append", n) // this record only
			continue
		}
		seq++
		var sum [sha256.Size]byte
		last = len(buf)
		buf, sum = appendLine(buf, seq, p.body, prev[:])
		prev = hexOf(sum)
		p.seq = seq
	}
	if last < 0 {
		return t, offset, nil
	}
	t = tip{seq: seq, prev: string(prev[:]), head: hashField(buf[last:])}
	if _, err := l.f.Write(buf); err != nil {
		return t, offset, err
	}
	if err := l.f.Sync(); err != nil {
		return t, offset, err
	}
	return t, offset + int64(len(buf)), nil
}

// catchUp reads the lines another writer appended in [from, to) and checks that they
// continue the chain from t.
func catchUp(f *os.File, from, to int64, t tip) (tip, error) {
	if to < from {
		return t, fmt.Errorf("the log shrank from %d to %d bytes under us", from, to)
	}
	buf := make([]byte, to-from)
	if _, err := f.ReadAt(buf, from); err != nil {
		return t, err
	}
	if buf[len(buf)-1] != '\n' {
		return t, errors.New("another writer left a truncated line")
	}
	for _, line := range bytes.Split(buf[:len(buf)-1], []byte{'\n'}) {
		e, err := parseLine(line)
		if err != nil {
			return t, fmt.Errorf("line %d, added by another writer, %w", t.seq+1, err)
		}
		if e.Prev != t.prev || e.Seq != t.seq+1 {
			return t, fmt.Errorf("line %d, added by another writer, does not continue the chain", t.seq+1)
		}
		t = next(e, line)
	}
	return t, nil
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
		l.flushLocked(false)
	}
	err := l.err
	l.mu.Unlock()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	unlockDir(l.dirLock)
	l.dirLock = nil
	return err
}

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

const hashSuffixLen = len(`,"hash":""}`) + 64

// parseLine checks one line (without newline) on its own: strict JSON and a hash that
// matches its content. Its errors follow "line N".
func parseLine(line []byte) (Entry, error) {
	var e Entry
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	// The decoder's own words (offsets, Go types) mean nothing to an operator; which
	// line is bad, and that it is not a record, is what they need.
	if err := dec.Decode(&e); err != nil || dec.More() {
		return e, errors.New("is not a valid record")
	}
	if len(line) < hashSuffixLen || !bytes.HasPrefix(line[len(line)-hashSuffixLen:], []byte(`,"hash":"`)) {
		return e, errors.New("is not a valid record (its hash is not the last field)")
	}
	body := make([]byte, 0, len(line)-hashSuffixLen+1)
	body = append(body, line[:len(line)-hashSuffixLen]...)
	body = append(body, '}')
	if hashHex(body) != e.Hash {
		return e, errors.New("was edited (its hash does not match its content)")
	}
	return e, nil
}
