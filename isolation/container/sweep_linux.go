package container

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// A read-write grant must leave nothing in the operator's directory that the host
// would treat differently from plain data, as the wasm sandbox's grants cannot: no
// symbolic links (a host tool following "out/report -> /etc/shadow"), no setuid or
// setgid files (an executable a host user runs with the guest's ids), no FIFOs,
// sockets or devices, and no hard links the call made. Mount options cannot give
// that: nosuid only stops setuid on exec through the container's mount, and nothing
// stops link creation. So after every call, once its container is removed, the
// granted directory is swept: links and special files are removed, setuid and setgid
// bits cleared.
//
// The sweep must be able to act on everything the skill made. A server that is not
// root runs such a call's container as its own uid (see Sandbox.rwUser), so it owns
// all of it; the skill may still have made a directory unreadable or read-only, so
// the walk gives each directory the server owns owner rwx while it is in it and puts
// the mode back after. What still cannot be cleaned is reported, and the caller
// quarantines the grant.
//
// Calls that share a read-write directory run one at a time (see grantLocks), so no
// guest runs while its grant is swept. The walk is still written for one: it goes by
// directory file descriptor and never by path, acts on the inode it opened without
// following links, and never leaves the directory; a racing process inside the grant
// can at most make it act on another entry inside the same grant.

// maxOpenDirs bounds the directories a walk keeps open. Below that depth a directory
// is walked with its parent closed; the parent is opened again through "..", and
// checked to be the same directory, when the walk comes back up. Nothing is moved.
const maxOpenDirs = 64

// multiLinked lists the regular files with more than one link under dir, by path
// (relative to dir) and inode: hard links that existed before a call, which the
// sweep keeps.
func multiLinked(dir string) (map[string]uint64, error) {
	keep := map[string]uint64{}
	err := walkGrant(dir, func(_ int, _, rel string, st *unix.Stat_t) error {
		if st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink > 1 {
			keep[rel] = st.Ino
		}
		return nil
	})
	return keep, err
}

// sweepGrant makes dir inert for the host (see above). A hard link is removed unless
// keep says the same name held the same inode, multi-linked, before the call.
func sweepGrant(dir string, keep func(rel string, ino uint64) bool) error {
	return walkGrant(dir, func(dfd int, name, rel string, st *unix.Stat_t) error {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			return nil
		case unix.S_IFREG:
			if st.Nlink > 1 && !keep(rel, st.Ino) {
				return unlinkEntry(dfd, name, rel)
			}
			if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
				return clearSetid(dfd, name, rel)
			}
			return nil
		default: // symbolic link, FIFO, socket, device
			return unlinkEntry(dfd, name, rel)
		}
	})
}

func unlinkEntry(dfd int, name, rel string) error {
	if err := unix.Unlinkat(dfd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return &entryError{rel, "remove", err}
	}
	return nil
}

