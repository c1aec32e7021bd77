package container

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// TestCrossedGrantsDoNotDeadlock: two skills share a workspace the other way round,
// each writing its own directory and reading one inside the other's (skill A: rw a,
// read b/in; skill B: rw b, read a/in). Calls of both made at once run one after the
// other. A call that held its read-write directories and then waited, in prepare, for
// the other's to be released was a deadlock when the other did the same: both waited
// until their time limit.
//
// The interleaving is forced with a claim of the test's own (another running call's
// read-write directory c, which both read-only paths lead through, by an operator's
// links): both calls wait for it before it ends.
func TestCrossedGrantsDoNotDeadlock(t *testing.T) {
	s := newSandbox(t)
	base := t.TempDir()
	a, b, c := filepath.Join(base, "a"), filepath.Join(base, "b"), filepath.Join(base, "c")
	for _, d := range []string{a, b} {
		must(t, os.MkdirAll(filepath.Join(d, "in"), 0o755))
		must(t, os.Chmod(d, 0o777))
		must(t, os.WriteFile(filepath.Join(d, "in", "x.txt"), []byte("from "+filepath.Base(d)), 0o644))
	}
	must(t, os.Mkdir(c, 0o755))
	// An operator's links: A reads b/in through c/la, B a/in through c/lb.
	must(t, os.Symlink("../b/in", filepath.Join(c, "la")))
	must(t, os.Symlink("../a/in", filepath.Join(c, "lb")))

	blocker := &claim{rw: []string{canonical(c)}}
	release, _, err := s.grants.hold(context.Background(), func() *claim { return blocker }, nil, true)
	must(t, err)

	call := func(rw, ro string) isolation.Call {
		k := hostileCall(`{"mode":"read","path":"/in/x.txt"}`)
		k.Grant.Files = []isolation.Mount{
			{Guest: "/out", Host: rw, Access: manifest.AccessReadWrite},
			{Guest: "/in", Host: ro, Access: manifest.AccessRead},
		}
		k.Limits.Timeout, k.Granted.Timeout = 60*time.Second, 60*time.Second
		return k
	}
	type outcome struct {
		res isolation.Result
		err error
	}
	var wg sync.WaitGroup
	var ra, rb outcome
	wg.Add(2)
	go func() {
		defer wg.Done()
		ra.res, ra.err = s.Run(context.Background(), call(a, filepath.Join(c, "la")))
	}()
	go func() {
		defer wg.Done()
		rb.res, rb.err = s.Run(context.Background(), call(b, filepath.Join(c, "lb")))
	}()
	// Both wait for the blocker (holding their read-write directories, or not yet).
	waitFor(t, "both calls waiting", func() bool {
		s.grants.mu.Lock()
		defer s.grants.mu.Unlock()
		return s.grants.waiting == 2
	})
	release()
	wg.Wait()
	if ra.err != nil || !strings.Contains(string(ra.res.Output), "from b") {
		t.Errorf("A: %v %s", ra.err, ra.res.Output)
	}
	if rb.err != nil || !strings.Contains(string(rb.res.Output), "from a") {
		t.Errorf("B: %v %s", rb.err, rb.res.Output)
	}
}

// TestMountedEndsTheMountingTrail: a call's read-only paths hold off a call writing
// where they lead only until its mounts are made.
func TestMountedEndsTheMountingTrail(t *testing.T) {
	var g grantGuard
	base := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(base, "w", "in"), 0o755))
	reader := &claim{rw: []string{filepath.Join(base, "out")}, mounting: trail(filepath.Join(base, "w", "in"))}
	release, _, err := g.hold(context.Background(), func() *claim { return reader }, nil, true)
	must(t, err)
	defer release()
	writer := func() *claim { return &claim{rw: []string{filepath.Join(base, "w")}} }
	if _, _, err := g.hold(context.Background(), writer, nil, false); err != errGrantBusy {
		t.Fatalf("a writer of a directory a call's read-only path leads through, before its mounts: %v", err)
	}
	g.mounted(reader)
	rel, _, err := g.hold(context.Background(), writer, nil, false)
	if err != nil {
		t.Fatalf("after its mounts: %v", err)
	}
	rel()
}
