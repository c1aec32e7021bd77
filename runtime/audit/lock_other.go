//go:build !unix

package audit

import "os"

// lockFile is a no-op where flock is unavailable; one writer per log is then the
// operator's responsibility.
func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) {}

// lockDir is a no-op too: Recover cannot tell whether a server has the log open, and
// the operator must stop it first.
func lockDir(string, bool) (*os.File, error) { return nil, nil }

func unlockDir(*os.File) {}
