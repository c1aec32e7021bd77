package container

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// The uid the child-process tests run the "server" as, as the operator guide's
// User=skillbox does: not root.
const serverUID = 1000

// Environment of a child test process (see runAsServer).
const (
	childDirEnv   = "SKILLBOX_TEST_CHILD_DIR"   // the grant the child works on
	childImageEnv = "SKILLBOX_TEST_CHILD_IMAGE" // the hostile image, for TestMain
)

// childMain runs the tests of a child process: the parent built the image it uses.
func childMain(m *testing.M) int {
	if id := os.Getenv(childImageEnv); id != "" {
		cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			fmt.Fprintln(os.Stderr, "docker client:", err)
			return 1
		}
		defer cli.Close()
		env.cli, env.hostileID = cli, id
	}
	return m.Run()
}

// runAsServer starts this test binary's test named test as uid serverUID, gid
// serverUID and the extra groups, with the grant dir in its environment, from a copy
// of the binary any user can run. It needs root.
func runAsServer(t *testing.T, test, dir string, groups []uint32, extraEnv ...string) *exec.Cmd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: playing both the server's and the skill's uid needs root")
	}
	bin := publicTemp(t, "skillbox-test-bin-")
	exe := filepath.Join(bin, "container.test")
	data, err := os.ReadFile(os.Args[0])
	must(t, err)
	must(t, os.WriteFile(exe, data, 0o755))
	cmd := exec.Command(exe, "-test.run=^"+test+"$", "-test.count=1")
	cmd.Dir = bin
	cmd.Env = append(os.Environ(), append([]string{childDirEnv + "=" + dir}, extraEnv...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: serverUID, Gid: serverUID, Groups: groups}}
	return cmd
}

// publicTemp makes a directory every user can enter, removed at the end of the test
// (t.TempDir's parent is 0700).
func publicTemp(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	must(t, err)
	t.Cleanup(func() {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o755)
			}
			return nil
		})
		os.RemoveAll(dir)
	})
	must(t, os.Chmod(dir, 0o755))
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// plantAs makes in dir what a guest running as uid leaves: d/ holding a link to
// /etc/shadow, a setuid and setgid file and a FIFO, then made read-only; sealed/
// holding a link, made unreadable; and the grant itself made read-only if it is the
// guest's.
func plantAs(t *testing.T, dir string, uid int) {
	t.Helper()
	for _, sub := range []string{"d", "sealed"} {
		d := filepath.Join(dir, sub)
		must(t, os.Mkdir(d, 0o755))
		must(t, os.Symlink("/etc/shadow", filepath.Join(d, "link-to-shadow")))
		must(t, os.WriteFile(filepath.Join(d, "suid"), []byte("#!/bin/sh\nid\n"), 0o755))
		must(t, syscall.Mkfifo(filepath.Join(d, "fifo"), 0o666))
		for _, p := range []string{d, filepath.Join(d, "link-to-shadow"), filepath.Join(d, "suid"), filepath.Join(d, "fifo")} {
			must(t, os.Lchown(p, uid, uid))
		}
		must(t, os.Chmod(filepath.Join(d, "suid"), 0o755|os.ModeSetuid|os.ModeSetgid))
	}
	must(t, os.Chmod(filepath.Join(dir, "d"), 0o555))
	must(t, os.Chmod(filepath.Join(dir, "sealed"), 0))
	if st, err := os.Stat(dir); err == nil && int(st.Sys().(*syscall.Stat_t).Uid) == uid {
		must(t, os.Chmod(dir, 0o555))
	}
}

