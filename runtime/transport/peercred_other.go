//go:build !linux

package transport

import (
	"errors"
	"syscall"
)

// Other systems have different calls (getpeereid, LOCAL_PEERCRED); until one is wired in,
// a unix listener refuses every connection rather than admit an unknown caller.
func peerCred(syscall.Conn) (PeerCredInfo, error) {
	return PeerCredInfo{}, errors.New("reading a unix socket peer's credentials is implemented on Linux only")
}
