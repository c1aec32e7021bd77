package audit

import (
	"fmt"
	"io"
	"os"
)

// Snapshot is the log as an operator's view shows it at one moment: whether the chain
// of its complete lines verifies, and its last records.
type Snapshot struct {
	// Lines is how many records verified, Head the hash field of the last of them.
	Lines int
	Head  string
	// Err is the *ChainError (or read error) of the first bad line; nil: intact.
	Err error
	// Last are the last records, oldest first (at most the n asked for). When Err is
	// set they are the records before the bad line.
	Last []Entry
}

// ReadSnapshot verifies the log at path up to its last complete line at the time of
// the call (a line a writer is still appending is not part of it) and returns up to n
// of its last records. A missing log is an empty one.
func ReadSnapshot(path string, n int) (Snapshot, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return Snapshot{Head: Genesis}, nil
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Snapshot{}, fmt.Errorf("audit: %w", err)
	}
	end, err := lastNewline(f, fi.Size())
	if err != nil {
		return Snapshot{}, fmt.Errorf("audit: %w", err)
	}
	s, verr := scan(io.NewSectionReader(f, 0, end), nil)
	snap := Snapshot{Lines: s.lines, Head: s.head, Err: verr}
	if s.end == 0 || n <= 0 {
		return snap, nil
	}
	lines, _, err := lastLines(f, s.end, n)
	if err != nil {
		return Snapshot{}, fmt.Errorf("audit: %w", err)
	}
	for _, l := range lines {
		e, err := parseLine(l)
		if err != nil { // verified above; a line cannot go bad but by an edit meanwhile
			return Snapshot{}, fmt.Errorf("audit: a verified line %w", err)
		}
		snap.Last = append(snap.Last, e)
	}
	return snap, nil
}
