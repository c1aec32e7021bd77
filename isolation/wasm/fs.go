package wasm

import (
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"
)

// rootFS serves one granted host directory to the guest through Go's os.Root, which
// refuses every path that would leave the directory, also through `..` and through
// absolute or relative symlinks. wazero's own DirFS joins strings and can be left
// (wazero issues #2321, #2323). Creating links is refused: a link made by the guest
// could mislead whoever reads the directory on the host afterwards.
type rootFS struct {
	root     *os.Root
	writable bool
	files    *fileTracker // the instance's open files, over all its mounts
	dots     int          // handles on "." open now (files' lock)
}

// MaxOpenFiles is the most files one instance (one call, or a pooled reactor instance
// during a call) may hold open in its granted directories, the directories themselves
// included. Each is a descriptor of the server's own, shared with its doors, its audit
// log and every other call: without a bound one call could open the same file until
// the server could open nothing. An open past it fails EAGAIN.
const MaxOpenFiles = 256

// newMountFS opens dir as a root; read-only unless writable. A read-only mount is
// refused writes twice over: wazero's ReadFS refuses the mutating calls, and OpenFile
// here refuses every flag that changes the directory, since ReadFS lets an open with
// read rights plus O_TRUNC or O_CREAT through.
func newMountFS(dir string, writable bool, files *fileTracker) (experimentalsys.FS, *os.Root, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, err
	}
	var f experimentalsys.FS = &rootFS{root: root, writable: writable, files: files}
	if !writable {
		f = &sysfs.ReadFS{FS: f}
	}
	return f, root, nil
}

// writeFlags are the open flags that write to the file or the directory.
const writeFlags = experimentalsys.O_WRONLY | experimentalsys.O_RDWR | experimentalsys.O_APPEND |
	experimentalsys.O_CREAT | experimentalsys.O_EXCL | experimentalsys.O_TRUNC

// rel turns the guest's path (relative to the mount, maybe with a leading slash) into
// a name for os.Root; os.Root itself rejects anything that escapes.
func rel(p string) string {
	p = strings.TrimLeft(p, "/")
	if p == "" {
		return "."
	}
	return p
}

// escapeMsg is the text of os.Root's (unexported) escape error.
const escapeMsg = "path escapes from parent"

// errno maps host errors to WASI errnos; an escape attempt reads as EPERM.
func errno(err error) experimentalsys.Errno {
	if err == nil {
		return 0
	}
	e := experimentalsys.UnwrapOSError(err)
	if e == experimentalsys.EIO && strings.Contains(err.Error(), escapeMsg) {
		return experimentalsys.EPERM
	}
	return e
}

func osFlag(flag experimentalsys.Oflag) int {
	var f int
	switch {
	case flag&experimentalsys.O_RDWR != 0:
		f = os.O_RDWR
	case flag&experimentalsys.O_WRONLY != 0:
		f = os.O_WRONLY
	default:
		f = os.O_RDONLY
	}
	for _, m := range [...]struct {
		w experimentalsys.Oflag
		o int
	}{
		{experimentalsys.O_APPEND, os.O_APPEND},
		{experimentalsys.O_CREAT, os.O_CREATE},
		{experimentalsys.O_EXCL, os.O_EXCL},
		{experimentalsys.O_TRUNC, os.O_TRUNC},
		{experimentalsys.O_SYNC, os.O_SYNC},
		{experimentalsys.O_DIRECTORY, syscall.O_DIRECTORY},
		{experimentalsys.O_NOFOLLOW, syscall.O_NOFOLLOW},
	} {
		if flag&m.w != 0 {
			f |= m.o
		}
	}
	return f
}

// OpenFile implements experimentalsys.FS.
func (r *rootFS) OpenFile(path string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	if !r.writable && flag&writeFlags != 0 {
		return nil, experimentalsys.EROFS
	}
	if r.files.full() {
		return nil, experimentalsys.EAGAIN
	}
	name := rel(path)
	f, err := openInert(r.root, name, osFlag(flag), perm)
	if err != nil {
		return nil, errno(err)
	}
	// wazero wraps an fs.File with reads, writes, seeks and readdir; the first Open
	// hands over the file just opened, later ones (rewinding a directory) reopen it
	// read-only inside the same root.
	adapted := sysfs.AdaptFS{FS: &openedFS{root: r.root, f: f}}
	file, e := adapted.OpenFile(name, flag, perm)
	if e != 0 {
		return file, e
	}
	var dots *int
	if name == "." {
		dots = &r.dots
	}
	return r.files.track(file, dots), 0
}

