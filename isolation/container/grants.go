package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/skillbox-dev/skillbox/isolation"
)

// Read-write grants. Before a call the granted directory is swept (see sweepGrant),
// which also lists the hard links already there; after it, once its container is
// removed, it is swept again. Calls whose read-write directories overlap run one at a
// time, so no other call can plant anything between a call's sweep and its reply. A
// directory a sweep could not clean is quarantined: calls that grant it are refused,
// naming it and what was left, until a sweep before a call succeeds (the operator
// removed the leftovers or gave them to the server's user).

// entryError is one entry of a grant the sweep could not look at or clean.
type entryError struct {
	Rel string // relative to the grant, "." for the grant itself
	Op  string // what failed: "remove", "open", ...
	Err error
}

func (e *entryError) Error() string { return e.Op + " " + e.Rel + ": " + e.Err.Error() }
func (e *entryError) Unwrap() error { return e.Err }

// grantGuard holds the grants of running calls and the quarantined read-write
// directories. The zero value is ready to use.
type grantGuard struct {
	mu      sync.Mutex
	held    map[*claim]bool
	changed chan struct{} // closed, and replaced, whenever held shrinks
	dirty   map[string]*quarantine
	waiting int // holds waiting for a claim to end (tests)
}

// quarantine is a read-write directory a sweep after a call could not clean.
type quarantine struct {
	left string            // what was left, one line
	keep map[string]uint64 // hard links before that call: the next sweep removes the others
}

// canonical is the path the guard compares: symbolic links resolved where possible.
func canonical(dir string) string {
	dir = filepath.Clean(dir)
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		return r
	}
	return dir
}

// overlaps reports whether one of the directories a and b holds the other.
func overlaps(a, b string) bool {
	return a == b || within(a, b) || within(b, a)
}

func within(p, dir string) bool {
	return dir == "/" || strings.HasPrefix(p, dir+"/")
}

// claim is what a call holds in the guard: the read-write directories it writes,
// until its sweep after the call is done, and the places on the host its grant paths
// lead through, until its container's mounts are made (Docker follows symbolic links
// in a mount's source on the host). While one call's read-write directory holds a
// place another's path leads through, that call could make it a link out of every
// grant (a security review: a read-only grant inside a running call's read-write
// grant was mounted from, and a read-write one swept and written in, a directory no
// grant names), so the two never run at once.
//
// A call with read-write grants claims, at once, its read-write directories and the
// trails of all its grant paths, read-only ones included (mounting, until its mounts
// are made): a call that held its read-write directories and then waited for its
// read-only paths could wait for a call waiting for it (skill A writes a and reads
// b/in, skill B writes b and reads a/in: both waited until their time limit).
type claim struct {
	rw       []string // canonical read-write directories
	trail    []string // every path looked at while resolving the grant paths
	mounting []string // as trail, until the container's mounts are made (mounted)
}

// conflicts reports whether calls holding a and b may not run at once.
func (a *claim) conflicts(b *claim) bool {
	for _, x := range a.rw {
		for _, y := range b.rw {
			if overlaps(x, y) {
				return true
			}
		}
	}
	return a.reaches(b) || b.reaches(a)
}

// reaches reports whether a read-write directory of a holds, below its top, a place a
// path of b leads through: a's call could change where that path leads.
func (a *claim) reaches(b *claim) bool {
	for _, x := range a.rw {
		for _, t := range b.trail {
			if within(t, x) {
				return true
			}
		}
		for _, t := range b.mounting {
			if within(t, x) {
				return true
			}
		}
	}
	return false
}

// mounted ends the part of c held until its container's mounts are made.
func (g *grantGuard) mounted(c *claim) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c.mounting == nil {
		return
	}
	c.mounting = nil
	close(g.changed)
	g.changed = make(chan struct{})
}