// modeOf is the permission and special bits of p.
func modeOf(t *testing.T, p string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	must(t, err)
	return fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// TestSweepAsNonRootServer: with the server not root, as the operator guide runs it,
// what a skill running as the server's uid leaves in its grant (a link to
// /etc/shadow, a setuid file and a FIFO inside a directory it made read-only, another
// inside one it made unreadable, the grant made read-only) is cleaned by the sweep,
// and the modes the skill chose are put back. What a skill of another uid leaves
// cannot be cleaned: the sweep says what is left, the grant is quarantined (the next
// call is refused, NOT_GRANTED, naming it), and the quarantine ends once the
// operator has removed the leftovers.
func TestSweepAsNonRootServer(t *testing.T) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		sweepChild(dir)
		return
	}
	t.Run("skill as the server's uid", func(t *testing.T) {
		grant := filepath.Join(publicTemp(t, "skillbox-sweep-"), "grant")
		must(t, os.Mkdir(grant, 0o755))
		must(t, os.Chown(grant, serverUID, serverUID)) // the operator's, given to the server's user
		plantAs(t, grant, serverUID)
		out, err := runAsServer(t, "TestSweepAsNonRootServer", grant, nil, "SKILLBOX_TEST_CHILD_MODE=sweep").CombinedOutput()
		t.Logf("server (uid %d):\n%s", serverUID, out)
		if err != nil || !strings.Contains(string(out), "sweep: ok") {
			t.Errorf("the sweep as uid %d did not report ok (exit: %v)", serverUID, err)
		}
		if bad := notInert(t, grant, nil); len(bad) > 0 {
			t.Errorf("left in the grant after the sweep:\n  %s", strings.Join(bad, "\n  "))
		}
		for rel, want := range map[string]fs.FileMode{".": 0o555, "d": 0o555, "sealed": 0, "d/suid": 0o755} {
			if got := modeOf(t, filepath.Join(grant, rel)); got != want {
				t.Errorf("mode of %s after the sweep = %v, want %v (the skill's, without setuid)", rel, got, want)
			}
		}
	})
	t.Run("skill as another uid", func(t *testing.T) {
		grant := filepath.Join(publicTemp(t, "skillbox-sweep-"), "grant")
		must(t, os.Mkdir(grant, 0o777))
		must(t, os.Chmod(grant, 0o777))
		must(t, os.Chown(grant, serverUID, serverUID))
		plantAs(t, grant, nobodyID)
		cmd := runAsServer(t, "TestSweepAsNonRootServer", grant, nil, "SKILLBOX_TEST_CHILD_MODE=quarantine")
		stdin, err := cmd.StdinPipe()
		must(t, err)
		stdout, err := cmd.StdoutPipe()
		must(t, err)
		cmd.Stderr = cmd.Stdout
		must(t, cmd.Start())
		got := map[string]string{}
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			t.Logf("server: %s", line)
			k, v, _ := strings.Cut(line, ": ")
			got[k] = v
			if k == "waiting" { // the operator removes what was left
				for _, d := range []string{"d", "sealed"} {
					must(t, os.Chmod(filepath.Join(grant, d), 0o755))
					must(t, os.RemoveAll(filepath.Join(grant, d)))
				}
				_, _ = io.WriteString(stdin, "fixed\n")
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("server process: %v", err)
		}
		after := got["after the call"]
		if !strings.HasPrefix(after, string(isolation.ReasonNotGranted)) || !strings.Contains(after, grant) ||
			!strings.Contains(after, "d/link-to-shadow") || !strings.Contains(after, "permission denied") {
			t.Errorf("the failed sweep's error = %q, want NOT_GRANTED naming %s and d/link-to-shadow", after, grant)
		}
		if next := got["next call"]; !strings.HasPrefix(next, string(isolation.ReasonNotGranted)) ||
			!strings.Contains(next, "quarantined") || !strings.Contains(next, grant) || !strings.Contains(next, "link-to-shadow") {
			t.Errorf("the next call of a quarantined grant = %q, want NOT_GRANTED, quarantined, naming the directory and what is left", next)
		}
		if fixed := got["after the fix"]; fixed != "ok" {
			t.Errorf("after the operator removed the leftovers, the next call = %q, want ok", fixed)
		}
	})
}

// sweepChild is the server's side of TestSweepAsNonRootServer, run as serverUID.
func sweepChild(dir string) {
	report := func(what string, err error) {
		var ie *isolation.Error
		switch {
		case err == nil:
			fmt.Printf("%s: ok\n", what)
		case errors.As(err, &ie):
			fmt.Printf("%s: %s %s\n", what, ie.Reason, strings.ReplaceAll(ie.Error(), "\n", " | "))
		default:
			fmt.Printf("%s: %s\n", what, strings.ReplaceAll(err.Error(), "\n", " | "))
		}
	}
	if os.Getenv("SKILLBOX_TEST_CHILD_MODE") == "sweep" {
		report("sweep", sweepGrant(dir, keepNone))
		return
	}
	s := &Sandbox{rwUser: rwUser()}
	grant := func() []*rwGrant { return []*rwGrant{{host: dir, canon: canonical(dir), keep: map[string]uint64{}}} }
	if err := s.closeGrants(grant()); err != nil {
		report("after the call", err)
	} else {
		report("after the call", nil)
	}
	report("next call", s.openGrants(grant(), nil))
	fmt.Println("waiting: for the operator")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	report("after the fix", s.openGrants(grant(), nil))
}

