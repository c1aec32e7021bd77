package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// ChainError is a broken chain: Line is the first bad line (1-based).
type ChainError struct {
	Line   int
	Reason string
}

func (e *ChainError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

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

// VerifyReader checks a log read from r and returns the number of lines and the hash of
// the last one (the chain's head).
func VerifyReader(r io.Reader) (n int, head string, err error) {
	return verifyReader(r, nil)
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

// VerifyReaderHead is VerifyReader, and also checks that a head kept earlier (a line's
// hash, as VerifyReader or Log.Head returned it) is a line of the chain: the log may
// have grown since, but lost nothing up to that line. Genesis matches any log.
func VerifyReaderHead(r io.Reader, kept string) (n int, head string, err error) {
	found := kept == Genesis
	n, head, err = verifyReader(r, func(hash string) {
		if hash == kept {
			found = true
		}
	})
	if err == nil && !found {
		err = &HeadError{Kept: kept, Lines: n, Head: head}
	}
	return n, head, err
}

// verifyReader is VerifyReader, calling each (if not nil) with every good line's hash.
func verifyReader(r io.Reader, each func(hash string)) (n int, head string, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	prev := Genesis
	var seq uint64
	for {
		line, rerr := readLine(br)
		if rerr == io.EOF && len(line) == 0 {
			return n, prev, nil
		}
		n++
		if rerr == io.EOF {
			return n, prev, &ChainError{n, "torn: no newline at the end, as a crash in the middle of a write leaves (`skillbox audit recover` moves it aside)"}
		}
		if rerr != nil {
			if errors.Is(rerr, errLineTooLong) {
				return n, prev, &ChainError{n, rerr.Error()}
			}
			return n, prev, fmt.Errorf("audit verify: read: %w", rerr)
		}
		e, perr := parseLine(line)
		if perr != nil {
			return n, prev, &ChainError{n, perr.Error()}
		}
		if e.Prev != prev {
			return n, prev, &ChainError{n, "prev does not match the line before it (a line was dropped, inserted or reordered here)"}
		}
		if e.Seq != seq+1 {
			return n, prev, &ChainError{n, fmt.Sprintf("seq %d, want %d", e.Seq, seq+1)}
		}
		if _, terr := time.Parse(time.RFC3339Nano, e.Time); terr != nil {
			return n, prev, &ChainError{n, "time is not RFC 3339"}
		}
		seq = e.Seq
		prev = hashHex(line)
		if each != nil {
			each(prev)
		}
	}
}

var errLineTooLong = fmt.Errorf("line longer than %d MiB", maxLine>>20)

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
// they are appended until ctx is done (returning nil then). It does not verify.
func Tail(ctx context.Context, path string, follow bool, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit tail: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	var partial []byte
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		chunk, err := br.ReadBytes('\n')
		partial = append(partial, chunk...)
		if err == nil {
			if _, werr := w.Write(partial); werr != nil {
				return fmt.Errorf("audit tail: %w", werr)
			}
			partial = partial[:0]
			continue
		}
		if err != io.EOF {
			return fmt.Errorf("audit tail: %w", err)
		}
		if !follow {
			if len(bytes.TrimSpace(partial)) > 0 {
				return fmt.Errorf("audit tail: last line is truncated")
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
