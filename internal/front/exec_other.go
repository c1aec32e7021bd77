//go:build !unix

package front

import (
	"errors"
	"os"
	"os/exec"
)

// handOff runs skillbox-full with the same arguments and stdio and exits with its
// exit code (no exec(2) here); it returns only if it cannot start it.
func handOff(args []string) error {
	p, err := fullPath()
	if err != nil {
		return err
	}
	cmd := exec.Command(p, args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		os.Exit(ee.ExitCode())
	case err == nil:
		os.Exit(0)
	}
	return err
}