// fileTracker counts the files a guest holds open through its mounts (a preopened
// directory is one), so that no instance holds more than MaxOpenFiles, and so that a
// pooled instance that ends a call with another set of open files than it had after
// _initialize is discarded, never reused: wazero's file table cannot be read or
// restored from outside. Nor can a directory's listing:
// wazero caches it on the descriptor (fd_readdir's cookies index the cache), so a
// pooled call that lists a directory would leave the names it saw to the next call.
type fileTracker struct {
	mu      sync.Mutex
	live    int    // files open now
	roots   int    // mounts with "." open: the root wazero opens when first used
	epoch   uint64 // bumped by mark
	mark    int    // live at the last mark
	tainted bool   // a file opened before the last mark was closed
	listed  bool   // a directory was listed since the last mark
}

type trackedFile struct {
	experimentalsys.File
	t      *fileTracker
	epoch  uint64
	dots   *int // its mount's count of "." handles, if it is one
	closed bool
}

// track counts f; dots is its mount's count of open "." handles when f is one. One
// of those a mount may have open (its root, which wazero opens on first use); a
// second is a handle of the guest's own.
func (t *fileTracker) track(f experimentalsys.File, dots *int) experimentalsys.File {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.live++
	if dots != nil {
		if *dots++; *dots == 1 {
			t.roots++
		}
	}
	return &trackedFile{File: f, t: t, epoch: t.epoch, dots: dots}
}

// full reports whether the instance holds MaxOpenFiles open.
func (t *fileTracker) full() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.live >= MaxOpenFiles
}

// Readdir implements experimentalsys.File: wazero reads a directory only to fill
// the listing it caches on the descriptor.
func (f *trackedFile) Readdir(n int) ([]experimentalsys.Dirent, experimentalsys.Errno) {
	f.t.listing()
	return f.File.Readdir(n)
}

// Ino implements experimentalsys.File: wazero asks a directory's inode only to
// create that cache (its "." entry).
func (f *trackedFile) Ino() (sys.Inode, experimentalsys.Errno) {
	f.t.listing()
	return f.File.Ino()
}

func (t *fileTracker) listing() {
	t.mu.Lock()
	t.listed = true
	t.mu.Unlock()
}

// Close implements experimentalsys.File.
func (f *trackedFile) Close() experimentalsys.Errno {
	f.t.mu.Lock()
	if !f.closed {
		f.closed = true
		f.t.live--
		if f.dots != nil {
			if *f.dots--; *f.dots == 0 {
				f.t.roots--
			}
		}
		if f.epoch < f.t.epoch {
			f.t.tainted = true
		}
	}
	f.t.mu.Unlock()
	return f.File.Close()
}

// setMark records the files open now as the instance's own: the state every call
// must end in.
func (t *fileTracker) setMark() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.epoch++
	t.mark = t.live
	t.tainted = false
	t.listed = false
}

// atMark reports whether exactly the files open at the mark are open.
func (t *fileTracker) atMark() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.live == t.mark && !t.tainted
}

// listedSinceMark reports whether a directory was listed since the mark.
func (t *fileTracker) listedSinceMark() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.listed
}

// onlyRoots reports whether the only files open are mount roots (one "." a mount),
// none of them listed.
func (t *fileTracker) onlyRoots() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.live == t.roots && !t.listed
}

type openedFS struct {
	root *os.Root
	f    *os.File
}

func (o *openedFS) Open(name string) (fs.File, error) {
	if f := o.f; f != nil {
		o.f = nil
		return f, nil
	}
	return openInert(o.root, name, os.O_RDONLY, 0)
}

// errNotInert refuses a FIFO, device or socket in a granted directory.
var errNotInert = syscall.ENOTSUP

