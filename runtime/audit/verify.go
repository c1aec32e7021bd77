package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/manifest"
)

// ChainError is a line that breaks the chain. Line is the first bad line (1-based);
// Reason says what is wrong with it, in words that follow "line N", e.g. "is not a
// valid record".
type ChainError struct {
	Line   int
	Reason string
	// Last: no byte follows the line, so a crash (or an edit of that line alone) may
	// have left it; Recover moves it aside. Damage before the last line is never
	// recoverable: the lines after it say the log was changed after it was written.
	Last bool
	// Torn: the line has no newline at the end (Last too). Whole: it is nevertheless a
	// complete record that continues the chain; only the newline is missing, and
	// Recover restores it.
	Torn, Whole bool
	// Bytes is the line's length, newline included, when Last.
	Bytes int64
	// Fix is the command the message names for a Last line; empty: `skillbox audit
	// recover`, which repairs the home's log. A caller that read another file sets the
	// command that repairs that one (`skillbox audit recover --file F`).
	Fix string
}

func (e *ChainError) Error() string {
	fix := e.Fix
	if fix == "" {
		fix = "skillbox audit recover"
	}
	switch {
	case e.Whole:
		return fmt.Sprintf("line %d is a whole record without its final newline (a crash between writing the two); "+
			"run `%s` to add the newline", e.Line, fix)
	case e.Torn:
		return fmt.Sprintf("line %d is torn: its %d bytes have no newline at the end, as a crash in the middle of a write leaves; "+
			"run `%s` to move it aside", e.Line, e.Bytes, fix)
	case e.Last:
		return fmt.Sprintf("line %d %s (a crash or an edit left it); run `%s` to move it aside", e.Line, e.Reason, fix)
	}
	return fmt.Sprintf("line %d %s", e.Line, e.Reason)
}

// maxLine bounds one line when reading. It is larger than MaxRecordBytes, what Append
// writes, so that logs written before that limit existed still verify.
const maxLine = 16 << 20

// Append must never write a line Verify cannot read.
var _ [maxLine - MaxRecordBytes]struct{}

// Verify checks the whole chain of the log at path and returns a *ChainError naming the
// first bad line. It cannot see lines dropped from the very end: compare the count and
// head from VerifyReader against a copy kept elsewhere for that.
func Verify(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	defer f.Close()
	_, _, err = VerifyReader(f)
	return err
}

// VerifyReader checks a log read from r and returns the number of records that verify
// and the chain's head: the hash field of the last of them (Genesis for an empty log),
// which an operator can read in the log's last line. On a *ChainError, n and head
// describe the good lines before the bad one.
func VerifyReader(r io.Reader) (n int, head string, err error) {
	s, err := scan(r, nil)
	return s.lines, s.head, err
}

// HeadError is a log whose chain is intact but does not contain the head an operator
// kept: lines were removed from its end (or it is another log).
type HeadError struct {
	Kept  string // the head looked for
	Lines int    // lines in the log
	Head  string // the log's head
}

func (e *HeadError) Error() string {
	return fmt.Sprintf("the kept head %s is not in the log: whole lines were removed from its end, or this is another log "+
		"(the log has %d records, its head is %s)", e.Kept, e.Lines, e.Head)
}

// ParseHead reads a head as an operator may paste it: either case, surrounding space,
// bare hex or a digest ("sha256:<hex>"). Anything but 64 hex digits is an error.
func ParseHead(s string) (string, error) {
	h := strings.ToLower(strings.TrimSpace(s))
	d, err := manifest.ParseHexDigest(h)
	if err != nil {
		if d, err = manifest.ParseDigest(h); err != nil {
			return "", errors.New("not 64 hex digits")
		}
	}
	return d.Hex(), nil
}

// VerifyReaderHead is VerifyReader, and also checks that a head kept earlier (a
// record's hash field, as VerifyReader or Log.Head return it) is a record of the
// chain: the log may have grown since, but lost nothing up to that record. The sha256
// of a whole line, which earlier versions printed as the head, matches too. Genesis
// matches any log.
func VerifyReaderHead(r io.Reader, kept string) (n int, head string, err error) {
	found := kept == Genesis
	s, err := scan(r, func(lineSum, hash string) {
		if hash == kept || lineSum == kept {
			found = true
		}
	})
	if err == nil && !found {
		err = &HeadError{Kept: kept, Lines: s.lines, Head: s.head}
	}
	return s.lines, s.head, err
}

