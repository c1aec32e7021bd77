package wasm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/manifest"
)

// A call blocked in a host call ends within this much of its budget. Unfixed, the
// guests below block for an hour (or forever), so the bound is far from flaky.
const blockSlack = time.Second

// watchdog is how long a test waits for a call before it reports the call as stuck.
const watchdog = 20 * time.Second

// runBounded runs one call and fails the test if it has not returned within watchdog.
func runBounded(t *testing.T, ctx context.Context, sb *wasm.Sandbox, call isolation.Call) (isolation.Result, error, time.Duration) {
	t.Helper()
	type outcome struct {
		res isolation.Result
		err error
	}
	done := make(chan outcome, 1)
	start := time.Now()
	go func() {
		res, err := sb.Run(ctx, call)
		done <- outcome{res, err}
	}()
	select {
	case o := <-done:
		return o.res, o.err, time.Since(start)
	case <-time.After(watchdog):
		t.Fatalf("call %s still running after %v: blocked in a host call", call.ID, watchdog)
		return isolation.Result{}, nil, 0
	}
}

// requireUserWords fails if a budget or cancel error reads like wazero's internals.
func requireUserWords(t *testing.T, err error) {
	t.Helper()
	for _, leak := range []string{"module closed", "context canceled", "context deadline", "exit_code"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q quotes internals (%q)", err, leak)
		}
	}
}

// A guest sleeping or waiting in a WASI host call ends when its budget, the caller's
// deadline or the caller's cancel says so, not when the host call returns.
func TestBlockedHostCallsEndWithTheCall(t *testing.T) {
	sb := newSandbox(t)
	probe := goSkill(t, "probe")
	// Compiling a Go guest takes seconds: not part of what is timed.
	if err := sb.Prepare(context.Background(), probe); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		skill   isolation.Skill
		input   string
		timeout time.Duration                                // the call's time budget
		ctx     func() (context.Context, context.CancelFunc) // the caller's context
		after   time.Duration                                // when the call should end
		reason  isolation.Reason
		msg     string
	}{
		{name: "wasi sleep of an hour, 1s budget", skill: watSkill(t, "sleep"), timeout: time.Second, after: time.Second,
			reason: isolation.ReasonTimeout, msg: "call exceeded its time budget of 1s"},
		{name: "go time.Sleep of an hour, 1s budget", skill: probe, input: `{"op":"sleep","data":"1h"}`, timeout: time.Second, after: time.Second,
			reason: isolation.ReasonTimeout, msg: "call exceeded its time budget of 1s"},
		{name: "waiting for stdin forever, 1s budget", skill: watSkill(t, "stdinblock"), timeout: time.Second, after: time.Second,
			reason: isolation.ReasonTimeout, msg: "call exceeded its time budget of 1s"},
		{name: "wasi sleep, caller's 1s deadline", skill: watSkill(t, "sleep"), timeout: time.Hour, after: time.Second,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), time.Second)
			},
			reason: isolation.ReasonTimeout, msg: "the caller's deadline passed"},
		{name: "wasi sleep, caller cancels", skill: watSkill(t, "sleep"), timeout: time.Hour, after: 300 * time.Millisecond,
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(300*time.Millisecond, cancel)
				return ctx, cancel
			},
			reason: isolation.ReasonCanceled, msg: "call canceled by the caller"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tc.ctx != nil {
				ctx, cancel = tc.ctx()
			}
			defer cancel()
			l := limits()
			l.Timeout = tc.timeout
			input := tc.input
			if input == "" {
				input = "{}"
			}
			_, err, took := runBounded(t, ctx, sb, isolation.Call{ID: tc.name, Skill: tc.skill, Input: []byte(input), Limits: l})
			ie := requireReason(t, err, tc.reason)
			if !strings.Contains(ie.Error(), tc.msg) {
				t.Errorf("error %q does not contain %q", ie.Error(), tc.msg)
			}
			requireUserWords(t, err)
			if took > tc.after+blockSlack {
				t.Fatalf("call took %v; want it to end within %v of %v", took, blockSlack, tc.after)
			}
			requireEcho(t, sb)
		})
	}
}

