package egress

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/manifest"
)

// heldConn is a raw client connection to the proxy, kept open between requests as a
// keep-alive client (or a skill holding descriptors on purpose) would.
type heldConn struct {
	net.Conn
	br *bufio.Reader
}

func dialProxy(t *testing.T, addr string) *heldConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &heldConn{Conn: c, br: bufio.NewReader(c)}
}

// get sends one proxied GET for token and returns the status and body.
func (c *heldConn) get(target, token string) (int, string, error) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic %s\r\n\r\n", target, basic(ProxyUser, token)); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// closedByProxy reports whether the proxy ends the connection (EOF or reset) within
// wait, reading and discarding anything it sends first.
func (c *heldConn) closedByProxy(wait time.Duration) error {
	c.SetReadDeadline(time.Now().Add(wait))
	_, err := io.Copy(io.Discard, c.br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("still open after %v", wait)
	}
	return nil // EOF (Copy returns nil) or reset
}

// One call cannot hold more than its share of the proxy's connections: past the
// per-call cap its request is refused with 429 at once and its connection closed,
// while another call is served; a connection the call closes, or the end of the call,
// gives its place back.
func TestProxyCapsConnectionsPerCall(t *testing.T) {
	srv := newCountingServer(t, hello("ok"), false)
	p, addr := startProxy(t, WithMaxConns(3, 100))
	grant := []manifest.Origin{origin("http", "127.0.0.1", srv.port)}
	budget := Limits{MaxRequests: 100, MaxResponseBytes: 1 << 10}
	tokenA, releaseA := p.Register(NewGuard(grant, budget))
	defer releaseA()
	tokenB, releaseB := p.Register(NewGuard(grant, budget))
	defer releaseB()

	var held []*heldConn
	for i := 0; i < 3; i++ {
		c := dialProxy(t, addr)
		if code, body, err := c.get(srv.URL, tokenA); err != nil || code != 200 || body != "ok" {
			t.Fatalf("connection %d: %d %q %v", i, code, body, err)
		}
		held = append(held, c)
	}
	over := dialProxy(t, addr)
	code, body, err := over.get(srv.URL, tokenA)
	if err != nil || code != http.StatusTooManyRequests || !strings.Contains(body, "3 connections") {
		t.Fatalf("connection over the per-call cap: %d %q %v", code, body, err)
	}
	if err := over.closedByProxy(5 * time.Second); err != nil {
		t.Fatalf("connection over the per-call cap: %v", err)
	}
	// The held connections still work, and so does another call.
	if code, _, err := held[0].get(srv.URL, tokenA); err != nil || code != 200 {
		t.Fatalf("held connection: %d %v", code, err)
	}
	if code, _, err := dialProxy(t, addr).get(srv.URL, tokenB); err != nil || code != 200 {
		t.Fatalf("another call while the first is at its cap: %d %v", code, err)
	}

	// A connection the call closes frees its place.
	held[0].Close()
	waitUntil(t, func() bool {
		code, _, err := dialProxy(t, addr).get(srv.URL, tokenA)
		return err == nil && code == 200
	})

	// Releasing the call closes its idle connections.
	releaseA()
	for i, c := range held[1:] {
		if err := c.closedByProxy(5 * time.Second); err != nil {
			t.Fatalf("held connection %d after release: %v", i+1, err)
		}
	}
}

// The proxy holds at most its total cap of connections, across calls: a connection
// beyond it is answered 503 and closed before anything is read from it; closing one
// makes room again.
func TestProxyCapsConnectionsInTotal(t *testing.T) {
	srv := newCountingServer(t, hello("ok"), false)
	p, addr := startProxy(t, WithMaxConns(3, 4))
	grant := []manifest.Origin{origin("http", "127.0.0.1", srv.port)}
	budget := Limits{MaxRequests: 100, MaxResponseBytes: 1 << 10}
	tokenA, releaseA := p.Register(NewGuard(grant, budget))
	defer releaseA()
	tokenB, releaseB := p.Register(NewGuard(grant, budget))
	defer releaseB()

	var held []*heldConn
	for i, tok := range []string{tokenA, tokenA, tokenA, tokenB} {
		c := dialProxy(t, addr)
		if code, _, err := c.get(srv.URL, tok); err != nil || code != 200 {
			t.Fatalf("connection %d: %d %v", i, code, err)
		}
		held = append(held, c)
	}
	over := dialProxy(t, addr)
	over.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(over.br, nil)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("connection over the total cap: %v %v", resp, err)
	}
	if err := over.closedByProxy(5 * time.Second); err != nil {
		t.Fatalf("connection over the total cap: %v", err)
	}
	held[3].Close()
	waitUntil(t, func() bool {
		code, _, err := dialProxy(t, addr).get(srv.URL, tokenB)
		return err == nil && code == 200
	})
}

