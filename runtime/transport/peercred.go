package transport

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"google.golang.org/grpc/credentials"
)

// PeerCredInfo is the AuthInfo of a unix-socket connection: the connecting process's
// credentials as the kernel saw them at connect time (SO_PEERCRED), not as it claims.
type PeerCredInfo struct {
	credentials.CommonAuthInfo
	UID, GID uint32
	PID      int32
}

// AuthType implements credentials.AuthInfo.
func (PeerCredInfo) AuthType() string { return "unix-peercred" }

// Identity is the caller's canonical name, "unix:uid=N". Numeric only: a user name can be
// renamed or reused, and looking it up would put NSS on the accept path.
func (p PeerCredInfo) Identity() string { return "unix:uid=" + strconv.FormatUint(uint64(p.UID), 10) }

// peerCreds are server-side transport credentials for unix sockets: no encryption (the
// kernel carries the bytes), but each connection is labelled with its peer's uid.
type peerCreds struct{}

func (peerCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	// Any conn with a file descriptor will do, so a wrapping listener still works.
	sc, ok := c.(syscall.Conn)
	if !ok || c.LocalAddr().Network() != "unix" {
		return nil, nil, fmt.Errorf("peer credentials: %T is not a unix socket connection", c)
	}
	info, err := peerCred(sc)
	if err != nil {
		return nil, nil, fmt.Errorf("peer credentials: %w", err)
	}
	// A unix socket never leaves the host: as private as the kernel, which is what
	// PrivacyAndIntegrity means to grpc (it gates per-RPC credentials on it).
	info.CommonAuthInfo = credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}
	return c, info, nil
}

func (peerCreds) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, fmt.Errorf("peer credentials are server-side only")
}

func (peerCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "unix-peercred"}
}

func (p peerCreds) Clone() credentials.TransportCredentials { return p }

func (peerCreds) OverrideServerName(string) error { return nil }
