package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/skillbox-dev/skillbox/manifest"
)

// OriginsDir is where home keeps where installed packages came from: origins/<hex>
// holds the registry reference pinned by digest (oci://HOST/REPO@sha256:…) of the
// package whose skill.yaml has that sha256. A package installed from a directory or an
// archive has none. Other replicas pull the same artifact by it (runtime/replica).
func OriginsDir(home string) string { return filepath.Join(home, "origins") }

// maxOriginBytes bounds an origin file: one reference.
const maxOriginBytes = 4 << 10

// SetOrigin records that the package with manifest digest md came from ref.
func SetOrigin(home, md, ref string) error {
	d, err := manifest.ParseDigest(md)
	if err != nil {
		return fmt.Errorf("store: origin: %w", err)
	}
	if ref == "" || len(ref) > maxOriginBytes || strings.ContainsAny(ref, "\n\r") {
		return fmt.Errorf("store: origin of %s: not one reference", md)
	}
	dir := OriginsDir(home)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store: origin: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".origin-*")
	if err != nil {
		return fmt.Errorf("store: origin: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(ref + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, d.Hex()))
	}
	if err != nil {
		return fmt.Errorf("store: origin: %w", err)
	}
	return nil
}

// Origin is the registry reference the package with manifest digest md came from,
// or "" when it was installed from a directory or an archive (or is not installed).
func Origin(home, md string) (string, error) {
	d, err := manifest.ParseDigest(md)
	if err != nil {
		return "", fmt.Errorf("store: origin: %w", err)
	}
	f, err := os.Open(filepath.Join(OriginsDir(home), d.Hex()))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: origin: %w", err)
	}
	defer f.Close()
	buf := make([]byte, maxOriginBytes+2)
	n, _ := f.Read(buf)
	ref, ok := strings.CutSuffix(string(buf[:n]), "\n")
	if !ok || strings.ContainsAny(ref, "\n\r") || ref == "" {
		return "", fmt.Errorf("store: origin of %s: not one reference", md)
	}
	return ref, nil
}