// A connection that does not send a complete request header (which carries the call's
// token) within the pre-auth timeout is closed: silent ones and slow-header ones alike.
func TestProxyClosesUnauthenticatedConnections(t *testing.T) {
	if d := NewProxy().srv.ReadHeaderTimeout; d <= 0 || d > DefaultPreAuthTimeout {
		t.Fatalf("default pre-auth timeout %v", d)
	}
	_, addr := startProxy(t, WithPreAuthTimeout(300*time.Millisecond))

	silent := dialProxy(t, addr)
	start := time.Now()
	// Far below the old 10 s header timeout, far above 300 ms.
	if err := silent.closedByProxy(5 * time.Second); err != nil {
		t.Fatalf("silent connection: %v", err)
	}
	t.Logf("silent connection closed after %v", time.Since(start))

	slow := dialProxy(t, addr)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		io.WriteString(slow, "GET http://127.0.0.1:1/ HTTP/1.1\r\n")
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if _, err := io.WriteString(slow, "X"); err != nil {
					return
				}
			}
		}
	}()
	if err := slow.closedByProxy(5 * time.Second); err != nil {
		t.Fatalf("slow-header connection: %v", err)
	}
}

// waitUntil polls cond until it holds, failing after a generous 10 s.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dialProxyFrom connects to the proxy from the loopback address src, as a container
// with its own address on the skill's network does.
func dialProxyFrom(t *testing.T, addr, src string) *heldConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &heldConn{Conn: c, br: bufio.NewReader(c)}
}

// refusedUnclaimed checks that the proxy answered c 429 without being asked and
// closed it: its source address holds its share of connections without a token.
func (c *heldConn) refusedUnclaimed(t *testing.T) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("connection over its address's cap of unauthenticated connections: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(b), "have not sent a call token") {
		t.Fatalf("connection over its address's cap of unauthenticated connections: %d %q %v", resp.StatusCode, b, err)
	}
	if err := c.closedByProxy(5 * time.Second); err != nil {
		t.Fatalf("connection over its address's cap of unauthenticated connections: %v", err)
	}
}

// admitted reports whether the proxy let c in: it says nothing and keeps it open.
func (c *heldConn) admitted() bool {
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err := c.br.Peek(1)
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// One call's container cannot fill the proxy with connections that never send a
// token: the per-call cap cannot see them, so they are capped per source address at
// accept, and another call (another address) still gets through. Before, 1024 silent
// connections from one address made every other call's request a 503.
func TestProxyCapsUnauthenticatedConnectionsPerSource(t *testing.T) {
	srv := newCountingServer(t, hello("ok"), false)
	// Defaults, but silent connections live for the whole test.
	p, addr := startProxy(t, WithPreAuthTimeout(time.Minute))
	grant := []manifest.Origin{origin("http", "127.0.0.1", srv.port)}
	budget := Limits{MaxRequests: 100, MaxResponseBytes: 1 << 10}
	tokenA, releaseA := p.Register(NewGuard(grant, budget)) // call A, at 127.0.0.1
	defer releaseA()
	tokenB, releaseB := p.Register(NewGuard(grant, budget)) // call B, at 127.0.0.2
	defer releaseB()

	silent := make([]*heldConn, DefaultMaxConns)
	for i := range silent {
		silent[i] = dialProxyFrom(t, addr, "127.0.0.1")
	}
	silent[DefaultMaxConnsPerCall].refusedUnclaimed(t)
	silent[DefaultMaxConns-1].refusedUnclaimed(t)

	code, body, err := dialProxyFrom(t, addr, "127.0.0.2").get(srv.URL, tokenB)
	if err != nil || code != 200 || body != "ok" {
		t.Fatalf("call B after call A opened %d silent connections: %d %q %v", DefaultMaxConns, code, body, err)
	}
	// A's address is at its cap until one of its silent connections goes.
	dialProxyFrom(t, addr, "127.0.0.1").refusedUnclaimed(t)
	silent[0].Close()
	waitUntil(t, func() bool {
		code, _, err := dialProxyFrom(t, addr, "127.0.0.1").get(srv.URL, tokenA)
		return err == nil && code == 200
	})
}

// A connection that authenticates no longer counts against its address's cap of
// unauthenticated connections (the per-call cap counts it instead).
func TestProxyAuthenticatedConnectionsLeaveTheUnclaimedCount(t *testing.T) {
	srv := newCountingServer(t, hello("ok"), false)
	p, addr := startProxy(t, WithMaxConns(3, 100), WithPreAuthTimeout(time.Minute))
	grant := []manifest.Origin{origin("http", "127.0.0.1", srv.port)}
	budget := Limits{MaxRequests: 100, MaxResponseBytes: 1 << 10}
	tokenA, releaseA := p.Register(NewGuard(grant, budget))
	defer releaseA()
	for i := 0; i < 3; i++ {
		if code, _, err := dialProxyFrom(t, addr, "127.0.0.1").get(srv.URL, tokenA); err != nil || code != 200 {
			t.Fatalf("authenticated connection %d: %d %v", i, code, err)
		}
	}
	// The three authenticated ones do not count: three silent ones are let in, the
	// fourth is not.
	var silent []*heldConn
	for i := 0; i < 3; i++ {
		silent = append(silent, dialProxyFrom(t, addr, "127.0.0.1"))
		if !silent[i].admitted() {
			t.Fatalf("silent connection %d refused while its address has %d without a token", i, i)
		}
	}
	dialProxyFrom(t, addr, "127.0.0.1").refusedUnclaimed(t)
	// A silent connection that goes makes room for another.
	silent[0].Close()
	waitUntil(t, func() bool { return dialProxyFrom(t, addr, "127.0.0.1").admitted() })
}
