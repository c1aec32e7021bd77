package transport

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

const umaskChildEnv = "SKILLBOX_TEST_UMASK_CHILD"

// TestUnixSocketPrivateUnderUmask000: under umask 000, in a directory others can enter,
// the socket is never reachable by another uid, not even for an instant: it never
// appears at its path with a mode other than 0600 (no chmod after it appears: the kernel
// reports every change of mode), and every directory Listen creates is 0700 when it
// appears. The umask is the child process's own, so nothing else in this test binary
// sees it.
func TestUnixSocketPrivateUnderUmask000(t *testing.T) {
	if dir := os.Getenv(umaskChildEnv); dir != "" {
		umaskChild(t, dir)
		return
	}
	dir := shortDir(t)
	if err := os.Chmod(dir, 0o755); err != nil { // like /run or a shared directory
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestUnixSocketPrivateUnderUmask000$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), umaskChildEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil || !bytes.Contains(out, []byte("--- PASS")) {
		t.Fatalf("child under umask 000: %v\n%s", err, out)
	}
}

// fsEvent is one inotify event in the watched directory, with the mode its file had
// when the event was read.
type fsEvent struct {
	name string
	mask uint32
	mode fs.FileMode // 0 if it was gone
}

func umaskChild(t *testing.T, dir string) {
	syscall.Umask(0)
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		t.Skipf("inotify: %v", err)
	}
	defer syscall.Close(fd)
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE|syscall.IN_ATTRIB|syscall.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}
	events := make(chan []fsEvent, 1)
	go func() { events <- watch(fd, dir) }()

	sock := filepath.Join(dir, "s.sock")
	home := filepath.Join(dir, "home")
	lis, _, err := Listen(context.Background(), ServerConfig{Addr: "unix://" + sock})
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	lis2, _, err := Listen(context.Background(), ServerConfig{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	defer lis2.Close()
	// A marker file ends the watch.
	if err := os.WriteFile(filepath.Join(dir, "done"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{sock, filepath.Join(home, SocketName)} {
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s after Listen: %v %v, want a 0600 socket", p, fi.Mode(), err)
		}
	}
	if fi, err := os.Stat(home); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("home created with %v (%v), want 0700", fi.Mode(), err)
	}
	seen := false
	for _, e := range <-events {
		t.Logf("event %s %#x mode %v", e.name, e.mask, e.mode)
		switch {
		case e.name == "s.sock" && e.mask&syscall.IN_ATTRIB != 0:
			t.Fatalf("the socket's attributes changed after it appeared at its path (a chmod): it was reachable before")
		case e.name == "s.sock":
			seen = true
			if e.mode.Perm() != 0o600 && e.mode != 0 {
				t.Fatalf("the socket appeared with mode %v", e.mode)
			}
		case e.mask&syscall.IN_ISDIR != 0 && e.mode != 0 && e.mode.Perm() != 0o700:
			t.Fatalf("directory %s appeared with mode %v, want 0700", e.name, e.mode)
		}
	}
	if !seen {
		t.Fatal("no event for the socket: the watch saw nothing")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 { // s.sock, home, done
		t.Fatalf("Listen left %d entries in %s", len(entries), dir)
	}
}

// watch reads inotify events on dir until a file named "done" is created.
func watch(fd int, dir string) []fsEvent {
	var out []fsEvent
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.Read(fd, buf)
		if err != nil {
			return out
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
			name := strings.TrimRight(string(nameBytes), "\x00")
			off += syscall.SizeofInotifyEvent + int(ev.Len)
			if name == "done" {
				return out
			}
			e := fsEvent{name: name, mask: ev.Mask}
			if fi, err := os.Lstat(filepath.Join(dir, name)); err == nil {
				e.mode = fi.Mode()
			}
			out = append(out, e)
		}
	}
}
