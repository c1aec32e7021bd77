package transport

import (
	"net"
	"sync"
)

// MaxHTTPConns bounds the connections an HTTP door (ListenHTTP: the console, the MCP
// door) has open at once. Anyone who can reach a door may open connections before
// authenticating, and every one is a file descriptor of the process the gRPC door, the
// audit log and the sandboxes share: without a bound a flood of connections exhausts
// them all, and every door and call fails. With it, a flood fills one door.
//
// 512 is far above what legitimate clients hold: an MCP client over HTTP/1.1 holds a
// connection per request under way plus one for its notification stream, and one caller
// may have at most 128 requests under way (mcp.MaxCallerRequests), so four callers at
// that bound, or a couple of hundred sessions with a stream and a call each, fit; a
// browser on the console holds at most six. Both doors at the bound with the container
// proxy's (about 2,048 with upstreams) leave a quarter of a 4,096 descriptor limit, the
// smallest in common use (Go raises the soft limit to the hard one), for the rest.
//
// At the bound the door stops accepting until a connection closes: a new connection
// waits in the kernel's accept queue (not a descriptor of this process) and is served
// then, rather than being closed. A burst of legitimate clients is served late instead
// of failing; a peer holding connections must keep each one busy (headers within 10 s,
// a request at least every 2 minutes: host's doorServer) to keep the door full.
const MaxHTTPConns = 512

// limitListener accepts at most cap(sem) connections that are open at once; Accept
// waits for one to close. A connection's place is given back when it is closed (once).
type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{} // closed by Close: a waiting Accept returns
	closeOnce sync.Once
	full      func() // if set, called when Accept finds every place taken (tests)
}

func newLimitListener(l net.Listener, n int, full func()) *limitListener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n), done: make(chan struct{}), full: full}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	default:
		if l.full != nil {
			l.full()
		}
		select {
		case l.sem <- struct{}{}:
		case <-l.done:
			// Closed: the listener's own error, as without the limit.
			return l.Listener.Accept()
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its place back the first time it is closed.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite keeps net/http's half-close on a plaintext connection (it shuts the write
// side and lets the client read a final response before the connection closes).
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// LimitListener returns l accepting at most n connections open at once: Accept waits
// for one to close. For plain-HTTP listeners outside ListenHTTP (the metrics endpoint).
func LimitListener(l net.Listener, n int) net.Listener { return newLimitListener(l, n, nil) }
