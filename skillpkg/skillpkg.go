// Package skillpkg reads, fills and archives skill package directories: skill.yaml,
// the code (module.wasm or a docker-save image.tar) and the Sigstore bundle.
package skillpkg

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/skillbox-dev/skillbox/manifest"
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
	Code Subject
	// HasBundle reports whether skill.sigstore.json is present.
	HasBundle bool
}

// Subject is one signed thing: a name and its sha256 digest in hex.
type Subject struct {
	Name   string
	SHA256 string
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
	mpath := filepath.Join(dir, ManifestFile)
	data, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	m, err := manifest.Parse(data)
	if err != nil {
		return nil, &ManifestError{File: mpath, Err: err}
	}
	name, sum, err := CodeSubject(dir, m)
	if err != nil {
		return nil, err
	}
	switch {
	case m.Sandbox.Wasm != nil && sum != m.Sandbox.Wasm.SHA256:
		return nil, &DigestMismatchError{name, "sandbox.wasm.sha256", m.Sandbox.Wasm.SHA256, sum}
	case m.Sandbox.Container != nil && "sha256:"+sum != m.Sandbox.Container.ID:
		return nil, &DigestMismatchError{name, "sandbox.container.id", m.Sandbox.Container.ID, "sha256:" + sum}
	}
	_, berr := os.Lstat(filepath.Join(dir, BundleFile))
	return &Package{Dir: dir, Manifest: m, ManifestBytes: data, Code: Subject{name, sum}, HasBundle: berr == nil}, nil
}

// ManifestDigest is the digest of skill.yaml's bytes, "sha256:<hex>".
func ManifestDigest(data []byte) string {
	s := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(s[:])
}

// CodeSubject computes the code subject from the files in dir: for wasm the module's
// name and sha256; for a container image.tar its path and the image ID computed from
// the tarball. A registry reference cannot be digested without pulling it: its name
// is the reference and the digest the ID skill.yaml records, which the container
// sandbox checks after pulling.
func CodeSubject(dir string, m *manifest.Manifest) (name, sha256hex string, err error) {
	switch {
	case m.Sandbox.Wasm != nil:
		name = m.Sandbox.Wasm.Module
		sum, err := fileSHA256(dir, name)
		return name, sum, err
	case m.Sandbox.Container != nil:
		name = m.Sandbox.Container.Image
		if m.Sandbox.Container.FromRegistry() {
			id := m.Sandbox.Container.ID
			if len(id) != len("sha256:")+64 {
				return name, "", fmt.Errorf("%s: no image ID recorded in sandbox.container.id", name)
			}
			return name, id[len("sha256:"):], nil
		}
		sum, err := imageIDIn(dir, name)
		return name, sum, err
	}
	return "", "", errors.New("manifest has no sandbox")
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

func fileSHA256(dir, name string) (string, error) {
	f, err := openIn(dir, name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func imageIDIn(dir, name string) (string, error) {
	f, err := openIn(dir, name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	id, err := ImageID(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return id, nil
}
