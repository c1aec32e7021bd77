// Package skillpkg reads, fills and archives skill package directories: skill.yaml,
// the code (module.wasm or a docker-save image.tar) and the Sigstore bundle. It is the
// one place that knows which files a signature covers (Subjects); signing checks the
// digests it is given.
package skillpkg

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/signing/subject"
)

// File names inside a package directory.
const (
	ManifestFile = "skill.yaml"
	BundleFile   = "skill.sigstore.json"
)

// Package is a loaded, validated package directory.
type Package struct {
	Dir      string
	Manifest *manifest.Manifest
	// ManifestBytes are skill.yaml exactly as on disk: what is signed and digested.
	ManifestBytes []byte
	// Code is the code subject: its name (module path, image tar path or registry
	// reference) and its digest as lowercase hex (module sha256 or image ID).
	Code subject.Subject
	// HasBundle reports whether skill.sigstore.json is present.
	HasBundle bool
	// Stale is set only by LoadStale: the code's digest differs from what skill.yaml
	// records. Code holds the digest of the code on disk.
	Stale *DigestMismatchError
}

// Subjects are the two subjects p's signature covers: skill.yaml's bytes and the code,
// as Load computed them from the files.
func (p *Package) Subjects() (manifestSubj, code subject.Subject) {
	return ManifestSubject(p.ManifestBytes), p.Code
}

// CodeDigest is the code's digest in its canonical spelling (a module's sha256 or an
// image ID), as a sandbox checks it.
func (p *Package) CodeDigest() manifest.Digest {
	d, _ := manifest.ParseHexDigest(p.Code.SHA256) // Load computed it
	return d
}

// ManifestError is a skill.yaml that does not parse or validate; Err is usually a
// *manifest.Error listing every problem.
type ManifestError struct {
	File string
	Err  error
}

func (e *ManifestError) Error() string { return e.File + ": " + e.Err.Error() }
func (e *ManifestError) Unwrap() error { return e.Err }

// DigestMismatchError is code whose digest differs from what skill.yaml records.
type DigestMismatchError struct {
	Name, Field, Recorded, Actual string
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("%s: digest %s does not match %s %s (run skillbox pack)", e.Name, e.Actual, e.Field, e.Recorded)
}

// Load reads and validates a package directory and checks that the code on disk has
// the digest skill.yaml records.
func Load(dir string) (*Package, error) {
	p, err := LoadStale(dir)
	if err == nil && p.Stale != nil {
		return nil, p.Stale
	}
	return p, err
}

// LoadStale is Load for the author's inner loop: code whose digest differs from what
// skill.yaml records is loaded anyway, as it is on disk, with the difference in
// Package.Stale. Such a package can never verify; it can be run unverified.
func LoadStale(dir string) (*Package, error) { return LoadStaleWith(dir, nil) }

// LoadStaleWith is LoadStale remembering the manifest's schema checks in checks
// (manifest.ParseWith).
func LoadStaleWith(dir string, checks manifest.SchemaChecks) (*Package, error) {
	mpath := filepath.Join(dir, ManifestFile)
	data, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	m, err := manifest.ParseWith(data, checks)
	if err != nil {
		return nil, &ManifestError{File: mpath, Err: err}
	}
	name, sum, err := codeSubject(dir, m)
	if err != nil {
		return nil, err
	}
	var stale *DigestMismatchError
	if sum != m.Sandbox.CodeDigest() {
		// Each field's own spelling: bare hex for the module, an image ID for an image.
		if m.Sandbox.Wasm != nil {
			stale = &DigestMismatchError{name, "sandbox.wasm.sha256", m.Sandbox.Wasm.SHA256, sum.Hex()}
		} else {
			stale = &DigestMismatchError{name, "sandbox.container.id", m.Sandbox.Container.ID, sum.String()}
		}
	}
	_, berr := os.Lstat(filepath.Join(dir, BundleFile))
	return &Package{Dir: dir, Manifest: m, ManifestBytes: data, Code: subject.Subject{Name: name, SHA256: sum.Hex()},
		HasBundle: berr == nil, Stale: stale}, nil
}

// ManifestDigest is the digest of skill.yaml's bytes, "sha256:<hex>".
func ManifestDigest(data []byte) string {
	return manifest.DigestOf(data).String()
}