// procFD names an open descriptor as a path: chmod and open through it act on the
// descriptor's inode, which an O_PATH descriptor cannot do itself.
func procFD(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// clearSetid clears the setuid and setgid bits of the regular file dfd/name, on the
// inode it opens without following a link; a file it cannot change is removed.
func clearSetid(dfd int, name, rel string) error {
	fd, err := unix.Openat(dfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return unlinkEntry(dfd, name, rel)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		// Swapped for something else since it was looked at: that is not plain data.
		return unlinkEntry(dfd, name, rel)
	}
	if err := unix.Chmod(procFD(fd), st.Mode&0o777|st.Mode&unix.S_ISVTX); err != nil {
		return unlinkEntry(dfd, name, rel)
	}
	return nil
}

// dirFrame is one directory on the walk's path.
type dirFrame struct {
	fd       int // open O_RDONLY, or -1 while the walk is deeper than maxOpenDirs
	rel      string
	names    []string // sorted; names[next:] are still to visit
	next     int
	dev, ino uint64 // to check a reopened descriptor is this directory
	perm     uint32 // mode bits to put back, when widened
	widened  bool   // the walk gave it owner rwx
}

type grantWalk struct {
	euid  int
	visit func(dfd int, name, rel string, st *unix.Stat_t) error
}

// walkGrant calls visit for every entry under dir, depth first in name order, with
// the descriptor of its directory, at any depth, moving nothing. An entry that
// vanishes is skipped; an entry that cannot be looked at is reported and the walk
// goes on. The errors are *entryError values, joined.
func walkGrant(dir string, visit func(dfd int, name, rel string, st *unix.Stat_t) error) error {
	w := &grantWalk{euid: os.Geteuid(), visit: visit}
	pfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open grant %s: %w", dir, &entryError{".", "open", err})
	}
	root, err := w.open(pfd, "")
	if err != nil {
		return fmt.Errorf("grant %s: %w", dir, err)
	}
	stack := []*dirFrame{root}
	var errs []error
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		if f.next == len(f.names) {
			stack = stack[:len(stack)-1]
			errs = append(errs, w.leave(f))
			if n := len(stack); n > 0 && stack[n-1].fd < 0 {
				if err := reopenParent(f, stack[n-1]); err != nil {
					// Without its parent the walk cannot go on safely.
					unix.Close(f.fd)
					for _, g := range stack {
						if g.fd >= 0 {
							unix.Close(g.fd)
						}
					}
					errs = append(errs, err)
					return fmt.Errorf("grant %s: %w", dir, errors.Join(errs...))
				}
			}
			unix.Close(f.fd)
			continue
		}
		name := f.names[f.next]
		f.next++
		child, err := w.entry(f.fd, name, path.Join(f.rel, name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if child == nil {
			continue
		}
		if len(stack) >= maxOpenDirs {
			unix.Close(f.fd)
			f.fd = -1
		}
		stack = append(stack, child)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("grant %s: %w", dir, err)
	}
	return nil
}

// entry visits dfd/name and, for a directory, opens it for the walk.
func (w *grantWalk) entry(dfd int, name, rel string) (*dirFrame, error) {
	// A racing process can swap the entry between the look and the act: look again,
	// a few times, rather than act on what is no longer there.
	for try := 0; ; try++ {
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil, nil
			}
			return nil, &entryError{rel, "look at", err}
		}
		if err := w.visit(dfd, name, rel, &st); err != nil {
			return nil, err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return nil, nil
		}
		pfd, err := unix.Openat(dfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		switch {
		case err == nil:
			return w.open(pfd, rel)
		case errors.Is(err, unix.ENOENT):
			return nil, nil
		case (errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR)) && try < 3:
			continue // no longer a directory
		default:
			return nil, &entryError{rel, "open", err}
		}
	}
}

// open turns the O_PATH descriptor pfd of a directory (which it closes) into a frame:
// owner rwx first if the server owns it and it lacks them, then opened for reading
// through pfd's own inode, and its names read.
func (w *grantWalk) open(pfd int, rel string) (*dirFrame, error) {
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, &entryError{displayRel(rel), "look at", err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, &entryError{displayRel(rel), "open", unix.ENOTDIR}
	}
	f := &dirFrame{fd: -1, rel: rel, dev: st.Dev, ino: st.Ino, perm: st.Mode & 0o7777}
	// Root reads and changes everything; a server that is not root can always change
	// what it owns, which is everything its skills made (see Sandbox.rwUser).
	if w.euid != 0 && int(st.Uid) == w.euid && st.Mode&0o700 != 0o700 {
		if err := unix.Chmod(procFD(pfd), f.perm|0o700); err != nil {
			return nil, &entryError{displayRel(rel), "make owner-writable", err}
		}
		f.widened = true
	}
	fd, err := unix.Open(procFD(pfd), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		err = &entryError{displayRel(rel), "open", err}
		if f.widened {
			err = errors.Join(err, unix.Chmod(procFD(pfd), f.perm))
		}
		return nil, err
	}
	f.fd = fd
	names, err := readNames(fd)
	if err != nil {
		return nil, errors.Join(&entryError{displayRel(rel), "read", err}, w.leave(f), unix.Close(fd))
	}
	slices.Sort(names)
	f.names = names
	return f, nil
}

// leave puts back the mode of a directory the walk widened.
func (w *grantWalk) leave(f *dirFrame) error {
	if !f.widened {
		return nil
	}
	if err := unix.Fchmod(f.fd, f.perm); err != nil {
		return &entryError{displayRel(f.rel), "restore the mode of", err}
	}
	return nil
}

// reopenParent opens the parent p of the walked directory f through f's "..", and
// refuses it unless it is the directory p was.
func reopenParent(f, p *dirFrame) error {
	fd, err := unix.Openat(f.fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &entryError{displayRel(p.rel), "reopen", err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Dev != p.dev || st.Ino != p.ino {
		unix.Close(fd)
		return &entryError{displayRel(p.rel), "reopen", errors.New("moved during the sweep")}
	}
	p.fd = fd
	return nil
}

// readNames returns the names in the directory open as fd, without "." and "..".
func readNames(fd int) ([]string, error) {
	var names []string
	buf := make([]byte, 16<<10)
	for {
		n, err := unix.ReadDirent(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

func displayRel(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}