// TestGrantsKeepDeepOperatorTree: an operator's tree deeper than the directories the
// sweep keeps open stays where it is, its hard links kept however deep, while a hard
// link a call adds that deep is removed.
func TestGrantsKeepDeepOperatorTree(t *testing.T) {
	dir := t.TempDir()
	deep := dir
	for i := 0; i < 2*maxOpenDirs+10; i++ {
		deep = filepath.Join(deep, "op")
	}
	must(t, os.MkdirAll(deep, 0o755))
	must(t, os.WriteFile(filepath.Join(deep, "a"), []byte("operator"), 0o644))
	must(t, os.Link(filepath.Join(deep, "a"), filepath.Join(deep, "b")))
	s := &Sandbox{}
	rw := []*rwGrant{{host: dir, canon: canonical(dir)}}
	if err := s.openGrants(rw, nil); err != nil {
		t.Fatalf("before the call: %v", err)
	}
	// The call: a hard link of its own, as deep.
	must(t, os.WriteFile(filepath.Join(deep, "mine"), nil, 0o644))
	must(t, os.Link(filepath.Join(deep, "mine"), filepath.Join(deep, "mine2")))
	if err := s.closeGrants(rw); err != nil {
		t.Fatalf("after the call: %v", err)
	}
	if names := dirNames(t, dir); strings.Join(names, " ") != "op" {
		t.Errorf("the operator's tree was rearranged: its top level holds %q, want just op", names)
	}
	for _, n := range []string{"a", "b"} {
		if b, err := os.ReadFile(filepath.Join(deep, n)); err != nil || string(b) != "operator" {
			t.Errorf("the operator's deep hard link %s: %q %v", n, b, err)
		}
	}
	if bad := notInert(t, dir, map[string]bool{rel(t, dir, deep, "a"): true, rel(t, dir, deep, "b"): true}); len(bad) > 0 {
		t.Errorf("after the call the grant holds:\n  %s", strings.Join(bad, "\n  "))
	}
}

func rel(t *testing.T, base string, elem ...string) string {
	r, err := filepath.Rel(base, filepath.Join(elem...))
	must(t, err)
	return r
}

// TestGrantGuard: read-write directories that overlap (the same, one inside the
// other, or the same through a symbolic link) are held by one call at a time; others
// are not held up.
func TestGrantGuard(t *testing.T) {
	base := t.TempDir()
	data := filepath.Join(base, "data")
	must(t, os.MkdirAll(filepath.Join(data, "sub"), 0o755))
	must(t, os.MkdirAll(filepath.Join(base, "other"), 0o755))
	must(t, os.Symlink(data, filepath.Join(base, "alias")))
	var g grantGuard
	release, err := g.acquire(context.Background(), []string{canonical(data)})
	must(t, err)
	for _, d := range []string{data, filepath.Join(data, "sub"), base, filepath.Join(base, "alias")} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		if r, err := g.acquire(ctx, []string{canonical(d)}); err == nil {
			r()
			t.Errorf("%s was acquired while %s is held", d, data)
		}
		cancel()
	}
	r, err := g.acquire(context.Background(), []string{canonical(filepath.Join(base, "other"))})
	if err != nil {
		t.Fatalf("a directory apart from the held one: %v", err)
	}
	r()
	done := make(chan error, 1)
	go func() {
		r, err := g.acquire(context.Background(), []string{canonical(filepath.Join(data, "sub"))})
		if err == nil {
			r()
		}
		done <- err
	}()
	release()
	if err := <-done; err != nil {
		t.Errorf("waiting for a released directory: %v", err)
	}
}

