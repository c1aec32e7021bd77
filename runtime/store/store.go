// Package store keeps installed skill packages, content-addressed by the sha256 of their
// skill.yaml under $SKILLBOX_HOME/skills/<hex>/, and the kill-switch state that must
// survive restarts ($SKILLBOX_HOME/disabled/NAME). Installed packages are written once
// (temp directory, fsync, rename), read-only, and never edited in place; the name index
// is derived by scanning, so it cannot drift from what is on disk.
//
// The store moves bytes; it does not judge them. Verifying signatures and approvals is
// the engine's job, done on the staged copy through InstallChecked so that what was
// verified is exactly what is committed.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/manifest"
)

// Package file names fixed by the spec.
const (
	ManifestFile = "skill.yaml"
	BundleFile   = "skill.sigstore.json"
)

// ErrNotFound: no installed skill matches the name and pin.
var ErrNotFound = errors.New("not installed")

// Entry is one installed package.
type Entry struct {
	Name           string
	Version        string
	ManifestDigest string // sha256:<hex> of skill.yaml, computed by the store
	CodeDigest     string // sha256:<hex> of the wasm module, or the container image ID
	Dir            string // the read-only package directory
	InstalledAt    time.Time
	Manifest       *manifest.Manifest // shared; treat as read-only

	digest manifest.Digest // ManifestDigest, parsed
}

// Store is one $SKILLBOX_HOME's skills. It is safe for concurrent use.
type Store struct {
	skills   string
	disabled string

	mu    sync.Mutex
	cache map[manifest.Digest]*Entry // package directories never change
	index *nameIndex                 // see names; nil until first needed
}

// nameIndex maps each installed skill name to the digests of its packages, as a scan
// of the skills directory found them when its modification time was mtime.
type nameIndex struct {
	mtime   time.Time
	scanned time.Time
	names   map[string][]manifest.Digest
}

// racyWindow: a directory modified this shortly before it was scanned may be modified
// again within the same timestamp tick, and the index would not notice; such an index
// is rebuilt on its next use instead of trusted (as git treats a "racily clean" index).
const racyWindow = 2 * time.Second

// SkillsDir is where home's installed packages live: skills/<hex>/.
func SkillsDir(home string) string { return filepath.Join(home, "skills") }

// DisabledDir is where home's kill-switch markers live: disabled/NAME.
func DisabledDir(home string) string { return filepath.Join(home, "disabled") }

// Open prepares SkillsDir(home) and DisabledDir(home).
func Open(home string) (*Store, error) {
	s := &Store{
		skills:   SkillsDir(home),
		disabled: DisabledDir(home),
		cache:    map[manifest.Digest]*Entry{},
	}
	for _, d := range []string{s.skills, s.disabled} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	return s, nil
}

// CheckFunc inspects a staged package directory before it is committed; an error
// aborts the install and leaves nothing behind.
type CheckFunc func(ctx context.Context, stagedDir string, e Entry) error

// RawCheckFunc judges a package from the exact bytes of its skill.yaml and its bundle
// (nil when it has none) before anything in them is parsed; an error aborts the install.
// The bytes judged are the bytes committed.
type RawCheckFunc func(ctx context.Context, manifest, bundle []byte) error

// MaxBundleBytes bounds skill.sigstore.json (a real one is a few KiB).
const MaxBundleBytes = 1 << 20

// Install copies the package in srcDir into the store. See InstallVerified.
func (s *Store) Install(ctx context.Context, srcDir string) (Entry, error) {
	return s.InstallVerified(ctx, srcDir, InstallOptions{})
}

// InstallChecked is InstallVerified with only a check on the staged copy.
func (s *Store) InstallChecked(ctx context.Context, srcDir string, check CheckFunc) (Entry, error) {
	return s.InstallVerified(ctx, srcDir, InstallOptions{Check: check})
}

// InstallOptions are the caller's judgements on a package being installed, and the
// name its errors give it.
type InstallOptions struct {
	// Source is what errors call the package ("install SOURCE: ..."); empty means the
	// directory itself. An archive extracted to a temporary directory is named by the
	// archive, so that no message points at a directory that is gone.
	Source string
	// Raw runs first, on the exact bytes of skill.yaml and the bundle, before the
	// manifest is parsed.
	Raw RawCheckFunc
	// Check runs on the staged copy before the commit.
	Check CheckFunc
}

