//go:build !linux

package container

import "errors"

var errNoSweep = errors.New("read-write file grants of container skills need Linux (the grant is swept after each call)")

func multiLinked(string) (map[string]bool, error) { return nil, errNoSweep }

func sweepGrant(string, func(string) bool) error { return errNoSweep }
