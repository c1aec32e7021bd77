package replica_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skillbox-dev/skillbox/internal/ociregistry"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
	"github.com/skillbox-dev/skillbox/runtime/replica"
	"github.com/skillbox-dev/skillbox/skillpkg/oci"
)

// TestReplicasPullApprovedPackages: a package installed on replica a from a registry
// and approved there is pulled, verified and installed by replica b, which then runs
// it; replica c, whose trust.yaml does not trust the signer, refuses the same bytes;
// a package a installed from a directory cannot be fetched, and b says so.
func TestReplicasPullApprovedPackages(t *testing.T) {
	c := needCluster(t)
	ns := namespace(t, c)
	ctx := context.Background()
	logrus.SetOutput(io.Discard) // the registry logs every request
	reg, err := ociregistry.Start(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	ropts := oci.Options{PlainHTTPUnsafe: true, DockerConfig: "-"}

	first := testkit.NewHome(t)
	pkg := first.Build(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "../../isolation/wasm/testdata/echo.wasm",
		Body: "input: {type: object}\noutput: {type: object}\n"})
	pushed, err := oci.Push(ctx, pkg, reg.Addr+"/skills/echo:1.0.0", ropts)
	if err != nil {
		t.Fatal(err)
	}
	local := first.Build(t, testkit.Package{Name: "local", Version: "1.0.0", Module: "../../isolation/wasm/testdata/echo.wasm",
		Body: "input: {type: object}\noutput: {type: object}\n"})

	a := newReplica(t, testCfg, first, ns, "a", local, replica.WithRegistry(ropts))
	b := newReplica(t, testCfg, first, ns, "b", "", replica.WithRegistry(ropts))
	stranger := newReplica(t, testCfg, nil, ns, "c", "", replica.WithRegistry(ropts)) // trusts another key

	// a installs from the registry as `skillbox install oci://…` does.
	dir := filepath.Join(t.TempDir(), "pkg")
	opts := ropts
	opts.VerifyBundle = a.eng.VerifyBundle
	pulled, err := oci.Pull(ctx, pushed.Pinned(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.eng.InstallFrom(ctx, dir, "ops", engine.Origin{Source: pulled.Pinned(), Ref: pulled.Pinned()}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"echo", "local"} {
		cand, err := a.eng.Candidate(ctx, name, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.eng.Approve(ctx, cand, nil, "ops"); err != nil {
			t.Fatal(err)
		}
	}
	var cm corev1.ConfigMap
	waitFor(t, "the approval with its origin in the cluster", func() bool {
		return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: replica.ConfigMapName(replica.StateApproval, "echo")}, &cm) == nil
	})
	if cm.Data[replica.KeyOrigin] != pushed.Pinned() {
		t.Fatalf("the approval's origin: %q, want %q", cm.Data[replica.KeyOrigin], pushed.Pinned())
	}

	waitFor(t, "b to install and approve echo", func() bool {
		info, err := b.eng.Get(ctx, "echo", "")
		return err == nil && info.Approved
	})
	res, err := b.eng.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{"from":"b"}`), Caller: "t"})
	if err != nil || !strings.Contains(string(res.Output), `"from":"b"`) {
		t.Fatalf("call on b: %v %v", res, err)
	}
	if rec := auditLine(t, b.eng, `"event":"install"`); !strings.Contains(rec, pushed.Pinned()) || !strings.Contains(rec, "replica b") {
		t.Errorf("b's install record: %s", rec)
	}
	if ref, err := b.eng.OriginOf(pulled.Digest); err != nil || ref != "" {
		// OriginOf takes a manifest digest, not the artifact's: nothing under it.
		t.Errorf("origin under the artifact digest: %q %v", ref, err)
	}

	waitFor(t, "b to say the directory-installed package cannot be fetched", func() bool {
		return strings.Contains(b.mirror.Missing()["local"], "from a directory or an archive (no registry origin)")
	})
	if _, ok := b.mirror.Missing()["echo"]; ok {
		t.Errorf("b reports echo missing: %v", b.mirror.Missing())
	}
	// b's operator sees it in b's metrics: two approvals, one b cannot serve.
	waitFor(t, "b's metrics to count local as unavailable", func() bool {
		body := scrapeMetrics(t, b.eng)
		return strings.Contains(body, `skillbox_skills{state="unavailable"} 1`) &&
			strings.Contains(body, `skillbox_skills{state="approved"} 1`)
	})
	if body := scrapeMetrics(t, a.eng); !strings.Contains(body, `skillbox_skills{state="unavailable"} 0`) {
		t.Errorf("a, which has both packages, counts one unavailable:\n%s", body)
	}

	// c does not trust the signer: it pulls the bytes and refuses them.
	waitFor(t, "c to refuse the untrusted package", func() bool {
		return strings.Contains(stranger.mirror.Missing()["echo"], "could not be installed from "+pushed.Pinned())
	})
	if _, err := stranger.eng.Get(ctx, "echo", ""); engine.ReasonOf(err) != engine.ReasonNotFound {
		t.Errorf("c installed a package its trust.yaml does not trust: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(stranger.home.Dir, "skills")); len(entries) != 0 {
		t.Errorf("c's store holds %d packages", len(entries))
	}
	t.Logf("c: %s", stranger.mirror.Missing()["echo"])
}

// scrapeMetrics returns what eng's metrics endpoint serves.
func scrapeMetrics(t *testing.T, eng *engine.Engine) string {
	t.Helper()
	rec := httptest.NewRecorder()
	eng.Metrics().Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("metrics: status %d", rec.Code)
	}
	return rec.Body.String()
}