// trail returns every path on the host that resolving p as the kernel does looks at:
// each component and each symbolic link, where they really are (links resolved in
// the parents). It stops at the first one that is missing or cannot be read.
func trail(p string) []string {
	var seen []string
	cur, todo := "/", strings.Split(p, "/")
	for links := 0; len(todo) > 0; {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, name)
		seen = append(seen, next)
		fi, err := os.Lstat(next)
		if err != nil {
			return seen
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		target, err := os.Readlink(next)
		if links++; err != nil || links > 255 {
			return seen
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return seen
}

// errGrantBusy is hold's answer when it may not wait.
var errGrantBusy = errors.New("a running call writes a directory the grant's path leads through")

// acquire waits, within ctx, until no running call holds a directory that overlaps
// one of dirs (canonical), then holds them all until release.
func (g *grantGuard) acquire(ctx context.Context, dirs []string) (release func(), err error) {
	release, _, err = g.hold(ctx, func() *claim { return &claim{rw: dirs} }, nil, true)
	return release, err
}

// hold waits, within ctx, until the claim build returns conflicts with none held
// but own (the caller's own claim, or nil), then holds it until release. build is
// called again after each wait: the paths may lead elsewhere by then. Without wait,
// a conflict is errGrantBusy at once.
func (g *grantGuard) hold(ctx context.Context, build func() *claim, own *claim, wait bool) (release func(), c *claim, err error) {
	for {
		c = build()
		g.mu.Lock()
		if g.held == nil {
			g.held = map[*claim]bool{}
			g.changed = make(chan struct{})
		}
		busy := false
		for h := range g.held {
			busy = busy || h != own && h.conflicts(c)
		}
		if !busy {
			g.held[c] = true
			g.mu.Unlock()
			return func() {
				g.mu.Lock()
				defer g.mu.Unlock()
				delete(g.held, c)
				close(g.changed)
				g.changed = make(chan struct{})
			}, c, nil
		}
		ch := g.changed
		g.mu.Unlock()
		if !wait {
			return nil, nil, errGrantBusy
		}
		g.setWaiting(1)
		select {
		case <-ch:
			g.setWaiting(-1)
		case <-ctx.Done():
			g.setWaiting(-1)
			return nil, nil, ctx.Err()
		}
	}
}

var _ isolation.PathGuard = (*Sandbox)(nil)

// Mounting implements isolation.PathGuard: another sandbox (wasm) opens its grant's
// host paths while it holds them as a read-only grant is held until its mounts are
// made, so no running call can turn a place those paths lead through into a link.
func (s *Sandbox) Mounting(ctx context.Context, paths []string) (release func(), err error) {
	release, _, err = s.grants.hold(ctx, func() *claim {
		c := &claim{}
		for _, p := range paths {
			c.trail = append(c.trail, trail(p)...)
		}
		return c
	}, nil, true)
	return release, err
}

func (g *grantGuard) setWaiting(d int) {
	g.mu.Lock()
	g.waiting += d
	g.mu.Unlock()
}

// quarantined returns the quarantine of a directory that overlaps dir, if any.
func (g *grantGuard) quarantined(dir string) (string, *quarantine) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for d, q := range g.dirty {
		if overlaps(d, dir) {
			return d, q
		}
	}
	return "", nil
}

func (g *grantGuard) setDirty(dir string, q *quarantine) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dirty == nil {
		g.dirty = map[string]*quarantine{}
	}
	g.dirty[dir] = q
}

// clean ends the quarantine of dir and of the directories in it: a sweep of dir worked.
func (g *grantGuard) clean(dir string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for d := range g.dirty {
		if d == dir || within(d, dir) {
			delete(g.dirty, d)
		}
	}
}

// rwGrant is one read-write directory of a running call.
type rwGrant struct {
	host  string            // as granted
	canon string            // canonical
	keep  map[string]uint64 // its hard links before the call
}

// openGrants prepares the read-write grants of a call that holds them (acquire):
// each is swept, and its hard links listed, before the container exists. A
// quarantined one is swept as the failed call's would have been; if that works the
// quarantine ends. A call that also has a read grant overlapping a quarantined
// directory is refused.
func (s *Sandbox) openGrants(rw []*rwGrant, read []string) error {
	if err := s.refuseQuarantined(read, rw); err != nil {
		return err
	}
	for _, g := range rw {
		d, q := s.grants.quarantined(g.canon)
		if q != nil && within(g.canon, d) {
			// Quarantined above this grant: only a call granting all of it may clean it.
			return quarantineError(d, q.left)
		}
		var qkeep map[string]uint64 // nil: keep every hard link there is
		if q != nil && d == g.canon {
			qkeep = q.keep
		}
		g.keep = map[string]uint64{}
		err := sweepGrant(g.host, func(rel string, ino uint64) bool {
			if qkeep != nil && qkeep[rel] != ino {
				return false // a hard link the failed call made
			}
			g.keep[rel] = ino
			return true
		})
		if err != nil {
			left := sweepLeft(g.host, err)
			if q != nil {
				return quarantineError(d, left)
			}
			return &isolation.Error{Reason: grantReason(err), Msg: fmt.Sprintf(
				"read-write directory %s cannot be used: %s; it must be readable and writable by the server's user%s",
				g.host, left, s.rwUserHint())}
		}
		s.grants.clean(g.canon)
	}
	return nil
}