// TestGrantCallsSerialized: a second call of the same read-write grant does not start
// while the first runs, so nothing it plants can follow the first call's sweep; it
// waits within its own time limit.
func TestGrantCallsSerialized(t *testing.T) {
	s := newSandbox(t)
	rw := t.TempDir()
	must(t, os.Chmod(rw, 0o777))
	grant := []isolation.Mount{{Guest: "/out", Host: rw, Access: manifest.AccessReadWrite}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan error, 1)
	slow := hostileCall(`{"mode":"sleep","sleep":"60s"}`)
	slow.Grant.Files = grant
	slow.Limits.Timeout = 90 * time.Second
	go func() {
		_, err := s.Run(ctx, slow)
		first <- err
	}()
	// Wait until the first call's container runs.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(leftoversOf(t, s), "running") {
		if time.Now().After(deadline) {
			t.Fatal("the first call's container never ran")
		}
		time.Sleep(100 * time.Millisecond)
	}
	second := hostileCall(`{"mode":"plant","path":"/out"}`)
	second.Grant.Files = grant
	second.Limits.Timeout = 3 * time.Second
	res, err := s.Run(context.Background(), second)
	if isolation.ReasonOf(err) != isolation.ReasonTimeout {
		t.Errorf("a second call of the grant while the first runs: %v (output %q), want TIMEOUT", err, res.Output)
	}
	if names := dirNames(t, rw); len(names) > 0 {
		t.Errorf("the second call ran: the grant holds %q", names)
	}
	cancel()
	if err := <-first; isolation.ReasonOf(err) != isolation.ReasonCanceled {
		t.Errorf("the first call: %v, want CANCELED", err)
	}
}

func leftoversOf(t *testing.T, s *Sandbox) string {
	return leftovers(context.Background(), env.cli, LabelInstance+"="+s.Instance())
}

// TestGrantInertAsNonRootServer: a server that is not root (uid 1000 in the docker
// group, as the operator guide runs it) runs a call with a read-write grant as its
// own uid:gid, and after the call the grant holds no links, special or setuid files,
// also where the skill made directories read-only or unreadable, and everything in
// it is the server's. A directory the skill can write but the server cannot clean
// (the operator's, writable by others but not by the server's group) fails the call
// NOT_GRANTED naming what was left, and the grant's next call is refused.
func TestGrantInertAsNonRootServer(t *testing.T) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		grantChild(t, dir)
		return
	}
	needEngine(t)
	docker, err := user.LookupGroup("docker")
	if err != nil {
		t.Skipf("SKIPPED: no docker group to run the server in: %v", err)
	}
	dgid, _ := strconv.Atoi(docker.Gid)
	rw := filepath.Join(publicTemp(t, "skillbox-grant-"), "rw")
	must(t, os.Mkdir(rw, 0o755))
	for name, data := range map[string]string{"keep.txt": "operator", "op-a": "linked"} {
		must(t, os.WriteFile(filepath.Join(rw, name), []byte(data), 0o644))
	}
	must(t, os.Link(filepath.Join(rw, "op-a"), filepath.Join(rw, "op-b")))
	trap := filepath.Join(rw, "trap") // others may write, the server's groups may not
	must(t, os.Mkdir(trap, 0o757))
	must(t, os.Chmod(trap, 0o757))
	must(t, os.Chown(trap, 0, dgid))
	for _, p := range []string{rw, filepath.Join(rw, "keep.txt"), filepath.Join(rw, "op-a")} {
		must(t, os.Chown(p, serverUID, serverUID))
	}
	cmd := runAsServer(t, "TestGrantInertAsNonRootServer", rw, []uint32{uint32(dgid)}, childImageEnv+"="+env.hostileID)
	out, err := cmd.CombinedOutput()
	t.Logf("server (uid %d):\n%s", serverUID, out)
	if err != nil {
		t.Fatalf("server process: %v", err)
	}
	var got map[string]string
	for _, line := range strings.Split(string(out), "\n") {
		if j, ok := strings.CutPrefix(line, "RESULT "); ok {
			must(t, json.Unmarshal([]byte(j), &got))
		}
	}
	if got == nil {
		t.Fatal("the server process reported nothing")
	}
	if want := fmt.Sprintf("%d:%d", serverUID, serverUID); got["id"] != want {
		t.Errorf("a read-write call ran as %q, want the server's %s", got["id"], want)
	}
	if got["plant"] != "ok" {
		t.Errorf("the planting call: %s", got["plant"])
	}
	if p := got["planted"]; !strings.Contains(p, `"locked-symlink":""`) || !strings.Contains(p, `"sealed-chmod":""`) || !strings.Contains(p, `"grant-chmod":""`) {
		t.Errorf("the skill could not plant everything it should: %s", p)
	}
	if r := got["trap"]; !strings.HasPrefix(r, string(isolation.ReasonNotGranted)) || !strings.Contains(r, "trap/link-to-host-shadow") {
		t.Errorf("a call leaving what the server cannot remove: %q, want NOT_GRANTED naming trap/link-to-host-shadow", r)
	}
	if r := got["next"]; !strings.HasPrefix(r, string(isolation.ReasonNotGranted)) || !strings.Contains(r, "quarantined") || !strings.Contains(r, rw) {
		t.Errorf("the next call of the quarantined grant: %q, want NOT_GRANTED, quarantined, naming %s", r, rw)
	}
	if got["left"] != "" {
		t.Errorf("left behind by the server: %s", got["left"])
	}
	// Outside the trap the grant is inert, everything in it the server's.
	err = filepath.WalkDir(rw, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == trap {
			return fs.SkipDir
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != serverUID {
			t.Errorf("%s belongs to uid %d, not the server's", p, st.Uid)
		}
		return nil
	})
	must(t, err)
	var bad []string
	for _, b := range notInert(t, rw, map[string]bool{"op-a": true, "op-b": true}) {
		if !strings.HasPrefix(b, "trap/") {
			bad = append(bad, b)
		}
	}
	if len(bad) > 0 {
		t.Errorf("after the calls the host directory holds:\n  %s", strings.Join(bad, "\n  "))
	}
	for name, want := range map[string]string{"keep.txt": "operator", "op-a": "linked", "op-b": "linked"} {
		if b, err := os.ReadFile(filepath.Join(rw, name)); err != nil || string(b) != want {
			t.Errorf("operator file %s = %q, %v; want %q", name, b, err, want)
		}
	}
	for rel, want := range map[string]fs.FileMode{".": 0o555, "locked": 0o555, "sealed": 0, "suid": 0o755} {
		if got := modeOf(t, filepath.Join(rw, rel)); got != want {
			t.Errorf("mode of %s = %v, want %v (the skill's, without setuid)", rel, got, want)
		}
	}
}

