package container

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// notInert lists what under dir is not plain data for the host: links, special
// files, setuid or setgid files, and regular files with more than one link (except
// the names in allowLinks).
func notInert(t *testing.T, dir string, allowLinks map[string]bool) []string {
	t.Helper()
	var bad []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			bad = append(bad, rel+" is a symbolic link to "+target)
		case fi.IsDir():
		case !fi.Mode().IsRegular():
			bad = append(bad, rel+" is a "+fi.Mode().Type().String()+" file")
		case fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0:
			bad = append(bad, rel+" is setuid or setgid: "+fi.Mode().String())
		case fi.Sys().(*syscall.Stat_t).Nlink > 1 && !allowLinks[rel]:
			bad = append(bad, rel+" is a hard link")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return bad
}

// TestGrantInert: what a skill plants in a read-write grant (links out of the grant,
// a hard link, setuid and setgid files, a FIFO, a socket, also in a subdirectory) is
// not a link, a special file or a setuid file on the host after the call; the
// operator's own files, hard links included, are kept.
func TestGrantInert(t *testing.T) {
	s := newSandbox(t)
	rw := t.TempDir()
	if err := os.Chmod(rw, 0o777); err != nil { // the skill runs as 65534
		t.Fatal(err)
	}
	for name, data := range map[string]string{"keep.txt": "operator", "op-a": "linked"} {
		if err := os.WriteFile(filepath.Join(rw, name), []byte(data), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(rw, "op-a"), filepath.Join(rw, "op-b")); err != nil {
		t.Fatal(err)
	}
	call := hostileCall(`{"mode":"plant","path":"/out"}`)
	call.Grant.Files = []isolation.Mount{{Guest: "/out", Host: rw, Access: manifest.AccessReadWrite}}
	res, err := s.Run(context.Background(), call)
	if err != nil {
		t.Fatalf("Run: %v; logs %q", err, res.Logs)
	}
	out := decode(t, res.Output)
	t.Logf("planted: %v", out)
	// The guest could plant them all: the sweep, not a refusal inside, is under test.
	for _, k := range []string{"symlink", "symlink-dir", "suid-chmod", "suid-create", "hardlink", "fifo", "sub-symlink", "sub-suid"} {
		if out[k] != "" {
			t.Errorf("planting %s failed inside the container: %v", k, out[k])
		}
	}
	if bad := notInert(t, rw, map[string]bool{"op-a": true, "op-b": true}); len(bad) > 0 {
		t.Errorf("after the call the host directory holds:\n  %s", strings.Join(bad, "\n  "))
	}
	for name, want := range map[string]string{"keep.txt": "operator", "op-a": "linked", "op-b": "linked"} {
		if b, err := os.ReadFile(filepath.Join(rw, name)); err != nil || string(b) != want {
			t.Errorf("operator file %s = %q, %v; want %q", name, b, err, want)
		}
	}
	// The setuid file is kept as data, without its bit.
	if fi, err := os.Lstat(filepath.Join(rw, "suid")); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o755 {
		t.Errorf("planted setuid file after the sweep: %v %v, want a plain 0755 file", fi, err)
	}
}

// keepNone keeps no hard link: every one is the call's.
func keepNone(string, uint64) bool { return false }

// TestSweepDeepAndRacing: a tree deeper than the sweep keeps open is still swept
// whole, where it is, and a guest racing the sweep by swapping a directory for a link to outside
// the grant never makes it touch anything outside.
func TestSweepDeepAndRacing(t *testing.T) {
	dir := t.TempDir()
	deep := dir
	for i := 0; i < 3*maxOpenDirs; i++ {
		deep = filepath.Join(deep, "d")
	}
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "d", "d"), deep} {
		if err := os.Symlink("/etc/shadow", filepath.Join(p, "link")); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "suid"), nil, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(p, "suid"), fs.ModeSetuid|0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := sweepGrant(dir, keepNone); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if bad := notInert(t, dir, nil); len(bad) > 0 {
		t.Errorf("after the sweep of a deep tree:\n  %s", strings.Join(bad, "\n  "))
	}
	if names := dirNames(t, dir); strings.Join(names, " ") != "d" {
		t.Errorf("the sweep rearranged the tree: its top level holds %q, want just d", names)
	}
	if fi, err := os.Lstat(filepath.Join(deep, "suid")); err != nil || fi.Mode() != 0o755 {
		t.Errorf("the deepest file after the sweep: %v %v, want a plain 0755 file where it was", fi, err)
	}

	// Outside the grant: a setuid file and a link that the sweep must never change.
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("host"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(victim, fs.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(outside, "hostlink")); err != nil {
		t.Fatal(err)
	}
	grant := t.TempDir()
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the racing guest
		defer wg.Done()
		sub, moved := filepath.Join(grant, "sub"), filepath.Join(grant, "moved")
		for i := 0; !stop.Load(); i++ {
			_ = os.RemoveAll(moved)
			_ = os.Remove(sub)
			_ = os.Mkdir(sub, 0o755)
			_ = os.WriteFile(filepath.Join(sub, "victim"), nil, 0o755)
			_ = os.Chmod(filepath.Join(sub, "victim"), fs.ModeSetuid|0o755)
			_ = os.Symlink("/etc/passwd", filepath.Join(sub, "hostlink"))
			_ = os.Rename(sub, moved)
			_ = os.Symlink(outside, sub) // sub now leads outside
		}
	}()
	for i := 0; i < 200; i++ {
		_ = sweepGrant(grant, keepNone) // errors expected from the race
	}
	stop.Store(true)
	wg.Wait()
	if fi, err := os.Lstat(victim); err != nil || fi.Mode()&fs.ModeSetuid == 0 {
		t.Errorf("a file outside the grant was changed by the sweep: %v %v", fi, err)
	}
	if _, err := os.Readlink(filepath.Join(outside, "hostlink")); err != nil {
		t.Errorf("a link outside the grant was removed by the sweep: %v", err)
	}
	if err := sweepGrant(grant, keepNone); err != nil {
		t.Fatalf("final sweep: %v", err)
	}
	if bad := notInert(t, grant, nil); len(bad) > 0 {
		t.Errorf("after the race and a last sweep:\n  %s", strings.Join(bad, "\n  "))
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