// InstallVerified copies the package in srcDir (skill.yaml, the code file the manifest
// names, and skill.sigstore.json if present) into a staging directory and commits it as
// skills/<hex>/. opts.Raw runs first, on the bytes of skill.yaml and the bundle, before
// the manifest is parsed: a package whose signature does not hold never has its
// manifest (or its schemas, which are costly to compile) interpreted. opts.Check runs
// on the staged copy before the commit. Symlinks, other file types and files that are
// not part of the package are refused. A wasm module whose sha256 differs from the
// manifest's is refused. Installing a package already present returns its entry.
// Errors keep the chain of what refused the package (a check's typed error, a
// *manifest.Error) and name it as opts.Source.
func (s *Store) InstallVerified(ctx context.Context, srcDir string, opts InstallOptions) (Entry, error) {
	src, raw, check := opts.Source, opts.Raw, opts.Check
	if src == "" {
		src = srcDir
	}
	root, err := os.OpenRoot(srcDir)
	if err != nil {
		return Entry{}, fmt.Errorf("install %s: %w", src, err)
	}
	defer root.Close()

	rawManifest, err := readFile(root, ManifestFile, manifest.MaxManifestBytes)
	if err != nil {
		return Entry{}, fmt.Errorf("install %s: %w", src, err)
	}
	bundle, err := readFile(root, BundleFile, MaxBundleBytes)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Entry{}, fmt.Errorf("install %s: %w", src, err)
	}
	if raw != nil {
		if err := raw(ctx, rawManifest, bundle); err != nil {
			return Entry{}, fmt.Errorf("install %s: %w", src, err)
		}
	}
	m, err := manifest.Parse(rawManifest)
	if err != nil {
		return Entry{}, fmt.Errorf("install %s: %s: %w", src, ManifestFile, oneLineError{err})
	}
	files, err := packageFiles(root, m)
	if err != nil {
		return Entry{}, fmt.Errorf("install %s: %w", src, err)
	}
	sum := manifest.DigestOf(rawManifest)
	final := filepath.Join(s.skills, sum.Hex())
	if e, err := s.load(sum); err == nil {
		return *e, nil
	}

	stage, err := os.MkdirTemp(s.skills, ".stage-")
	if err != nil {
		return Entry{}, fmt.Errorf("install: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			removeReadOnly(stage)
		}
	}()
	for _, name := range files {
		if err := ctx.Err(); err != nil {
			return Entry{}, fmt.Errorf("install: %w", err)
		}
		var digest manifest.Digest
		switch name {
		case ManifestFile:
			err = writeFile(stage, name, rawManifest)
		case BundleFile:
			// The bytes the raw check judged, not a second read of the file.
			err = writeFile(stage, name, bundle)
		default:
			digest, err = copyFile(root, stage, name)
		}
		if err != nil {
			return Entry{}, fmt.Errorf("install %s: %s: %w", src, name, err)
		}
		if w := m.Sandbox.Wasm; w != nil && name == w.Module && digest != m.Sandbox.CodeDigest() {
			return Entry{}, fmt.Errorf("install %s: %s: sha256 %s does not match the manifest's %s", src, name, digest.Hex(), w.SHA256)
		}
	}
	e := entryFor(m, sum, final)
	if check != nil {
		if err := check(ctx, stage, e); err != nil {
			return Entry{}, fmt.Errorf("install %s: %w", src, err)
		}
	}
	if err := seal(stage); err != nil {
		return Entry{}, fmt.Errorf("install: %w", err)
	}
	if err := os.Rename(stage, final); err != nil {
		if _, statErr := os.Stat(final); statErr == nil {
			// A concurrent install of the same package won: same digest, same bytes.
			if e, err := s.load(sum); err == nil {
				return *e, nil
			}
		}
		return Entry{}, fmt.Errorf("install: %w", err)
	}
	committed = true
	s.mu.Lock()
	s.index = nil // this process's install is seen at once, whatever the mtime says
	s.mu.Unlock()
	syncDir(s.skills)
	got, err := s.load(sum)
	if err != nil {
		return Entry{}, fmt.Errorf("install: reading back: %w", err)
	}
	return *got, nil
}