// silentOrigin is a loopback listener that accepts connections and never answers
// past what stall writes; closed reports each connection the client closed.
func silentOrigin(t *testing.T, stall string) (manifest.Origin, string, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	closed := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if stall != "" {
					buf := make([]byte, 4096)
					_, _ = c.Read(buf) // the request line and headers
					_, _ = io.WriteString(c, stall)
				}
				_, _ = io.Copy(io.Discard, c) // until the client hangs up
				closed <- struct{}{}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	return manifest.Origin{Scheme: "http", Host: "127.0.0.1", Port: port}, fmt.Sprintf("http://127.0.0.1:%d/", port), closed
}

// The HTTP host function returns when the call ends, whether the origin never
// answers or stops halfway through the body, and the connection is closed.
func TestHTTPHostCallEndsWithTheCall(t *testing.T) {
	sb := newSandbox(t)
	guest := goSkill(t, "net")
	if err := sb.Prepare(context.Background(), guest); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, stall string }{
		{"origin never answers", ""},
		{"origin stalls in the body", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			origin, url, closed := silentOrigin(t, tc.stall)
			l := limits()
			l.Timeout = time.Second
			in := fmt.Sprintf(`{"method":"GET","url":%q}`, url)
			_, err, took := runBounded(t, context.Background(), sb, isolation.Call{ID: "net", Skill: guest, Input: []byte(in), Limits: l,
				Grant: isolation.Grant{Network: []manifest.Origin{origin}}})
			ie := requireReason(t, err, isolation.ReasonTimeout)
			if !strings.Contains(ie.Error(), "time budget of 1s") {
				t.Errorf("error %q", ie)
			}
			requireUserWords(t, err)
			if took > time.Second+blockSlack {
				t.Fatalf("call took %v; want it to end within %v of its 1s budget", took, blockSlack)
			}
			select {
			case <-closed:
			case <-time.After(watchdog):
				t.Fatal("the connection to the origin is still open after the call ended")
			}
			requireEcho(t, sb)
		})
	}
}

// A FIFO in a granted directory is refused at open: opening one blocks until a
// writer (or reader) comes, which no context can interrupt.
func TestGrantedFIFOIsRefused(t *testing.T) {
	sb := newSandbox(t)
	probe := goSkill(t, "probe")
	if err := sb.Prepare(context.Background(), probe); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	must(t, syscall.Mkfifo(fifo, 0o666))
	must(t, os.WriteFile(filepath.Join(dir, "plain.txt"), []byte("plain"), 0o644))
	// Unblock whatever an unfixed sandbox left waiting in open(2).
	t.Cleanup(func() {
		for _, flag := range []int{os.O_WRONLY, os.O_RDONLY} {
			if f, err := os.OpenFile(fifo, flag|syscall.O_NONBLOCK, 0); err == nil {
				f.Close()
			}
		}
	})
	for _, tc := range []struct {
		name   string
		access manifest.Access
		op     string
	}{
		{"read in a read-only grant", manifest.AccessRead, "read"},
		{"write in a read-write grant", manifest.AccessReadWrite, "write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := limits()
			l.Timeout = time.Second
			res, err, took := runBounded(t, context.Background(), sb, isolation.Call{ID: "fifo", Skill: probe, Limits: l,
				Input: []byte(`{"op":"` + tc.op + `","path":"/data/fifo","data":"x"}`),
				Grant: isolation.Grant{Files: []isolation.Mount{{Guest: "/data", Host: dir, Access: tc.access}}}})
			if err != nil {
				t.Fatalf("probe: %v after %v (logs %q)", err, took, res.Logs)
			}
			var out probeOut
			must(t, json.Unmarshal(res.Output, &out))
			if out.OK {
				t.Fatalf("the guest opened a FIFO: %+v", out)
			}
			t.Logf("refused: %s", out.Error)
			// A regular file next to it still reads.
			l.Timeout = 10 * time.Second
			res, err, _ = runBounded(t, context.Background(), sb, isolation.Call{ID: "plain", Skill: probe, Limits: l,
				Input: []byte(`{"op":"read","path":"/data/plain.txt"}`),
				Grant: isolation.Grant{Files: []isolation.Mount{{Guest: "/data", Host: dir, Access: tc.access}}}})
			must(t, err)
			must(t, json.Unmarshal(res.Output, &out))
			if !out.OK || out.Data != "plain" {
				t.Fatalf("regular file: %+v", out)
			}
		})
	}
}