// ManifestSubject is skill.yaml's subject, from its exact bytes: what a signature over
// the manifest alone is checked against before anything in it is parsed.
func ManifestSubject(data []byte) subject.Subject {
	return subject.Subject{Name: ManifestFile, SHA256: manifest.DigestOf(data).Hex()}
}

// Subjects is the one way from a package directory to the two subjects its signature
// covers, computed from the files in dir: skill.yaml's bytes as they are now, and the
// code m names (m is dir's skill.yaml, parsed): a module's sha256, the image ID computed
// from an image tar, or a registry image's recorded ID (the container sandbox checks
// it after pulling). Unlike Load it does not compare a module with the digest m
// records: a mismatch is the signature check's to name. An image tar must hold the
// image m runs, whatever was signed.
func Subjects(dir string, m *manifest.Manifest) (manifestSubj, code subject.Subject, err error) {
	data, err := readManifest(dir)
	if err != nil {
		return manifestSubj, code, err
	}
	if len(data) > manifest.MaxManifestBytes {
		// Read only this far: its digest would not be the file's.
		return manifestSubj, code, fmt.Errorf("%s: larger than %d bytes", ManifestFile, manifest.MaxManifestBytes)
	}
	name, sum, err := codeSubject(dir, m)
	if err != nil {
		return manifestSubj, code, err
	}
	// The container sandbox runs the image sandbox.container.id names and loads the
	// tar only when the engine lacks it: a tar holding another image would let a
	// package verify over one image and run another already on the host. (A module is
	// what runs, and the store checks it against skill.yaml as it copies it.)
	if c := m.Sandbox.Container; c != nil && !c.FromRegistry() && sum != m.Sandbox.CodeDigest() {
		return manifestSubj, code, &DigestMismatchError{name, "sandbox.container.id", c.ID, sum.String()}
	}
	return ManifestSubject(data), subject.Subject{Name: name, SHA256: sum.Hex()}, nil
}

// codeSubject computes the code's name and digest from the files in dir. A registry
// reference cannot be digested without pulling it: its name is the reference and its
// digest the ID skill.yaml records.
func codeSubject(dir string, m *manifest.Manifest) (string, manifest.Digest, error) {
	switch {
	case m.Sandbox.Wasm != nil:
		name := m.Sandbox.Wasm.Module
		sum, err := fileDigest(dir, name)
		return name, sum, err
	case m.Sandbox.Container != nil:
		name := m.Sandbox.Container.Image
		if m.Sandbox.Container.FromRegistry() {
			id, err := manifest.ParseDigest(m.Sandbox.Container.ID)
			if err != nil {
				return name, manifest.Digest{}, fmt.Errorf("%s: no image ID recorded in sandbox.container.id", name)
			}
			return name, id, nil
		}
		sum, err := imageIDIn(dir, name)
		return name, sum, err
	}
	return "", manifest.Digest{}, errors.New("manifest has no sandbox")
}

// openIn opens name inside dir without following anything out of it.
func openIn(dir, name string) (*os.File, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: not found in the package (build it first?): %w", name, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	return f, nil
}

// readManifest reads skill.yaml from inside dir (a symlink may not lead out of it).
func readManifest(dir string) ([]byte, error) {
	f, err := openIn(dir, ManifestFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no %s: not a skill package", dir, ManifestFile)
		}
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, manifest.MaxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestFile, err)
	}
	return data, nil
}

func fileDigest(dir, name string) (manifest.Digest, error) {
	f, err := openIn(dir, name)
	if err != nil {
		return manifest.Digest{}, err
	}
	defer f.Close()
	sum, err := manifest.DigestOfReader(f)
	if err != nil {
		return manifest.Digest{}, fmt.Errorf("%s: %w", name, err)
	}
	return sum, nil
}

func imageIDIn(dir, name string) (manifest.Digest, error) {
	f, err := openIn(dir, name)
	if err != nil {
		return manifest.Digest{}, err
	}
	defer f.Close()
	id, err := ImageID(f)
	if err != nil {
		return manifest.Digest{}, fmt.Errorf("%s: %w", name, err)
	}
	return manifest.ParseHexDigest(id)
}