// openInert opens name in root and refuses anything but a regular file or a
// directory. Opening a FIFO blocks until its other end opens, and reading a FIFO or a
// device can block for ever, inside a host call that no context interrupts: nothing
// in a grant may hold a call past its budget. The type is checked before opening (no
// device sees an open) and again on the opened file (a swap in between is caught);
// O_NONBLOCK keeps the open itself from waiting, O_NOCTTY keeps a terminal from
// becoming the server's.
func openInert(root *os.Root, name string, flag int, perm fs.FileMode) (*os.File, error) {
	if fi, err := root.Stat(name); err == nil && !inert(fi.Mode()) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errNotInert}
	}
	f, err := root.OpenFile(name, flag|syscall.O_NONBLOCK|syscall.O_NOCTTY, perm)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !inert(fi.Mode()) {
		err = &fs.PathError{Op: "open", Path: name, Err: errNotInert}
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// inert reports whether a file of this mode can be opened and read without waiting
// on anyone: regular files and directories.
func inert(m fs.FileMode) bool { return m.IsRegular() || m.IsDir() }

// Lstat implements experimentalsys.FS.
func (r *rootFS) Lstat(path string) (sys.Stat_t, experimentalsys.Errno) {
	fi, err := r.root.Lstat(rel(path))
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(fi), 0
}

// Stat implements experimentalsys.FS.
func (r *rootFS) Stat(path string) (sys.Stat_t, experimentalsys.Errno) {
	fi, err := r.root.Stat(rel(path))
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(fi), 0
}

// Mkdir implements experimentalsys.FS.
func (r *rootFS) Mkdir(path string, perm fs.FileMode) experimentalsys.Errno {
	return errno(r.root.Mkdir(rel(path), perm))
}

// Chmod implements experimentalsys.FS.
func (r *rootFS) Chmod(path string, perm fs.FileMode) experimentalsys.Errno {
	return errno(r.root.Chmod(rel(path), perm))
}

// Rename implements experimentalsys.FS.
func (r *rootFS) Rename(from, to string) experimentalsys.Errno {
	return errno(r.root.Rename(rel(from), rel(to)))
}

// Rmdir implements experimentalsys.FS.
func (r *rootFS) Rmdir(path string) experimentalsys.Errno {
	name := rel(path)
	fi, err := r.root.Lstat(name)
	if err != nil {
		return errno(err)
	}
	if !fi.IsDir() {
		return experimentalsys.ENOTDIR
	}
	return errno(r.root.Remove(name))
}

// Unlink implements experimentalsys.FS.
func (r *rootFS) Unlink(path string) experimentalsys.Errno {
	name := rel(path)
	fi, err := r.root.Lstat(name)
	if err != nil {
		return errno(err)
	}
	if fi.IsDir() {
		return experimentalsys.EISDIR
	}
	return errno(r.root.Remove(name))
}

// Link implements experimentalsys.FS: refused.
func (r *rootFS) Link(string, string) experimentalsys.Errno { return experimentalsys.EPERM }

// Symlink implements experimentalsys.FS: refused.
func (r *rootFS) Symlink(string, string) experimentalsys.Errno { return experimentalsys.EPERM }

// Readlink implements experimentalsys.FS.
func (r *rootFS) Readlink(path string) (string, experimentalsys.Errno) {
	s, err := r.root.Readlink(rel(path))
	if err != nil {
		return "", errno(err)
	}
	return s, 0
}

// Utimens implements experimentalsys.FS. A time the guest leaves out arrives as
// experimentalsys.UTIME_OMIT (math.MinInt64 in wazero v1.12) and keeps its current
// value, read with a stat first as wazero's own sysfs does (os.Root has no utimensat
// with UTIME_OMIT); "now" arrives already resolved to the guest's wall clock
// (wazero's toTimes). Both left out changes nothing, though the path must exist.
func (r *rootFS) Utimens(path string, atim, mtim int64) experimentalsys.Errno {
	name := rel(path)
	if atim == experimentalsys.UTIME_OMIT || mtim == experimentalsys.UTIME_OMIT {
		st, e := r.Stat(path)
		if e != 0 {
			return e
		}
		if atim == experimentalsys.UTIME_OMIT && mtim == experimentalsys.UTIME_OMIT {
			return 0
		}
		if atim == experimentalsys.UTIME_OMIT {
			atim = st.Atim
		} else {
			mtim = st.Mtim
		}
	}
	return errno(r.root.Chtimes(name, time.Unix(0, atim), time.Unix(0, mtim)))
}
