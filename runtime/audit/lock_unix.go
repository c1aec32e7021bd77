//go:build unix

package audit

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on the log around each batch, so two Logs
// (a server and a CLI command) never extend the chain from the same line.
func lockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			return err
		}
	}
}

func unlockFile(f *os.File) { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }

// lockDir locks the audit directory: shared by every open Log for its lifetime, and
// exclusive, without waiting, by Recover, which must not rewrite the end of a log that
// another process (a running server) is appending to. A Log opening while Recover runs
// waits for it. The lock is the directory's, not the file's: each batch takes the
// file's exclusive lock, which a shared lock on the file would block.
func lockDir(dir string, exclusive bool) (*os.File, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX | syscall.LOCK_NB
	}
	for {
		err = syscall.Flock(int(d.Fd()), how)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		d.Close()
		if err == syscall.EWOULDBLOCK {
			return nil, ErrInUse
		}
		return nil, err
	}
	return d, nil
}

// unlockDir releases lockDir's lock (closing the directory releases it).
func unlockDir(d *os.File) {
	if d != nil {
		d.Close()
	}
}
