package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
	"github.com/skillbox-dev/skillbox/signing"
)

// Another process (the CLI) installs the version an approval pins while the server
// runs: the server calls it without a reload.
func TestApprovedVersionInstalledByAnotherProcess(t *testing.T) {
	ctx := context.Background()
	home := testkit.NewHome(t)
	setup := home.Engine(t, engine.Config{})
	pkg := home.Build(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody})
	if _, err := setup.Install(ctx, pkg, "test"); err != nil {
		t.Fatal(err)
	}
	c, err := setup.Candidate(ctx, "echo", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := setup.Approve(ctx, c, nil, "test"); err != nil {
		t.Fatal(err)
	}
	dir := c.Entry.Dir
	filepath.WalkDir(dir, func(p string, _ os.DirEntry, _ error) error { return os.Chmod(p, 0o700) })
	os.RemoveAll(dir)
	server := home.Engine(t, engine.Config{})
	cli := home.Engine(t, engine.Config{})
	if _, err := cli.Install(ctx, pkg, "test"); err != nil {
		t.Fatal(err)
	}
	_, err = server.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{}`), Caller: "test"})
	if err != nil {
		t.Errorf("approved version installed by another process is not callable without a reload: %v", err)
	}
}

// A candidate verified under the old trust.yaml, a reload that removes its signer, then
// Approve: the approval must not seed the new policy's cache with the old verdict.
func TestApproveAfterReloadVerifiesAgain(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if _, err := f.eng.Install(ctx, f.home.Build(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody}), "test"); err != nil {
		t.Fatal(err)
	}
	c, err := f.eng.Candidate(ctx, "echo", "")
	if err != nil {
		t.Fatal(err)
	}
	_, pub, _ := signing.GenerateKey(nil)
	os.WriteFile(filepath.Join(f.home.Dir, "keys", "other.pub"), pub, 0o600)
	os.WriteFile(filepath.Join(f.home.Dir, "trust.yaml"), []byte("signers:\n  - name: other\n    key: keys/other.pub\n"), 0o600)
	if _, err := f.eng.Reload(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Approve(ctx, c, nil, "test"); err != nil {
		t.Fatal(err)
	}
	_, err = f.eng.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{}`), Caller: "test"})
	if err == nil {
		t.Errorf("a package whose signer trust.yaml no longer names ran (Approve cached the old policy's verification)")
	}
}

// A Reload racing with a Disable must not undo the kill switch. The skills directory is
// made slow to list (non-package entries, which List skips) so that the window between
// Reload reading disabled/ and publishing is wide enough to hit.
func TestReloadDoesNotUndoDisable(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody}, nil)
	skills := filepath.Join(f.home.Dir, "skills")
	for i := 0; i < 30000; i++ {
		os.WriteFile(filepath.Join(skills, fmt.Sprintf("junk%06d", i)), nil, 0o600)
	}
	lost := 0
	const n = 10
	for i := 0; i < n; i++ {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); f.eng.Reload(ctx, "test") }()
		time.Sleep(3 * time.Millisecond)
		if _, err := f.eng.Disable(ctx, "echo", "test", "kill"); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		_, err := f.eng.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{}`), Caller: "test"})
		if err == nil {
			lost++
		}
		if err := f.eng.Enable(ctx, "echo", "test"); err != nil {
			t.Fatal(err)
		}
	}
	if lost > 0 {
		t.Errorf("kill switch undone in memory by a concurrent Reload (%d/%d)", lost, n)
	}
}
