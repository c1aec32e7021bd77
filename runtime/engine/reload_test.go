package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

// Finding 13: a reload with a broken trust.yaml logged "reloaded", then every call
// failed with VERIFY_FAILED while the skills looked enabled. A reload now reads and
// checks everything first, and on any error keeps the previous state and says what is
// wrong.
func TestReloadKeepsStateOnBrokenFiles(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody}, nil)
	call := func() error {
		_, err := f.eng.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{"a":1}`), Caller: "test"})
		return err
	}
	if err := call(); err != nil {
		t.Fatal(err)
	}
	trust := f.eng.TrustPath()
	good, err := os.ReadFile(trust)
	if err != nil {
		t.Fatal(err)
	}
	approvalFile := filepath.Join(f.home.Dir, "approvals", "echo.yaml")
	goodApproval, err := os.ReadFile(approvalFile)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, file, content, want string
	}{
		{"misspelt trust field", trust, strings.Replace(string(good), "name:", "nmae:", 1),
			`trust.yaml: line 2: signers[0]: unknown field "nmae" (allowed: name, key, keyless)`},
		{"trust key file missing", trust, strings.Replace(string(good), "keys/release.pub", "keys/gone.pub", 1),
			"signers[0].key: keys/gone.pub does not exist"},
		{"trust not YAML", trust, "signers: [\n", "trust.yaml: line 1: did not find expected node content"},
		{"no signers", trust, "signers: []\n", "signers: at least one signer is required"},
		{"bad approval", approvalFile, string(goodApproval) + "approvedFor: everyone\n",
			fmt.Sprintf(`echo.yaml: line %d: unknown field "approvedFor" (allowed: skill, manifestDigest, signer, approvedBy, approvedAt, grant)`, strings.Count(string(goodApproval), "\n")+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig, _ := os.ReadFile(tc.file)
			if err := os.WriteFile(tc.file, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(tc.file, orig, 0o600)
			_, err := f.eng.Reload(ctx, "test")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "previous state is kept") {
				t.Fatalf("Reload = %v, want an error saying %q and that the previous state is kept", err, tc.want)
			}
			// The previous trust and approvals still serve calls.
			if err := call(); err != nil {
				t.Fatalf("call after a refused reload: %v (%s)", err, engine.ReasonOf(err))
			}
		})
	}
	// With the files fixed, a reload succeeds; every failure was recorded.
	if _, err := f.eng.Reload(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	var failed, ok int
	for _, e := range auditEvents(t, f.eng) {
		if e.Event == audit.EventReload && e.Outcome == "failed" {
			failed++
		}
		if e.Event == audit.EventReload && e.Outcome == "ok" {
			ok++
		}
	}
	if failed != 5 || ok != 1 {
		t.Fatalf("reload records: %d failed, %d ok; want 5 and 1", failed, ok)
	}
}

// At start, a present but broken trust.yaml stops the engine from opening, naming the
// problem; a missing one is allowed (nothing installs or verifies until there is one).
func TestOpenWithBrokenOrMissingTrust(t *testing.T) {
	ctx := context.Background()
	home := testkit.NewHome(t)
	trust := filepath.Join(home.Dir, "trust.yaml")
	if err := os.WriteFile(trust, []byte("signers:\n  - nmae: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if eng, err := engine.Open(ctx, engine.Config{Home: home.Dir}); err == nil {
		eng.Close()
		t.Fatal("opened with a broken trust.yaml")
	} else if !strings.Contains(err.Error(), `trust.yaml: line 2: signers[0]: unknown field "nmae"`) {
		t.Fatalf("Open = %v", err)
	}

	if err := os.Remove(trust); err != nil {
		t.Fatal(err)
	}
	eng := home.Engine(t, engine.Config{})
	_, err := eng.Install(ctx, home.Build(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody}), "test")
	if err == nil || !strings.Contains(err.Error(), "no usable trust policy") {
		t.Fatalf("install without trust.yaml: %v", err)
	}
}
