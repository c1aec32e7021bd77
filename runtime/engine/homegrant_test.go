package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

const filesBody = `input: {type: object}
output: {type: object}
capabilities:
  files:
    - {path: /data, access: read-write}
limits: {timeout: 5s, memory: 16MiB}
`

// A file grant whose host directory holds $SKILLBOX_HOME (an operator's home directory
// holds ~/.skillbox, the default), is inside it, or is it, hands the skill skillbox's
// own state: read-write, it could write approvals and trust.yaml, or native code into
// the compile cache the server runs; read-only, read the audit log. Such a grant is
// refused when approved, and a call under one written by hand is refused (security
// review).
func TestGrantHoldingHomeIsRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if _, err := f.eng.Install(ctx, f.home.Build(t, testkit.Package{Name: "ws", Version: "1.0.0", Module: "testdata/echo.wasm", Body: filesBody}), "t"); err != nil {
		t.Fatal(err)
	}
	c, err := f.eng.Candidate(ctx, "ws", "")
	if err != nil {
		t.Fatal(err)
	}
	// The home seen through a symbolic link is the home.
	link := filepath.Join(t.TempDir(), "home-link")
	if err := os.Symlink(f.home.Dir, link); err != nil {
		t.Fatal(err)
	}
	inside := filepath.Join(f.home.Dir, "skills")
	if err := os.MkdirAll(inside, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{filepath.Dir(f.home.Dir), f.home.Dir, inside, link} {
		for _, access := range []manifest.Access{manifest.AccessReadWrite, manifest.AccessRead} {
			g := &approval.Grant{Files: []approval.File{{Path: "/data", Host: host, Access: access}}}
			_, err := f.eng.Approve(ctx, c, g, "t")
			if err == nil || !strings.Contains(err.Error(), "grant.files[0].host") || !strings.Contains(err.Error(), "SKILLBOX_HOME") {
				t.Errorf("approve %s (%s): %v", host, access, err)
			}
			if _, err := os.Stat(approval.Path(f.home.Dir, "ws")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("approval written for a grant of %s: %v", host, err)
			}
		}
	}

	// An approval file written by hand (or before this check) does not run.
	a := &approval.Approval{Skill: "ws", ManifestDigest: c.Entry.ManifestDigest, Signer: c.Signer.Signer, ApprovedBy: "t",
		Grant: approval.Grant{Files: []approval.File{{Path: "/data", Host: filepath.Dir(f.home.Dir), Access: manifest.AccessReadWrite}}}}
	if err := approval.Save(approval.Path(f.home.Dir, "ws"), a); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Reload(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	_, err = f.eng.Invoke(ctx, engine.Request{Skill: "ws", Input: []byte(`{}`), Caller: "t"})
	if got := reasonOf(t, err); got != engine.ReasonNotApproved || !strings.Contains(err.Error(), "SKILLBOX_HOME") {
		t.Fatalf("call under a grant holding the home: %s (%v)", got, err)
	}

	// A directory beside the home is fine.
	beside := t.TempDir()
	if _, err := f.eng.Approve(ctx, c, &approval.Grant{Files: []approval.File{{Path: "/data", Host: beside, Access: manifest.AccessReadWrite}}}, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Invoke(ctx, engine.Request{Skill: "ws", Input: []byte(`{}`), Caller: "t"}); err != nil {
		t.Fatal(err)
	}
}
