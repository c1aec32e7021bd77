package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

// TestInstallOfApprovedVersionNeedsNoReload: an approval that pins a version the store
// does not hold refuses calls with NOT_FOUND; installing that version makes it callable
// at once, without a reload (the state is rebuilt at install, as the store used to be
// asked on every call).
func TestInstallOfApprovedVersionNeedsNoReload(t *testing.T) {
	ctx := context.Background()
	home := testkit.NewHome(t)
	f := &fixture{home: home, eng: home.Engine(t, engine.Config{})}
	pkg := home.Build(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody})
	if _, err := f.eng.Install(ctx, pkg, "test"); err != nil {
		t.Fatal(err)
	}
	c, err := f.eng.Candidate(ctx, "echo", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Approve(ctx, c, nil, "test"); err != nil {
		t.Fatal(err)
	}
	// Take the package out of the store (as on a host the approval was copied to).
	dir := c.Entry.Dir
	filepath.WalkDir(dir, func(p string, _ os.DirEntry, _ error) error { return os.Chmod(p, 0o700) })
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	eng := home.Engine(t, engine.Config{})
	if _, err := eng.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{}`), Caller: "test"}); reasonOf(t, err) != engine.ReasonNotFound {
		t.Fatalf("approved version not installed: %v", err)
	}
	if _, err := eng.Install(ctx, pkg, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{}`), Caller: "test"}); err != nil {
		t.Fatalf("after installing the approved version: %v", err)
	}
}

// TestStateChangesRaceCalls: calls running while the operator reloads, re-approves,
// disables and enables either run or are refused as disabled; none sees a half-made
// state (run with -race).
func TestStateChangesRaceCalls(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody}, nil)
	c, err := f.eng.Candidate(ctx, "echo", "")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 64)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := f.eng.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{}`), Caller: "test"})
				if err != nil && engine.ReasonOf(err) != engine.ReasonDisabled {
					errs <- err
					return
				}
			}
		}()
	}
	for range 20 {
		if _, err := f.eng.Reload(ctx, "test"); err != nil {
			t.Error(err)
		}
		if _, err := f.eng.Approve(ctx, c, nil, "test"); err != nil {
			t.Error(err)
		}
		if _, err := f.eng.Disable(ctx, "echo", "test", "race"); err != nil {
			t.Error(err)
		}
		if err := f.eng.Enable(ctx, "echo", "test"); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a call failed other than as disabled: %v (%s)", err, engine.ReasonOf(err))
	}
}
