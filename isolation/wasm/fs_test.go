package wasm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// fsFixture is a granted directory inside a parent holding a secret, with links that
// point out of the grant every way a guest could try.
func fsFixture(t *testing.T) (base, granted string) {
	t.Helper()
	base = t.TempDir()
	granted = filepath.Join(base, "granted")
	must(t, os.Mkdir(granted, 0o755))
	must(t, os.WriteFile(filepath.Join(base, "secret.txt"), []byte("top secret"), 0o644))
	must(t, os.WriteFile(filepath.Join(granted, "hello.txt"), []byte("hello"), 0o644))
	for link, target := range map[string]string{
		"abs-link":     filepath.Join(base, "secret.txt"),
		"rel-link":     "../secret.txt",
		"updir":        "..",
		"absdir":       base,
		"abs-dangling": filepath.Join(base, "created-abs.txt"),
		"rel-dangling": "../created-rel.txt",
		"inner-link":   "hello.txt",
	} {
		must(t, os.Symlink(target, filepath.Join(granted, link)))
	}
	return base, granted
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The escape module opens paths with raw WASI path_open, so nothing guest-side cleans
// them: every `..` and symlink reaches the host file system.
func TestFileEscapes(t *testing.T) {
	sb := newSandbox(t)
	base, granted := fsFixture(t)
	skill := watSkill(t, "escape")
	call := func(access manifest.Access, input string) (isolation.Result, error) {
		return sb.Run(context.Background(), isolation.Call{
			ID: "fs", Skill: skill, Input: []byte(input), Limits: limits(),
			Grant: isolation.Grant{Files: []isolation.Mount{{Guest: "/data", Host: granted, Access: access}}},
		})
	}
	for _, access := range []manifest.Access{manifest.AccessRead, manifest.AccessReadWrite} {
		t.Run(string(access), func(t *testing.T) {
			for _, p := range []string{"hello.txt", "inner-link", "./hello.txt"} {
				res, err := call(access, "r"+p)
				if err != nil || string(res.Output) != "hello" {
					t.Errorf("read %s: %q, %v", p, res.Output, err)
				}
			}
			for _, p := range []string{"../secret.txt", "/../secret.txt", "abs-link", "rel-link", "updir/secret.txt", "absdir/secret.txt", "updir/granted/../secret.txt"} {
				res, err := call(access, "r"+p)
				requireReason(t, err, isolation.ReasonSkillFailed)
				if strings.Contains(string(res.Output), "secret") {
					t.Errorf("read %s leaked %q", p, res.Output)
				}
			}
			for _, p := range []string{"../created.txt", "updir/created.txt", "absdir/created.txt", "abs-dangling", "rel-dangling"} {
				_, err := call(access, "c"+p)
				requireReason(t, err, isolation.ReasonSkillFailed)
			}
			entries, err := os.ReadDir(base)
			must(t, err)
			if len(entries) != 2 { // granted/ and secret.txt
				t.Errorf("escape created files next to the grant: %v", entries)
			}
			b, err := os.ReadFile(filepath.Join(base, "secret.txt"))
			must(t, err)
			if string(b) != "top secret" {
				t.Errorf("secret changed: %q", b)
			}
			requireEcho(t, sb)
		})
	}
}

func TestFileWriteGrant(t *testing.T) {
	sb := newSandbox(t)
	_, granted := fsFixture(t)
	skill := watSkill(t, "escape")
	run := func(access manifest.Access) error {
		_, err := sb.Run(context.Background(), isolation.Call{
			ID: "w", Skill: skill, Input: []byte("cnew.txt"), Limits: limits(),
			Grant: isolation.Grant{Files: []isolation.Mount{{Guest: "/data", Host: granted, Access: access}}},
		})
		return err
	}
	requireReason(t, run(manifest.AccessRead), isolation.ReasonSkillFailed)
	if _, err := os.Stat(filepath.Join(granted, "new.txt")); !os.IsNotExist(err) {
		t.Fatalf("read-only grant was written: %v", err)
	}
	if err := run(manifest.AccessReadWrite); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(granted, "new.txt"))
	if err != nil || string(b) != "pwned" {
		t.Fatalf("read-write grant: %q, %v", b, err)
	}
}