// grantChild is the server's side of TestGrantInertAsNonRootServer, run as serverUID.
func grantChild(t *testing.T, dir string) {
	s, err := New(context.Background(), withTestRuntime([]Option{WithoutReap(), WithoutHostFirewallUnsafe()})...)
	if err != nil {
		t.Fatalf("New as uid %d: %v", os.Getuid(), err)
	}
	got := map[string]string{}
	call := func(input string) (isolation.Result, error) {
		c := hostileCall(input)
		c.Grant.Files = []isolation.Mount{{Guest: "/out", Host: dir, Access: manifest.AccessReadWrite}}
		return s.Run(context.Background(), c)
	}
	say := func(err error) string {
		if err == nil {
			return "ok"
		}
		return string(isolation.ReasonOf(err)) + " " + err.Error()
	}
	if res, err := call(`{"mode":"id"}`); err != nil {
		got["id"] = say(err)
	} else {
		var id struct{ UID, GID int }
		_ = json.Unmarshal(res.Output, &id)
		got["id"] = fmt.Sprintf("%d:%d", id.UID, id.GID)
	}
	res, err := call(`{"mode":"plant","path":"/out"}`)
	got["plant"], got["planted"] = say(err), string(res.Output)
	_, err = call(`{"mode":"plant","path":"/out/trap"}`)
	got["trap"] = say(err)
	_, err = call(`{"mode":"id"}`)
	got["next"] = say(err)
	if err := s.Close(context.Background()); err != nil {
		got["left"] = "Close: " + err.Error()
	}
	if left := leftovers(context.Background(), env.cli, LabelInstance+"="+s.Instance()); left != "" {
		got["left"] += left
	}
	b, _ := json.Marshal(got)
	fmt.Printf("RESULT %s\n", b)
}