// packageFiles lists the files to copy and refuses anything else in the directory.
func packageFiles(root *os.Root, m *manifest.Manifest) ([]string, error) {
	want := map[string]bool{ManifestFile: true, BundleFile: false}
	var code string
	switch {
	case m.Sandbox.Wasm != nil:
		code = m.Sandbox.Wasm.Module
	case m.Sandbox.Container != nil && !m.Sandbox.Container.FromRegistry():
		code = m.Sandbox.Container.Image
	}
	if code != "" {
		want[code] = true
	}
	dirs := map[string]bool{}
	for d := path.Dir(code); code != "" && d != "."; d = path.Dir(d) {
		dirs[d] = true
	}
	var files []string
	err := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			return fmt.Errorf("%s: symlinks are not allowed in a package", p)
		case d.IsDir():
			if !dirs[p] {
				return fmt.Errorf("%s/: unexpected directory (a package holds only %s)", p, describeFiles(want))
			}
			return nil
		case !t.IsRegular():
			return fmt.Errorf("%s: not a regular file", p)
		}
		if _, ok := want[p]; !ok {
			return fmt.Errorf("%s: unexpected file (a package holds only %s; `skillbox pack -o` builds one)", p, describeFiles(want))
		}
		files = append(files, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for name, required := range want {
		if required && !slices.Contains(files, name) {
			return nil, fmt.Errorf("%s: missing from the package", name)
		}
	}
	slices.Sort(files)
	return files, nil
}

func describeFiles(want map[string]bool) string {
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func readFile(root *os.Root, name string, max int64) ([]byte, error) {
	st, err := root.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, max)
	}
	return b, nil
}

func writeFile(dir, name string, data []byte) error {
	f, err := create(dir, name)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return closeSynced(f)
}

// copyFile copies root/name to dir/name and returns the digest of the bytes copied.
func copyFile(root *os.Root, dir, name string) (manifest.Digest, error) {
	src, err := root.Open(name)
	if err != nil {
		return manifest.Digest{}, err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return manifest.Digest{}, err
	}
	if !st.Mode().IsRegular() {
		return manifest.Digest{}, errors.New("not a regular file")
	}
	dst, err := create(dir, name)
	if err != nil {
		return manifest.Digest{}, err
	}
	sum, err := manifest.DigestOfReader(io.TeeReader(src, dst))
	if err != nil {
		dst.Close()
		return manifest.Digest{}, err
	}
	return sum, closeSynced(dst)
}

func create(dir, name string) (*os.File, error) {
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	return os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}

func closeSynced(f *os.File) error {
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// seal makes the staged tree read-only (files 0444, directories 0555) and syncs the
// directories, so the rename commits complete content.
func seal(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		return os.Chmod(p, 0o444)
	})
	if err != nil {
		return err
	}
	// Deepest first, so a parent is made read-only after its children.
	for _, d := range slices.Backward(dirs) {
		syncDir(d)
		if err := os.Chmod(d, 0o555); err != nil {
			return err
		}
	}
	return nil
}

func removeReadOnly(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	_ = os.RemoveAll(dir)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

func entryFor(m *manifest.Manifest, sum manifest.Digest, dir string) Entry {
	return Entry{Name: m.Name, Version: m.Version, ManifestDigest: sum.String(), CodeDigest: m.Sandbox.CodeDigest().String(),
		Dir: dir, Manifest: m, digest: sum}
}

// load reads one installed package, re-checking that its skill.yaml still hashes to its
// directory name (the store never trusts a digest it did not compute).
func (s *Store) load(sum manifest.Digest) (*Entry, error) {
	s.mu.Lock()
	e, ok := s.cache[sum]
	s.mu.Unlock()
	if ok {
		return e, nil
	}
	dir := filepath.Join(s.skills, sum.Hex())
	st, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: not a directory", dir)
	}
	f, err := os.Open(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(io.LimitReader(f, manifest.MaxManifestBytes+1))
	f.Close()
	if err != nil {
		return nil, err
	}
	if manifest.DigestOf(raw) != sum {
		return nil, fmt.Errorf("%s: skill.yaml does not match its digest (the store was modified)", dir)
	}
	m, err := manifest.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, oneLineError{err})
	}
	ne := entryFor(m, sum, dir)
	ne.InstalledAt = st.ModTime()
	s.mu.Lock()
	s.cache[sum] = &ne
	s.mu.Unlock()
	return &ne, nil
}

