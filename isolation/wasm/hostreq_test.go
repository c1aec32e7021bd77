package wasm_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/manifest"
)

// A request far over the caps is refused before the host parses it, so the host
// call ends at once and allocates little beyond the guest's own memory. Parsed whole,
// 22 million empty header values held a call with a 1 s budget for 5.6 s inside the
// host call (where nothing can stop it) and allocated 3.6 GB; a 512 MiB body took
// 3.9 s and 895 MiB.
func TestHugeHostRequestIsRefusedBeforeParsing(t *testing.T) {
	sb := newSandbox(t)
	for _, tc := range []struct {
		name    string
		mem     int64
		timeout time.Duration
		bound   time.Duration // 0: not timed
	}{
		// The guest fills 512 MiB itself first (about 1 s), so its budget is roomy and
		// the allocation is what tells; manyheaders builds its request in milliseconds.
		{"hugebody", 512 << 20, 10 * time.Second, 0},
		{"manyheaders", 64 << 20, time.Second, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sk := watSkill(t, tc.name)
			must(t, sb.Prepare(context.Background(), sk))
			l := limits()
			l.Timeout = tc.timeout
			l.Memory = tc.mem
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			res, err, took := runBounded(t, context.Background(), sb, isolation.Call{ID: tc.name, Skill: sk, Limits: l,
				Grant: isolation.Grant{Network: []manifest.Origin{{Scheme: "http", Host: "127.0.0.1", Port: 1}}}})
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("took %v with a %v budget; allocated %d MiB with a %d MiB memory budget", took, tc.timeout, alloc>>20, tc.mem>>20)
			if tc.bound > 0 && took > tc.bound {
				t.Errorf("call took %v with a %v budget", took, tc.timeout)
			}
			// The guest's own memory is the budget; the host may add a little.
			if limit := uint64(tc.mem) + 64<<20; alloc > limit {
				t.Errorf("the call allocated %d MiB, want at most %d MiB (the memory budget and 64 MiB)", alloc>>20, limit>>20)
			}
			if err != nil {
				t.Fatalf("want the refusal handed to the skill, got %v", err)
			}
			var r hostReply
			if err := json.Unmarshal(res.Output, &r); err != nil {
				t.Fatalf("reply %.200q: %v", res.Output, err)
			}
			if r.Error == nil || r.Error.Reason != "INVALID_REQUEST" || !strings.Contains(r.Error.Message, "over the limit") {
				t.Fatalf("reply %s, want INVALID_REQUEST over the limit", res.Output)
			}
		})
	}
	requireEcho(t, sb)
}

// The caps on one request: a body of MaxRequestBody bytes goes out whole; a byte
// more, more header values or bytes than allowed, or a head over MaxRequestHead is
// refused to the skill, and the origin never sees it.
func TestHostRequestCaps(t *testing.T) {
	var got atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got.Store(n)
		fmt.Fprint(w, "ok")
	})
	sb := newSandbox(t)
	l := limits()
	l.Memory = 256 << 20 // the guest holds the request JSON more than once
	send := func(t *testing.T, req map[string]any) hostReply {
		t.Helper()
		if _, ok := req["url"]; !ok {
			req["url"] = srv.URL + "/"
		}
		in, err := json.Marshal(req)
		must(t, err)
		res, err := sb.Run(context.Background(), isolation.Call{ID: "caps", Skill: goSkill(t, "net"), Input: in, Limits: l,
			Grant: isolation.Grant{Network: []manifest.Origin{srv.origin(t, "")}}})
		if err != nil {
			t.Fatalf("net guest: %v (logs %q)", err, res.Logs)
		}
		var r hostReply
		must(t, json.Unmarshal(res.Output, &r))
		return r
	}

	t.Run("body at the cap", func(t *testing.T) {
		r := send(t, map[string]any{"method": "POST", "body": base64.StdEncoding.EncodeToString(make([]byte, wasm.MaxRequestBody))})
		if r.Error != nil || r.Status != 200 || got.Load() != wasm.MaxRequestBody {
			t.Fatalf("reply %+v, origin got %d bytes; want 200 and %d", r.Error, got.Load(), wasm.MaxRequestBody)
		}
	})
	many := make([]string, wasm.MaxRequestHeaderValues+1)
	for _, tc := range []struct {
		name string
		req  map[string]any
		want string
	}{
		{"body a byte over", map[string]any{"method": "POST", "body": base64.StdEncoding.EncodeToString(make([]byte, wasm.MaxRequestBody+1))},
			"request body is over the limit of 8388608 bytes"},
		{"too many header values", map[string]any{"headers": map[string][]string{"X-A": many}},
			"request has 257 header values, over the limit of 256"},
		{"header bytes over", map[string]any{"headers": map[string][]string{"X-A": {strings.Repeat("v", wasm.MaxRequestHeaderBytes)}}},
			"request headers are 32771 bytes, over the limit of 32768"},
		{"head over", map[string]any{"url": srv.URL + "/" + strings.Repeat("a", wasm.MaxRequestHead)},
			"request's method, URL and headers are"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.hits.Load()
			r := send(t, tc.req)
			if r.Error == nil || r.Error.Reason != "INVALID_REQUEST" || !strings.Contains(r.Error.Message, tc.want) {
				t.Fatalf("reply %+v, want INVALID_REQUEST %q", r, tc.want)
			}
			if srv.hits.Load() != before {
				t.Fatal("the refused request reached the origin")
			}
		})
	}
}