// A Go guest through its own os package: the granted file reads, a write to a
// read-only grant fails, and nothing outside the mounts exists.
func TestGoGuestFiles(t *testing.T) {
	var sb isolation.Sandbox = newSandbox(t)
	_, granted := fsFixture(t)
	skill := goSkill(t, "probe")
	grant := isolation.Grant{Files: []isolation.Mount{{Guest: "/data", Host: granted, Access: manifest.AccessRead}}}
	probe := func(op, path string) probeOut {
		in, _ := json.Marshal(map[string]string{"op": op, "path": path, "data": "x"})
		return runProbe(t, &sb, isolation.Call{ID: "g", Skill: skill, Input: in, Limits: limits(), Grant: grant})
	}
	if out := probe("read", "/data/hello.txt"); !out.OK || out.Data != "hello" {
		t.Errorf("granted read: %+v", out)
	}
	if out := probe("write", "/data/new.txt"); out.OK {
		t.Errorf("write to a read-only grant succeeded")
	}
	if _, err := os.Stat(filepath.Join(granted, "new.txt")); !os.IsNotExist(err) {
		t.Errorf("read-only grant was written: %v", err)
	}
	// Opening for reading with O_TRUNC or O_CREATE is a write too.
	if out := probe("truncate", "/data/hello.txt"); out.OK {
		t.Errorf("O_RDONLY|O_TRUNC on a read-only grant succeeded")
	}
	if b, err := os.ReadFile(filepath.Join(granted, "hello.txt")); err != nil || string(b) != "hello" {
		t.Errorf("read-only grant was truncated: %q %v", b, err)
	}
	if out := probe("create", "/data/made.txt"); out.OK {
		t.Errorf("O_RDONLY|O_CREATE on a read-only grant succeeded")
	}
	if _, err := os.Stat(filepath.Join(granted, "made.txt")); !os.IsNotExist(err) {
		t.Errorf("read-only grant got a new file: %v", err)
	}
	for _, p := range []string{"/etc/passwd", "/data/../secret.txt", "/data/abs-link", "/data/rel-link"} {
		if out := probe("read", p); out.OK || strings.Contains(out.Data, "secret") || strings.Contains(out.Data, "root:") {
			t.Errorf("read %s: %+v", p, out)
		}
	}
	// Without a grant there is no file system at all.
	in := []byte(`{"op":"list","path":"/"}`)
	if out := runProbe(t, &sb, isolation.Call{ID: "n", Skill: skill, Input: in, Limits: limits()}); out.OK && out.Data != "" {
		t.Errorf("ungranted call lists / as %q", out.Data)
	}
}

// Control: the same escape module, run on wazero's own WithDirMount, does leave the
// directory through a relative symlink (wazero #2323). This shows TestFileEscapes can
// see an escape, and why the sandbox does not use WithDirMount.
func TestEscapeModuleSeesDirMountEscape(t *testing.T) {
	_, granted := fsFixture(t)
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	code, err := os.ReadFile("testdata/escape.wasm")
	must(t, err)
	var out bytes.Buffer
	cfg := wazero.NewModuleConfig().WithStdin(strings.NewReader("rrel-link")).WithStdout(&out).
		WithFSConfig(wazero.NewFSConfig().WithDirMount(granted, "/data"))
	_, err = r.InstantiateWithConfig(ctx, code, cfg)
	if err != nil || out.String() != "top secret" {
		t.Skipf("wazero's DirMount no longer escapes via a relative symlink (%v, %q): the control is moot", err, out.String())
	}
}

