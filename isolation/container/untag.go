package container

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"path"
)

// untagged streams a `docker save` tarball with its tags removed. `docker load`
// applies the tags a tarball lists, so a package could otherwise retag any image on
// the host ("postgres:16" → the author's image) for whatever runs those names later,
// outside the sandbox. skillbox runs images by ID and needs no tag. The image ID (the
// digest of the config) is unchanged.
func untagged(r io.Reader) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(copyUntagged(tar.NewReader(r), tar.NewWriter(pw))) }()
	return pr
}

func copyUntagged(tr *tar.Reader, tw *tar.Writer) error {
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return fmt.Errorf("read image tar: %w", err)
		}
		switch path.Clean(h.Name) {
		case "repositories": // the legacy tag list: dropped
			continue
		case "manifest.json":
			data, err := io.ReadAll(io.LimitReader(tr, 16<<20))
			if err != nil {
				return fmt.Errorf("read manifest.json: %w", err)
			}
			if data, err = stripRepoTags(data); err != nil {
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

// stripRepoTags empties every entry's RepoTags, keeping all other fields as they are.
func stripRepoTags(data []byte) ([]byte, error) {
	var entries []map[string]json.RawMessage
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("image tar manifest.json: %w", err)
	}
	for _, e := range entries {
		e["RepoTags"] = json.RawMessage("null")
	}
	return json.Marshal(entries)
}