// scanned is how far a scan got: the good lines before the first bad one, if any.
type scanned struct {
	lines int
	tip         // of the last good line
	end   int64 // offset just past the last good line
}

// scan checks the chain read from r, calling each (if not nil) with every good line's
// sha256 and hash field. It stops at the first bad line with a *ChainError.
func scan(r io.Reader, each func(lineSum, hash string)) (scanned, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	s := scanned{tip: genesis}
	for {
		line, rerr := readLine(br)
		if rerr == io.EOF && len(line) == 0 {
			return s, nil
		}
		bad := &ChainError{Line: s.lines + 1}
		if rerr != nil && rerr != io.EOF {
			if errors.Is(rerr, errLineTooLong) {
				bad.Reason = rerr.Error()
				return s, bad
			}
			return s, fmt.Errorf("audit verify: read: %w", rerr)
		}
		e, reason, chain := checkLine(line, s.seq, s.prev)
		if rerr == io.EOF {
			bad.Last, bad.Torn, bad.Whole, bad.Bytes = true, true, reason == "", int64(len(line))
			return s, bad
		}
		if reason != "" {
			bad.Reason = reason
			if _, perr := br.Peek(1); perr == io.EOF && recoverable(bad.Line, chain) {
				bad.Last, bad.Bytes = true, int64(len(line))+1
			}
			return s, bad
		}
		s.lines++
		s.tip = next(e, line)
		s.end += int64(len(line)) + 1
		if each != nil {
			each(s.prev, s.head)
		}
	}
}

// checkLine checks one line (without its newline) as the successor of the line with
// sequence number seq and sha256 prev. It returns the record, or what is wrong with
// the line in words that follow "line N"; chain says the line is a sound record that
// just does not continue this chain.
func checkLine(line []byte, seq uint64, prev string) (e Entry, reason string, chain bool) {
	if len(bytes.TrimSpace(line)) == 0 {
		return e, "is empty, not a record", false
	}
	e, err := parseLine(line)
	if err != nil {
		return e, err.Error(), false
	}
	if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
		return e, "has a time that is not RFC 3339", false
	}
	if e.Prev != prev {
		return e, "does not follow the line before it (its prev is not that line's hash: a line was dropped, inserted or reordered here)", true
	}
	if e.Seq != seq+1 {
		return e, fmt.Sprintf("has seq %d where %d belongs", e.Seq, seq+1), true
	}
	return e, "", false
}

// recoverable reports whether a bad last line may be moved aside: always when it is
// not a sound record; when it is one that does not chain, only after a line it fails to
// follow. A sound first line that does not start a chain says the log's start was cut.
func recoverable(line int, chain bool) bool { return !chain || line > 1 }

var errLineTooLong = fmt.Errorf("is longer than %d MiB", maxLine>>20)

// readLine returns one line without its newline; io.EOF with data means no newline.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxLine {
			return nil, errLineTooLong
		}
		switch {
		case err == nil:
			return buf[:len(buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return buf, err
		}
	}
}

// Tail copies the log's complete lines to w. With follow it then keeps copying lines as
// they are appended until ctx is done (returning nil then). It does not verify; a last
// line without a newline (when not following) is a *ChainError after the lines before
// it were copied.
func Tail(ctx context.Context, path string, follow bool, w io.Writer) error {
	return TailLast(ctx, path, -1, follow, w)
}

// TailLast is Tail that copies only the last n of the complete lines the log has when it
// starts (all of them when n < 0; none when n is 0, for following only what comes).
func TailLast(ctx context.Context, path string, n int, follow bool, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	skip := 0
	if n >= 0 {
		have, err := countLines(f)
		if err != nil {
			return err
		}
		skip = max(have-n, 0)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	var partial []byte
	lines := 0
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		chunk, err := br.ReadBytes('\n')
		partial = append(partial, chunk...)
		if err == nil {
			if lines >= skip {
				if _, werr := w.Write(partial); werr != nil {
					return werr
				}
			}
			partial = partial[:0]
			lines++
			continue
		}
		if err != io.EOF {
			return err
		}
		if !follow {
			if len(partial) > 0 {
				return &ChainError{Line: lines + 1, Last: true, Torn: true, Bytes: int64(len(partial))}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// countLines counts the complete lines of f (its newlines) and leaves it at its start.
func countLines(f *os.File) (int, error) {
	buf := make([]byte, 64<<10)
	n := 0
	for {
		k, err := f.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	_, err := f.Seek(0, io.SeekStart)
	return n, err
}
