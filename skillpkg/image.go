package skillpkg

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// maxImageMeta bounds manifest.json and the image config read from a docker-save tar.
const maxImageMeta = 4 << 20

// ImageID computes the image ID of the single image in a `docker save` tarball without
// Docker: the sha256 of the config JSON that manifest.json names. It reads the tar
// twice (manifest.json may come after the config), so r must be seekable.
func ImageID(r io.ReadSeeker) (string, error) {
	raw, err := tarEntry(r, "manifest.json")
	if err != nil {
		return "", err
	}
	var entries []struct {
		Config string `json:"Config"`
	}
	if err := json.Unmarshal(raw, &entries); err != nil {
		return "", fmt.Errorf("manifest.json: %w", err)
	}
	if len(entries) != 1 {
		return "", fmt.Errorf("manifest.json: want exactly one image, found %d", len(entries))
	}
	cfg := entries[0].Config
	if cfg == "" {
		return "", errors.New("manifest.json: no Config")
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	config, err := tarEntry(r, cfg)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(config)
	id := hex.EncodeToString(sum[:])
	// OCI-layout saves name the config by its digest: it must agree.
	if d, ok := strings.CutPrefix(path.Clean(cfg), "blobs/sha256/"); ok && d != id {
		return "", fmt.Errorf("config %s has digest %s", cfg, id)
	}
	return id, nil
}

// tarEntry returns the contents of the regular file name in a tar stream.
func tarEntry(r io.Reader, name string) ([]byte, error) {
	tr := tar.NewReader(r)
	want := path.Clean(name)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("not a docker-save tarball: no %s", name)
		}
		if err != nil {
			return nil, fmt.Errorf("read tar: %w", err)
		}
		if path.Clean(strings.TrimPrefix(h.Name, "./")) != want || h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Size > maxImageMeta {
			return nil, fmt.Errorf("%s: larger than %d bytes", name, maxImageMeta)
		}
		return io.ReadAll(io.LimitReader(tr, maxImageMeta))
	}
}
