package engine_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

// TestUnverifiedSharesTheCallCore: the author's path reports a failure after a refused
// request exactly as the operator's path does (reason and words), checks the grant
// against what the manifest asks, and writes nothing to the audit log.
func TestUnverifiedSharesTheCallCore(t *testing.T) {
	b := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer b.Close()
	ctx := context.Background()
	f := newFixture(t)
	p := testkit.Package{Name: "failing", Version: "1.0.0", Module: "testdata/failhttp.wasm",
		Body: "input: {type: object}\noutput: {type: object}\ncapabilities:\n  network: [\"http://127.0.0.1:1\"]\nlimits: {requests: 5}\n"}
	f.installApprove(t, p, nil)
	input := []byte(fmt.Sprintf(`{"method":"GET","url":%q}`, b.URL))
	_, served := f.eng.Invoke(ctx, engine.Request{Skill: "failing", Input: input, Caller: "t"})
	records := len(auditEvents(t, f.eng))

	_, authored := newAuthor(t).InvokeUnverified(ctx, engine.UnverifiedRequest{Dir: f.home.Build(t, p), Input: input})
	if engine.ReasonOf(authored) != "EGRESS_DENIED" || engine.ReasonOf(served) != "EGRESS_DENIED" {
		t.Fatalf("reasons %s (author) and %s (server), want EGRESS_DENIED both", engine.ReasonOf(authored), engine.ReasonOf(served))
	}
	words := func(err error) string { s, _, _ := strings.Cut(err.Error(), ": skill exited"); return s }
	if words(authored) != words(served) {
		t.Fatalf("author's path says %q, the server's %q", words(authored), words(served))
	}
	if n := len(auditEvents(t, f.eng)); n != records {
		t.Fatalf("the author's path wrote %d audit records", n-records)
	}

	// Mounts must match the files the manifest asks for.
	files := testkit.Package{Name: "files", Version: "1.0.0", Module: "testdata/echo.wasm",
		Body: "input: {type: object}\noutput: {type: object}\ncapabilities:\n  files: [{path: /data, access: read}]\n"}
	dir := f.home.Build(t, files)
	var me *engine.MountError
	if _, err := newAuthor(t).InvokeUnverified(ctx, engine.UnverifiedRequest{Dir: dir, Input: []byte(`{}`)}); !errors.As(err, &me) || me.Guest != "/data" || me.Unasked {
		t.Fatalf("unbound files path: %v", err)
	}
	host := t.TempDir()
	if _, err := newAuthor(t).InvokeUnverified(ctx, engine.UnverifiedRequest{Dir: dir, Input: []byte(`{}`),
		Mounts: map[string]string{"/data": host, "/etc": host}}); !errors.As(err, &me) || me.Guest != "/etc" || !me.Unasked {
		t.Fatalf("a path not asked for: %v", err)
	}
	if res, err := newAuthor(t).InvokeUnverified(ctx, engine.UnverifiedRequest{Dir: dir, Input: []byte(`{"a":1}`),
		Mounts: map[string]string{"/data": host}}); err != nil || string(res.Output) != `{"a":1}` {
		t.Fatalf("bound as asked: %v", err)
	}
}

// newAuthor is the author's path with a wasm sandbox of its own.
func newAuthor(t *testing.T) *engine.Author {
	t.Helper()
	ws, err := wasm.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close(context.Background()) })
	return engine.NewAuthor(map[string]isolation.Sandbox{manifest.KindWasm: ws}, nil)
}
