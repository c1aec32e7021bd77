package wasm_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/manifest"
)

// A reactor's _initialize gets no network, pooled or fresh: a request it makes is
// refused (EGRESS_DENIED, naming _initialize) and never sent. Otherwise it would go out
// under the egress guard of the call that happened to make the instance (charged to
// that caller's request budget, audited as that caller's), and its response would be
// part of the state every later caller of the pool starts from (security review
// secrev3). Requests made in skillbox_handle go out as usual, each call's own.
func TestInitializeGetsNoNetwork(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok " + r.URL.Path)) })
	skill := goReactor(t, "rxinitnet")
	call := func(id string) isolation.Call {
		c := pooledCall(skill, `{}`)
		c.ID = id
		c.Grant = isolation.Grant{Network: []manifest.Origin{srv.origin(t, "")}, Env: map[string]string{"INIT_URL": srv.URL}}
		return c
	}
	for _, tc := range []struct {
		name string
		sb   *wasm.Sandbox
	}{{"pooled", newSandbox(t)}, {"fresh", newSandbox(t, wasm.WithoutPool())}} {
		t.Run(tc.name, func(t *testing.T) {
			for i, id := range []string{"alice", "bob", "bob"} {
				res, err := tc.sb.Run(context.Background(), call(id))
				if err != nil {
					t.Fatalf("call %d: %v (logs %q)", i, err, res.Logs)
				}
				var out struct{ Init, Call *hostReply }
				if err := json.Unmarshal(res.Output, &out); err != nil {
					t.Fatalf("call %d: output %q: %v", i, res.Output, err)
				}
				if out.Init == nil || out.Init.Error == nil || out.Init.Error.Reason != "EGRESS_DENIED" ||
					!strings.Contains(out.Init.Error.Message, "_initialize") {
					t.Errorf("call %d: _initialize's request got %s", i, res.Output)
				}
				if out.Call == nil || out.Call.Error != nil || out.Call.Status != 200 {
					t.Errorf("call %d: the handler's request got %s", i, res.Output)
				}
				if res.Usage.Requests != 1 || res.Usage.DeniedRequests != 0 || len(res.Egress) != 1 ||
					!strings.HasSuffix(res.Egress[0].URL, "/call") {
					t.Errorf("call %d: charged %+v, audited %+v: want the handler's request only", i, res.Usage, res.Egress)
				}
			}
			if n := srv.hits.Load(); n != 3 {
				t.Errorf("the server got %d requests, want the 3 handlers' only", n)
			}
			srv.hits.Store(0)
		})
	}
}
