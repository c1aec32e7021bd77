package transport

import (
	"syscall"
)

func peerCred(c syscall.Conn) (PeerCredInfo, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return PeerCredInfo{}, err
	}
	var (
		cred *syscall.Ucred
		gerr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, gerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return PeerCredInfo{}, err
	}
	if gerr != nil {
		return PeerCredInfo{}, gerr
	}
	return PeerCredInfo{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid}, nil
}