// A time the guest leaves out of path_filestat_set_times or fd_filestat_set_times
// (wazero passes UTIME_OMIT) keeps its value, and one set to "now" is the clock's:
// `touch -m` changes only mtime. Before, an omitted time failed the whole call
// (ENOSYS). A read-only grant refuses every change.
func TestSetTimesOmitAndNow(t *testing.T) {
	var sb isolation.Sandbox = newSandbox(t)
	skill := goSkill(t, "touch")
	dir := t.TempDir()
	var (
		atime = time.Date(2001, 9, 9, 1, 46, 40, 0, time.UTC)
		mtime = time.Date(2002, 1, 2, 3, 4, 5, 0, time.UTC)
		later = time.Date(2003, 4, 5, 6, 7, 8, 9000, time.UTC)
	)
	const setA, nowA, setM, nowM = 1, 2, 4, 8 // WASI fstflags
	times := func(name string) (a, m time.Time) {
		var st syscall.Stat_t
		must(t, syscall.Stat(filepath.Join(dir, name), &st))
		return time.Unix(st.Atim.Unix()).UTC(), time.Unix(st.Mtim.Unix()).UTC()
	}
	for _, tc := range []struct {
		name      string
		via       string
		access    manifest.Access
		flags     uint32
		wantErrno bool
		check     func(a, m time.Time) bool
	}{
		{"mtime only", "path", manifest.AccessReadWrite, setM, false,
			func(a, m time.Time) bool { return a.Equal(atime) && m.Equal(later) }},
		{"atime only", "path", manifest.AccessReadWrite, setA, false,
			func(a, m time.Time) bool { return a.Equal(later) && m.Equal(mtime) }},
		{"mtime now", "path", manifest.AccessReadWrite, nowM, false,
			func(a, m time.Time) bool { return a.Equal(atime) && m.After(later) }},
		{"atime now, mtime set", "path", manifest.AccessReadWrite, nowA | setM, false,
			func(a, m time.Time) bool { return a.After(later) && m.Equal(later) }},
		{"both", "path", manifest.AccessReadWrite, setA | setM, false,
			func(a, m time.Time) bool { return a.Equal(later) && m.Equal(later) }},
		{"neither", "path", manifest.AccessReadWrite, 0, false,
			func(a, m time.Time) bool { return a.Equal(atime) && m.Equal(mtime) }},
		{"fd mtime only", "fd", manifest.AccessReadWrite, setM, false,
			func(a, m time.Time) bool { return a.Equal(atime) && m.Equal(later) }},
		{"fd atime now", "fd", manifest.AccessReadWrite, nowA, false,
			func(a, m time.Time) bool { return a.After(later) && m.Equal(mtime) }},
		{"read-only grant", "path", manifest.AccessRead, setM, true,
			func(a, m time.Time) bool { return a.Equal(atime) && m.Equal(mtime) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-") + ".txt"
			p := filepath.Join(dir, name)
			must(t, os.WriteFile(p, []byte("x"), 0o644))
			must(t, os.Chtimes(p, atime, mtime))
			in, _ := json.Marshal(map[string]any{"path": "/data/" + name, "via": tc.via,
				"atim": later.UnixNano(), "mtim": later.UnixNano(), "flags": tc.flags})
			res, err := sb.Run(context.Background(), isolation.Call{ID: "t", Skill: skill, Input: in, Limits: limits(),
				Grant: isolation.Grant{Files: []isolation.Mount{{Guest: "/data", Host: dir, Access: tc.access}}}})
			if err != nil {
				t.Fatalf("%v (logs %q)", err, res.Logs)
			}
			var out struct{ Errno int }
			must(t, json.Unmarshal(res.Output, &out))
			if (out.Errno != 0) != tc.wantErrno {
				t.Errorf("errno %d (52 is ENOSYS), want an error: %v", out.Errno, tc.wantErrno)
			}
			if a, m := times(name); !tc.check(a, m) {
				t.Errorf("atime %v, mtime %v (were %v, %v; set %v)", a, m, atime, mtime, later)
			}
		})
	}
}
