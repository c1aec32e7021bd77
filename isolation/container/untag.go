package container

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// untagged streams a `docker save` tarball with its tags removed. `docker load`
// applies the tags a tarball lists, so a package could otherwise retag any image on
// the host ("postgres:16" → the author's image) for whatever runs those names later,
// outside the sandbox. skillbox runs images by ID and needs no tag. The image ID (the
// digest of the config) is unchanged.
//
// Names are removed as `docker load` reads them, not as a docker save writes them: an
// entry is matched by the name it is extracted to ("/manifest.json" and
// "a/../manifest.json" land on manifest.json), manifest.json's tags under any key
// encoding/json fills RepoTags from ("repoTags", "REPOTAGS"), and the image names the
// containerd image store takes from index.json's annotations.
func untagged(r io.Reader) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(copyUntagged(tar.NewReader(r), tar.NewWriter(pw))) }()
	return pr
}

func copyUntagged(tr *tar.Reader, tw *tar.Writer) error {
	links := map[string]bool{} // entries extracted as symbolic links
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return fmt.Errorf("read image tar: %w", err)
		}
		name := extractedName(h.Name)
		// Extraction writes "d/manifest.json" through a link d → . to manifest.json: an
		// entry behind a link could land anywhere, so none is loaded (a docker save
		// links files, never directories).
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if links[dir] {
				return fmt.Errorf("image tar: entry %q is written through the symbolic link %q: refused", h.Name, dir)
			}
		}
		if h.Typeflag == tar.TypeSymlink || (h.Typeflag == tar.TypeLink && links[extractedName(h.Linkname)]) {
			links[name] = true
		}
		var strip func([]byte) ([]byte, error)
		switch name {
		case "repositories": // the legacy tag list: dropped
			continue
		case "manifest.json":
			strip = stripRepoTags
		case "index.json":
			strip = stripIndexNames
		}
		if strip != nil {
			data, err := io.ReadAll(io.LimitReader(tr, 16<<20))
			if err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
			if data, err = strip(data); err != nil {
				return err
			}
			h.Size = int64(len(data))
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if _, err := tw.Write(data); err != nil {
				return err
			}
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// extractedName is the file an entry named name becomes when `docker load` extracts
// the tarball: cleaned, inside the extraction directory (moby's archive.Unpack).
func extractedName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// stripRepoTags empties every entry's RepoTags, keeping all other fields as they are.
// Docker decodes manifest.json with encoding/json, which fills RepoTags from a key
// equal to it under Unicode case folding ("repoTags", "REPOTAGS", "RepoTagſ"), the
// last such key winning: every one of them goes.
func stripRepoTags(data []byte) ([]byte, error) {
	var entries []map[string]json.RawMessage
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("image tar manifest.json: %w", err)
	}
	for _, e := range entries {
		for k := range e {
			if strings.EqualFold(k, "RepoTags") {
				delete(e, k)
			}
		}
		e["RepoTags"] = json.RawMessage("null")
	}
	return json.Marshal(entries)
}

// imageNameAnnotations are the annotations of an index.json manifest that the
// containerd image store (and `ctr import`) names an imported image by.
var imageNameAnnotations = []string{"io.containerd.image.name", ocispec.AnnotationRefName}

// stripIndexNames removes the image names from index.json (an OCI-layout save, read by
// the containerd image store), decoded and written as the importer reads it.
func stripIndexNames(data []byte) ([]byte, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("image tar index.json: %w", err)
	}
	for _, m := range idx.Manifests {
		for _, k := range imageNameAnnotations {
			delete(m.Annotations, k)
		}
	}
	return json.Marshal(idx)
}
