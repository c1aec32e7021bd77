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
// bits cleared. A concurrent call of the same grant may still be running and racing
// the sweep, so the sweep walks by directory file descriptor and never by path, acts
// on the inode it opened without following links, and cannot leave the directory: a
// racing guest can at most make it act on another entry inside the same grant.

// maxSweepDepth bounds the directories open at once; a deeper directory is moved up
// to the grant's top level and swept from there.
const maxSweepDepth = 64

// multiLinked lists the regular files with more than one link under dir (paths
// relative to it): hard links that existed before a call and that the sweep keeps.
func multiLinked(dir string) (map[string]bool, error) {
	keep := map[string]bool{}
	err := walkGrant(dir, false, func(_ int, _, rel string, st *unix.Stat_t) error {
		if st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink > 1 {
			keep[rel] = true
		}
		return nil
	})
	return keep, err
}

// sweepGrant makes dir inert for the host (see above). Hard links are removed unless
// keep(rel) says the name was multi-linked before the call.
func sweepGrant(dir string, keep func(rel string) bool) error {
	return walkGrant(dir, true, func(dfd int, name, rel string, st *unix.Stat_t) error {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			return nil
		case unix.S_IFREG:
			if st.Nlink > 1 && !keep(rel) {
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
		return fmt.Errorf("remove %s: %w", rel, err)
	}
	return nil
}

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
	// fchmod needs a readable descriptor; an O_PATH one changes through /proc.
	if err := unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), st.Mode&0o777|st.Mode&unix.S_ISVTX); err != nil {
		return unlinkEntry(dfd, name, rel)
	}
	return nil
}

// walkGrant calls visit for every entry under dir, depth first in name order, with
// the descriptor of its directory. An entry that vanishes is skipped. When mutate is
// set, a directory past maxSweepDepth is moved to dir's top level and walked there;
// otherwise it is not descended into.
func walkGrant(dir string, mutate bool, visit func(dfd int, name, rel string, st *unix.Stat_t) error) error {
	rootFD, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open grant %s: %w", dir, err)
	}
	root := os.NewFile(uintptr(rootFD), dir)
	defer root.Close()
	w := &grantWalk{root: rootFD, mutate: mutate, visit: visit, queue: []string{""}}
	var errs []error
	for len(w.queue) > 0 {
		rel := w.queue[0]
		w.queue = w.queue[1:]
		var fd int
		if rel == "" {
			fd, err = unix.Dup(rootFD)
		} else {
			fd, err = unix.Openat(rootFD, rel, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("open %s: %w", displayRel(rel), err))
			continue
		}
		errs = append(errs, w.dir(fd, rel, 0))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("grant %s: %w", dir, err)
	}
	return nil
}

type grantWalk struct {
	root   int
	mutate bool
	visit  func(dfd int, name, rel string, st *unix.Stat_t) error
	queue  []string // top-level directories still to walk (moved-up deep ones)
}

// dir walks the directory open as fd (and closes it).
func (w *grantWalk) dir(fd int, rel string, depth int) error {
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read %s: %w", displayRel(rel), err)
	}
	slices.Sort(names)
	var errs []error
	for _, name := range names {
		errs = append(errs, w.entry(fd, name, path.Join(rel, name), depth))
	}
	return errors.Join(errs...)
}

func (w *grantWalk) entry(dfd int, name, rel string, depth int) error {
	// A racing guest can swap the entry between the look and the act: look again,
	// a few times, rather than act on what is no longer there.
	for try := 0; ; try++ {
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return fmt.Errorf("stat %s: %w", rel, err)
		}
		if err := w.visit(dfd, name, rel, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return nil
		}
		if depth+1 >= maxSweepDepth {
			if !w.mutate {
				return nil
			}
			up := ".skillbox-deep-" + randomID()
			if err := unix.Renameat(dfd, name, w.root, up); err != nil {
				return fmt.Errorf("move up %s: %w", rel, err)
			}
			w.queue = append(w.queue, up)
			return nil
		}
		cfd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		switch {
		case err == nil:
			return w.dir(cfd, rel, depth+1)
		case errors.Is(err, unix.ENOENT):
			return nil
		case (errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR)) && try < 3:
			continue // no longer a directory
		default:
			return fmt.Errorf("open %s: %w", rel, err)
		}
	}
}

func displayRel(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}
