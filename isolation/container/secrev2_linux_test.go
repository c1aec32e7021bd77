package container

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// linkWhileRunning starts a call with a read-write grant of rw at /out that makes
// /out/<name> a symbolic link to target (a host path) and then stays, and returns once
// the link is on the host, with a function that ends the call and waits for it.
func linkWhileRunning(t *testing.T, s *Sandbox, rw, name, target string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	c := hostileCall(`{"mode":"link","path":"/out/` + name + `","name":"` + target + `","sleep":"120s"}`)
	c.Grant.Files = []isolation.Mount{{Guest: "/out", Host: rw, Access: manifest.AccessReadWrite}}
	c.Limits.Timeout, c.Granted.Timeout = 150*time.Second, 150*time.Second
	go func() {
		defer close(done)
		s.Run(ctx, c)
	}()
	stop = func() {
		cancel()
		<-done
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		if fi, err := os.Lstat(filepath.Join(rw, name)); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return stop
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatal("the writing call never made its link")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReadGrantInsideRunningWriteGrant: one skill has a read-write grant of a
// directory, another a read-only grant of a directory inside it (a shared
// workspace). While a call of the first runs, it turns that inner directory into a
// symbolic link to a host directory no grant names; a call of the second made then
// must not get the host directory mounted (Docker follows a link in a bind mount's
// source on the host).
func TestReadGrantInsideRunningWriteGrant(t *testing.T) {
	s := newSandbox(t)
	base := t.TempDir()
	rw := filepath.Join(base, "workspace")
	outside := filepath.Join(base, "not-granted")
	must(t, os.Mkdir(rw, 0o777))
	must(t, os.Chmod(rw, 0o777))
	must(t, os.Mkdir(filepath.Join(rw, "inbox"), 0o755))
	must(t, os.Mkdir(outside, 0o755))
	must(t, os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("host-only-data"), 0o644))

	// The writer replaces inbox with a link to the host directory.
	must(t, os.Remove(filepath.Join(rw, "inbox")))
	stop := linkWhileRunning(t, s, rw, "inbox", outside)
	defer stop()

	reader := hostileCall(`{"mode":"read","path":"/in/secret.txt"}`)
	reader.Grant.Files = []isolation.Mount{{Guest: "/in", Host: filepath.Join(rw, "inbox"), Access: manifest.AccessRead}}
	reader.Limits.Timeout = 5 * time.Second
	res, err := s.Run(context.Background(), reader)
	if strings.Contains(string(res.Output), "host-only-data") {
		t.Errorf("a read-only grant inside a running call's read-write grant reached a host directory no grant names: %s", res.Output)
	}
	t.Logf("reader: %v %s", err, res.Output)
}

// TestWriteGrantInsideRunningWriteGrant: as above with a read-write grant of the inner
// directory: the second call must neither sweep the host directory the link points
// to (removing its symbolic links) nor get it mounted read-write.
func TestWriteGrantInsideRunningWriteGrant(t *testing.T) {
	s := newSandbox(t)
	base := t.TempDir()
	rw := filepath.Join(base, "workspace")
	outside := filepath.Join(base, "not-granted")
	must(t, os.Mkdir(rw, 0o777))
	must(t, os.Chmod(rw, 0o777))
	must(t, os.Mkdir(outside, 0o777))
	must(t, os.Chmod(outside, 0o777))
	must(t, os.Symlink("/etc/hostname", filepath.Join(outside, "precious-link")))

	stop := linkWhileRunning(t, s, rw, "inbox", outside)
	defer stop()

	writer := hostileCall(`{"mode":"write","path":"/in/pwned"}`)
	writer.Grant.Files = []isolation.Mount{{Guest: "/in", Host: filepath.Join(rw, "inbox"), Access: manifest.AccessReadWrite}}
	writer.Limits.Timeout = 5 * time.Second
	res, err := s.Run(context.Background(), writer)
	t.Logf("second call: %v %s", err, res.Output)
	if _, err := os.Lstat(filepath.Join(outside, "precious-link")); err != nil {
		t.Errorf("the sweep of a grant reached a host directory no grant names and removed its link: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(outside, "pwned")); err == nil {
		t.Errorf("a call wrote into a host directory no grant names")
	}
}

// TestClaimTrail: a path that leads through a running call's read-write directory
// conflicts with it, also through an operator's link into it; paths beside it or
// above it do not.
func TestClaimTrail(t *testing.T) {
	base := t.TempDir()
	rw := filepath.Join(base, "workspace")
	must(t, os.MkdirAll(filepath.Join(rw, "inbox"), 0o755))
	must(t, os.MkdirAll(filepath.Join(base, "other"), 0o755))
	must(t, os.Symlink(filepath.Join(rw, "inbox"), filepath.Join(base, "alias")))
	writer := &claim{rw: []string{canonical(rw)}, trail: trail(rw)}
	for dir, want := range map[string]bool{
		filepath.Join(rw, "inbox"):         true,
		filepath.Join(base, "alias"):       true,
		base + "/other/../workspace/inbox": true,
		filepath.Join(base, "other"):       false,
		base:                               false,
		rw:                                 false,
	} {
		reader := &claim{trail: trail(dir)}
		if got := writer.conflicts(reader); got != want {
			t.Errorf("a read-only grant of %s conflicts with a running read-write grant of %s: %v, want %v (trail %q)", dir, rw, got, want, reader.trail)
		}
	}
}

// TestReadGrantInsideOwnWriteGrant: a call granted a directory read-write and a
// directory inside it read-only runs (its own grants never wait for each other).
func TestReadGrantInsideOwnWriteGrant(t *testing.T) {
	s := newSandbox(t)
	rw := t.TempDir()
	must(t, os.Chmod(rw, 0o777))
	must(t, os.Mkdir(filepath.Join(rw, "in"), 0o755))
	must(t, os.WriteFile(filepath.Join(rw, "in", "x.txt"), []byte("inside"), 0o644))
	c := hostileCall(`{"mode":"read","path":"/in/x.txt"}`)
	c.Grant.Files = []isolation.Mount{
		{Guest: "/out", Host: rw, Access: manifest.AccessReadWrite},
		{Guest: "/in", Host: filepath.Join(rw, "in"), Access: manifest.AccessRead},
	}
	res, err := s.Run(context.Background(), c)
	if err != nil || !strings.Contains(string(res.Output), "inside") {
		t.Fatalf("Run: %v, output %s", err, res.Output)
	}
}