// List returns every installed package, sorted by name, then newest version first.
// A damaged package directory is an error naming it.
func (s *Store) List() ([]Entry, error) {
	ents, err := os.ReadDir(s.skills)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var out []Entry
	for _, d := range ents {
		sum, err := manifest.ParseHexDigest(d.Name())
		if err != nil {
			continue // staging directories and anything else
		}
		e, err := s.load(sum)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		if c := CompareVersions(b.Version, a.Version); c != 0 {
			return c
		}
		return b.InstalledAt.Compare(a.InstalledAt)
	})
	return out, nil
}

// Versions returns the installed packages of one skill, newest version first.
func (s *Store) Versions(name string) ([]Entry, error) {
	idx, err := s.names()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, sum := range idx[name] {
		e, err := s.load(sum)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := CompareVersions(b.Version, a.Version); c != 0 {
			return c
		}
		return b.InstalledAt.Compare(a.InstalledAt)
	})
	return out, nil
}

// names is the name index: one stat of the skills directory while nothing was
// installed, a scan when something was (by this process or another: a CLI install
// beside a running server), so a name that is not installed costs no scan.
func (s *Store) names() (map[string][]manifest.Digest, error) {
	st, err := os.Stat(s.skills)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s.mu.Lock()
	idx := s.index
	s.mu.Unlock()
	if idx != nil && idx.mtime.Equal(st.ModTime()) && idx.scanned.Sub(idx.mtime) > racyWindow {
		return idx.names, nil
	}
	// Stat before the scan: a change in between makes the next stat differ.
	scanned := time.Now()
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	names := map[string][]manifest.Digest{}
	for _, e := range all {
		names[e.Name] = append(names[e.Name], e.digest)
	}
	s.mu.Lock()
	s.index = &nameIndex{mtime: st.ModTime(), scanned: scanned, names: names}
	s.mu.Unlock()
	return names, nil
}

// Lookup finds an installed package of name. pin may be empty (the newest version),
// a version ("1.2.0") or a manifest digest ("sha256:<hex>"). A version installed under
// two digests is ambiguous and must be pinned by digest.
func (s *Store) Lookup(name, pin string) (Entry, error) {
	if strings.HasPrefix(pin, manifest.DigestPrefix) {
		sum, err := manifest.ParseDigest(pin)
		if err != nil {
			return Entry{}, fmt.Errorf("%s@%s: bad digest: %w", name, pin, ErrNotFound)
		}
		e, err := s.load(sum)
		if errors.Is(err, fs.ErrNotExist) {
			return Entry{}, fmt.Errorf("%s@%s: %w", name, pin, ErrNotFound)
		}
		if err != nil {
			return Entry{}, fmt.Errorf("store: %w", err)
		}
		if e.Name != name {
			return Entry{}, fmt.Errorf("%s is %s, not %s: %w", pin, e.Name, name, ErrNotFound)
		}
		return *e, nil
	}
	vs, err := s.Versions(name)
	if err != nil {
		return Entry{}, err
	}
	if pin == "" {
		if len(vs) == 0 {
			return Entry{}, fmt.Errorf("%s: %w", name, ErrNotFound)
		}
		return vs[0], nil
	}
	var match []Entry
	for _, e := range vs {
		if e.Version == pin {
			match = append(match, e)
		}
	}
	switch len(match) {
	case 0:
		return Entry{}, fmt.Errorf("%s@%s: %w", name, pin, ErrNotFound)
	case 1:
		return match[0], nil
	}
	return Entry{}, fmt.Errorf("%s@%s is installed as %s and %s: pin a digest", name, pin, match[0].ManifestDigest, match[1].ManifestDigest)
}

// oneLineError is err in one line (a *manifest.Error lists a problem per line); it
// unwraps to err, so callers can still find the problems.
type oneLineError struct{ err error }

func (e oneLineError) Error() string { return strings.ReplaceAll(e.err.Error(), "\n", "; ") }
func (e oneLineError) Unwrap() error { return e.err }
