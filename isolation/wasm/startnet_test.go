package wasm_test

import (
	"context"
	"encoding/binary"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/manifest"
)

// startNetReactor is a reactor whose start function (the module's start section, which
// runs while the instance is made, before _initialize) asks skillbox.http_request for
// url; _initialize does nothing, skillbox_handle returns 0.
func startNetReactor(url string) []byte {
	req := []byte(`{"url":"` + url + `"}`)
	sec := func(id byte, payload []byte) []byte {
		return append(binary.AppendUvarint([]byte{id}, uint64(len(payload))), payload...)
	}
	str := func(s string) []byte { return append(binary.AppendUvarint(nil, uint64(len(s))), s...) }
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	body := func(code ...byte) []byte { // no locals
		b := append([]byte{0}, code...)
		return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
	}
	reqLen := appendSLEB(nil, int64(len(req)))
	return cat([]byte("\x00asm\x01\x00\x00\x00"),
		// types: 0 (i32 i32)->i32, 1 ()->(), 2 ()->i32
		sec(1, []byte{3, 0x60, 2, 0x7f, 0x7f, 1, 0x7f, 0x60, 0, 0, 0x60, 0, 1, 0x7f}),
		sec(2, cat([]byte{1}, str("skillbox"), str("http_request"), []byte{0, 0})),
		sec(3, []byte{3, 1, 1, 2}), // start fn, _initialize, skillbox_handle
		sec(5, []byte{1, 0, 1}),    // one memory of one page
		sec(7, cat([]byte{3}, str("memory"), []byte{2, 0}, str("_initialize"), []byte{0, 2}, str("skillbox_handle"), []byte{0, 3})),
		sec(8, []byte{1}), // start: function 1
		sec(10, cat([]byte{3},
			body(cat([]byte{0x41, 0, 0x41}, reqLen, []byte{0x10, 0, 0x1a, 0x0b})...), // http_request(0, len); drop
			body(0x0b),
			body(0x41, 0, 0x0b))),
		sec(11, cat([]byte{1, 0, 0x41, 0, 0x0b}, binary.AppendUvarint(nil, uint64(len(req))), req)),
	)
}

func appendSLEB(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// A reactor's start function runs while its instance is made, before _initialize,
// within the call that makes it; what it leaves is every later caller's starting
// state, as _initialize's is. So it gets no network either: its request is never sent
// (it went out under the first caller's egress guard, charged to and recorded as that
// caller's).
func TestStartFunctionGetsNoNetwork(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("state for every caller")) })
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "start.wasm"), startNetReactor(srv.URL+"/start"), 0o644))
	skill := skillAt(t, dir, "start.wasm")
	for _, tc := range []struct {
		name string
		sb   *wasm.Sandbox
	}{{"pooled", newSandbox(t)}, {"fresh", newSandbox(t, wasm.WithoutPool())}} {
		t.Run(tc.name, func(t *testing.T) {
			c := pooledCall(skill, `{}`)
			c.Grant = isolation.Grant{Network: []manifest.Origin{srv.origin(t, "")}}
			res, err := tc.sb.Run(context.Background(), c)
			if err != nil {
				t.Fatalf("call: %v (logs %q)", err, res.Logs)
			}
			if n := srv.hits.Load(); n != 0 || res.Usage.Requests != 0 || len(res.Egress) != 0 {
				t.Errorf("the start function's request was sent (%d hits) and charged to the caller: usage %+v, egress %+v", n, res.Usage, res.Egress)
			}
			srv.hits.Store(0)
		})
	}
}