// refuseQuarantined refuses read grants that overlap a quarantined directory, unless
// one of the call's read-write grants covers it (and is then swept before the call).
func (s *Sandbox) refuseQuarantined(read []string, rw []*rwGrant) error {
	for _, dir := range read {
		if d, q := s.grants.quarantined(canonical(dir)); q != nil && !coveredBy(d, rw) {
			return quarantineError(d, q.left)
		}
	}
	return nil
}

// closeGrants sweeps the read-write grants after the call whose container is removed,
// and quarantines the ones it could not clean.
func (s *Sandbox) closeGrants(rw []*rwGrant) *isolation.Error {
	var errs []error
	var left []string
	for _, g := range rw {
		err := sweepGrant(g.host, func(rel string, ino uint64) bool { return g.keep[rel] == ino })
		if err != nil {
			l := sweepLeft(g.host, err)
			s.grants.setDirty(g.canon, &quarantine{left: l, keep: g.keep})
			errs = append(errs, err)
			left = append(left, l)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	// The message lists what was left, bounded; the full list is not kept.
	return &isolation.Error{Reason: grantReason(errors.Join(errs...)), Msg: fmt.Sprintf(
		"the call left what the server could not remove from its read-write directory: %s; calls that grant it are refused until that is removed",
		strings.Join(left, "; "))}
}

func coveredBy(dir string, rw []*rwGrant) bool {
	for _, g := range rw {
		if dir == g.canon || within(dir, g.canon) {
			return true
		}
	}
	return false
}

func quarantineError(dir, left string) error {
	return isolation.Errorf(isolation.ReasonNotGranted,
		"read-write directory %s is quarantined: a call left what the server could not remove (%s); remove it, or give it to the server's user, and call again", dir, left)
}

// grantReason is NOT_GRANTED when the server was refused access (the directory is
// not the server's to clean), INTERNAL otherwise.
func grantReason(err error) isolation.Reason {
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EROFS) {
		return isolation.ReasonNotGranted
	}
	return isolation.ReasonInternal
}

// sweepLeft says in one line what a sweep of dir could not do: the first few entries
// and how many more.
func sweepLeft(dir string, err error) string {
	var list []string
	var walk func(error)
	walk = func(err error) {
		if e, ok := err.(*entryError); ok {
			list = append(list, fmt.Sprintf("%s %s (%v)", e.Op, e.Rel, e.Err))
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				walk(c)
			}
			return
		}
		if u := errors.Unwrap(err); u != nil {
			walk(u)
			return
		}
		list = append(list, err.Error())
	}
	walk(err)
	const show = 4
	s := strings.Join(list[:min(len(list), show)], ", ")
	if len(list) > show {
		s += fmt.Sprintf(" and %d more", len(list)-show)
	}
	return dir + ": " + s
}

// rwUser is the "uid:gid" a call with a read-write grant runs as: the server's own
// ids when it is not root, so that everything the skill makes in the directory is
// the server's, which can then always change and remove it; "" when the server is
// root (root can), and the image's resolved user is kept. A gid of 0 becomes 65534;
// the uid is never 0.
func rwUser() string {
	uid, gid := os.Geteuid(), os.Getegid()
	if uid == 0 {
		return ""
	}
	if uid < 0 || uid > maxID {
		return nobody
	}
	if gid <= 0 || gid > maxID {
		gid = nobodyID
	}
	return idPair(uid, gid)
}

// rwUserHint names the server's user for an error about a directory it cannot use.
func (s *Sandbox) rwUserHint() string {
	if s.rwUser == "" {
		return ""
	}
	return " (" + s.rwUser + ")"
}
