package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/manifest"
)

// ownAddrChildEnv marks the test binary re-run in a network namespace of its own.
const ownAddrChildEnv = "SKILLBOX_EGRESS_OWN_ADDR_CHILD"

// TestGrantedNameNeverReachesTheHostsOwnAddress: a granted name whose DNS answer is one
// of the host's own public addresses reaches no service of the host. The proxy and the
// wasm host dial from the host, so such an answer (an author's own domain pointed at
// the server, a rebinding) would reach whatever listens there on 0.0.0.0, behind the
// host firewall that keeps containers off the host (security review secegress).
//
// The host here has no public address of its own, so the test runs again in a network
// namespace it makes (root): its loopback holds a public address, which only this
// namespace ever sees, and a host service listens on every address.
func TestGrantedNameNeverReachesTheHostsOwnAddress(t *testing.T) {
	if os.Getenv(ownAddrChildEnv) == "1" {
		ownAddrChild(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: a network namespace of the test's own needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("SKIPPED: no ip command to set up the test's network namespace: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestGrantedNameNeverReachesTheHostsOwnAddress$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), ownAddrChildEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in a network namespace of its own: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "own-address checks ran") {
		t.Fatalf("the test did not run in its network namespace:\n%s", out)
	}
}

func ownAddrChild(t *testing.T) {
	const own4, own6 = "100.128.0.1", "2a00::1" // public addresses, of this namespace only
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"addr", "add", own4 + "/32", "dev", "lo"},
		{"addr", "add", own6 + "/128", "dev", "lo", "nodad"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	// A service of the host's own, on every address.
	var reached atomic.Int64
	svc := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		fmt.Fprint(w, "host service")
	}))
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	svc.Listener = ln
	svc.Start()
	defer svc.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	tlsSvc := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	tln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	tlsSvc.Listener = tln
	tlsSvc.StartTLS()
	defer tlsSvc.Close()
	tport := tln.Addr().(*net.TCPAddr).Port
	// The kernel adds an address's local route in the background (IPv6 even without
	// duplicate address detection): wait until both addresses take connections.
	for _, own := range []string{own4, own6} {
		for i := 0; ; i++ {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(own, fmt.Sprint(tport)), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if i == 100 {
				t.Fatalf("%s is not reachable in the test's namespace: %v", own, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	ctx := context.Background()
	for _, own := range []string{own4, own6} {
		res := newResolver(map[string][][]string{"svc.example.test": {{own}}})
		lim := Limits{MaxRequests: 5, MaxResponseBytes: 1 << 10}

		// The wasm host's path: Guard.Do.
		g := NewGuard([]manifest.Origin{{Scheme: "http", Host: "svc.example.test", Port: port}}, lim, WithResolver(res))
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://svc.example.test:%d/", port), nil)
		if resp, err := g.Do(ctx, req); err == nil {
			resp.Body.Close()
			t.Errorf("a granted name resolving to the host's own address %s reached a host service (status %d)", own, resp.StatusCode)
		} else if !IsDenied(err) {
			t.Errorf("%s: %v, want a denial", own, err)
		}

		// The container's path: a CONNECT through the proxy.
		g = NewGuard([]manifest.Origin{{Scheme: "https", Host: "svc.example.test", Port: tport}}, lim, WithResolver(res))
		if code := connectThrough(t, g, fmt.Sprintf("svc.example.test:%d", tport)); code != http.StatusForbidden {
			t.Errorf("CONNECT to a granted name resolving to the host's own address %s: status %d, want 403", own, code)
		}

		// Control: an origin that names the address reaches it, so the service is there.
		lit := own
		if strings.Contains(own, ":") {
			lit = "[" + own + "]"
		}
		g = NewGuard([]manifest.Origin{{Scheme: "http", Host: own, Port: port}}, lim)
		req, _ = http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s:%d/", lit, port), nil)
		resp, err := g.Do(ctx, req)
		if err != nil {
			t.Fatalf("control: the origin naming %s: %v", own, err)
		}
		resp.Body.Close()
	}
	if n := reached.Load(); n != 2 {
		t.Errorf("the host services saw %d requests, want the 2 of the controls", n)
	}
	t.Log("own-address checks ran")
}

// connectThrough sends a CONNECT for hostport through a proxy holding g and, when it is
// let through, a TLS hello naming the host; it returns the proxy's status.
func connectThrough(t *testing.T, g *Guard, hostport string) int {
	t.Helper()
	p := NewProxy()
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(pl)
	defer p.Close()
	token, release := p.Register(g)
	defer release()
	c, err := net.DialTimeout("tcp", pl.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	auth := base64.StdEncoding.EncodeToString([]byte(ProxyUser + ":" + token))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\n\r\n", hostport, hostport, auth)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("CONNECT %s: %v", hostport, err)
	}
	if resp.StatusCode == http.StatusOK {
		host, _, _ := net.SplitHostPort(hostport)
		tc := tls.Client(c, &tls.Config{ServerName: host, InsecureSkipVerify: true})
		_ = tc.Handshake()
	}
	return resp.StatusCode
}
