//go:build unix

package front

import (
	"fmt"
	"os"
	"syscall"
)

// handOff replaces this process with skillbox-full running the same arguments; it
// returns only if that cannot be done.
func handOff(args []string) error {
	p, err := fullPath()
	if err != nil {
		return err
	}
	err = syscall.Exec(p, append([]string{p}, args[1:]...), os.Environ())
	return fmt.Errorf("start %s: %w", p, err)
}
