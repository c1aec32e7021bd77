// Package transport is how skillbox's gRPC server listens and how its clients dial, and
// who the caller is: a unix socket with mode 0600 (caller from the peer's kernel
// credentials, "unix:uid=N"), or TCP with TLS (caller "cert:NAME" from a verified client
// certificate) and/or a bearer-token file (caller "token:NAME"). Plaintext TCP is only
// accepted on loopback and only with tokens. Caller(ctx) gives the identity the engine
// checks against an approval's callers and writes to the audit log.
package transport

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
)

// SocketName is the file name of the default socket inside $SKILLBOX_HOME.
const SocketName = "skillbox.sock"

// maxSocketPath is sizeof(sockaddr_un.sun_path) minus the terminating NUL on Linux.
const maxSocketPath = 107

// DefaultSocket is the server's default address for a skillbox home, in gRPC's own form
// ("unix:///abs/home/skillbox.sock"), so it can be used as ServerConfig.Addr and
// ClientConfig.Addr alike. A relative home is made absolute.
func DefaultSocket(home string) string {
	if abs, err := filepath.Abs(home); err == nil {
		home = abs
	}
	return "unix://" + filepath.Join(home, SocketName)
}

// address is a parsed ADDR: a unix socket path or a TCP host:port.
type address struct {
	unixPath string // set for unix sockets
	hostPort string // set for TCP
}

func (a address) isUnix() bool { return a.unixPath != "" }

// target is the address in the form grpc.NewClient resolves without DNS for IP literals.
func (a address) target() string {
	if a.isUnix() {
		return "unix://" + a.unixPath
	}
	return "passthrough:///" + a.hostPort
}

// AddrError is an ADDR that is not one of the accepted forms: Problem says why, in
// words a flag's error can carry ("--server \"x\": want unix:///abs/path.sock or
// host:port (missing port in address)").
type AddrError struct {
	Addr, Problem string
}

func (e *AddrError) Error() string { return fmt.Sprintf("address %q: %s", e.Addr, e.Problem) }

// parseAddr accepts gRPC's forms: "unix:///abs/path", "unix:path", "host:port".
// Abstract unix sockets are refused: they have no file mode, so anyone on the host (in
// the same network namespace) could connect.
func parseAddr(s string) (address, error) {
	switch {
	case s == "":
		return address{}, fmt.Errorf("empty address")
	case strings.HasPrefix(s, "unix-abstract:"):
		return address{}, &AddrError{s, "abstract unix sockets have no permissions; use unix:///abs/path.sock"}
	case strings.HasPrefix(s, "unix://"):
		p := strings.TrimPrefix(s, "unix://")
		if !filepath.IsAbs(p) {
			return address{}, &AddrError{s, "unix:// needs an absolute path (unix:///abs/path.sock)"}
		}
		return unixAddr(s, p)
	case strings.HasPrefix(s, "unix:"):
		p := strings.TrimPrefix(s, "unix:")
		abs, err := filepath.Abs(p)
		if err != nil {
			return address{}, &AddrError{s, err.Error()}
		}
		return unixAddr(s, abs)
	case strings.Contains(s, "://"):
		return address{}, &AddrError{s, "want unix:///abs/path.sock or host:port"}
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		why := err.Error()
		var ae *net.AddrError
		if errors.As(err, &ae) {
			why = ae.Err // without net's own "address X:" again
		}
		return address{}, &AddrError{s, "want unix:///abs/path.sock or host:port (" + why + ")"}
	}
	if port == "" {
		return address{}, &AddrError{s, "missing port"}
	}
	return address{hostPort: net.JoinHostPort(host, port)}, nil
}

func unixAddr(orig, p string) (address, error) {
	p = filepath.Clean(p)
	if len(p) > maxSocketPath {
		return address{}, &AddrError{orig, fmt.Sprintf("socket path is %d bytes, the limit is %d", len(p), maxSocketPath)}
	}
	return address{unixPath: p}, nil
}

// loopbackHost reports whether host names only this machine: a loopback IP literal or
// "localhost".
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
