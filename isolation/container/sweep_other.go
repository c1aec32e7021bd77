//go:build !linux

package container

import "errors"

var errNoSweep = errors.New("read-write file grants of container skills need Linux (the grant is swept after each call)")

func sweepGrant(string, func(string, uint64) bool) error { return errNoSweep }
