package oci

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// With --plain-http-unsafe, a loopback registry that redirects elsewhere does not
// carry plain HTTP off loopback: the dial itself is refused. 0.0.0.0 (which Linux
// connects to this host through, but which is not a loopback address) and a name are
// refused like a remote address; the redirect to 0.0.0.0 points back at this very
// server, so a missing check would show as a second request.
func TestPlainHTTPRedirectStaysOnLoopback(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, port, _ := net.SplitHostPort(r.Host)
		http.Redirect(w, r, "http://0.0.0.0:"+port+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	_, err := Pull(context.Background(), "oci://"+host+"/s/echo:1", filepath.Join(t.TempDir(), "pkg"), local)
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("pull through a redirect to 0.0.0.0: %v, want the dial refused", err)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("the registry saw %d requests, want 1 (the redirect must not be followed)", n)
	}
	for _, ref := range []string{"oci://0.0.0.0:5000/s/echo:1", "oci://[::]:5000/s/echo:1"} {
		if _, err := Pull(context.Background(), ref, filepath.Join(t.TempDir(), "pkg"), local); err == nil || !strings.Contains(err.Error(), "only for a registry on loopback") {
			t.Errorf("%s: %v", ref, err)
		}
	}
}
