package skillpkg

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Limits bounds what Extract accepts.
type Limits struct {
	Entries   int   // entries in the archive, directories included
	FileBytes int64 // one file
	Total     int64 // all files together
}

// DefaultLimits suit a package: a few files, an image tar of up to 512MiB.
func DefaultLimits() Limits { return Limits{Entries: 256, FileBytes: 512 << 20, Total: 512 << 20} }

// ArchiveError is an archive Extract refuses.
type ArchiveError struct {
	Entry  string
	Reason string
}

func (e *ArchiveError) Error() string {
	if e.Entry == "" {
		return "archive: " + e.Reason
	}
	return fmt.Sprintf("archive entry %q: %s", e.Entry, e.Reason)
}

// Files lists the files that make up the package in dir, in archive order: skill.yaml,
// the code when it is a local file, and the bundle when present.
func Files(dir string) ([]string, error) {
	p, err := Load(dir)
	if err != nil {
		return nil, err
	}
	files := []string{ManifestFile}
	if !(p.Manifest.Sandbox.Container != nil && p.Manifest.Sandbox.Container.FromRegistry()) {
		files = append(files, p.Code.Name)
	}
	if p.HasBundle {
		files = append(files, BundleFile)
	}
	sort.Strings(files)
	return files, nil
}

// Archive writes the package in dir to out as a deterministic .tar.gz: the package's
// files only, sorted, with zeroed times and owners and fixed modes, so the same
// package always gives the same bytes.
func Archive(dir, out string) error {
	files, err := Files(dir)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := writeArchive(dir, files, f); err != nil {
		f.Close()
		os.Remove(out)
		return fmt.Errorf("archive %s: %w", out, err)
	}
	return f.Close()
}

func writeArchive(dir string, files []string, w io.Writer) error {
	gz, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	for _, name := range files {
		src, err := openIn(dir, name)
		if err != nil {
			return err
		}
		st, err := src.Stat()
		if err == nil {
			err = tw.WriteHeader(&tar.Header{
				Typeflag: tar.TypeReg, Name: name, Size: st.Size(), Mode: 0o644,
				ModTime: time.Unix(0, 0), Format: tar.FormatPAX,
			})
		}
		if err == nil {
			_, err = io.Copy(tw, src)
		}
		src.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// Extract unpacks a package archive into destDir, which must not exist or be empty,
// with DefaultLimits.
func Extract(file, destDir string) error { return ExtractLimits(file, destDir, DefaultLimits()) }

// ExtractLimits unpacks a .tar.gz into destDir, accepting only regular files and
// directories with clean relative names, no duplicates, and sizes within lim. On any
// refusal it removes what it wrote and returns an *ArchiveError.
func ExtractLimits(file, destDir string, lim Limits) (err error) {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := os.Mkdir(destDir, 0o755); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
		ents, rerr := os.ReadDir(destDir)
		if rerr != nil {
			return rerr
		}
		if len(ents) > 0 {
			return fmt.Errorf("extract: %s is not empty", destDir)
		}
	}
	defer func() {
		if err != nil {
			cleanDir(destDir)
		}
	}()
	root, err := os.OpenRoot(destDir)
	if err != nil {
		return err
	}
	defer root.Close()
	gz, err := gzip.NewReader(f)
	if errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		// Not a package at all (a key, a zip, an empty file): say what is wanted.
		return &ArchiveError{Reason: "not a .tar.gz (no gzip header): want a package made by skillbox pack -o"}
	}
	if err != nil {
		return &ArchiveError{Reason: "not gzip: " + err.Error()}
	}
	// Meta headers (PAX records, GNU long names) are read inside tr.Next and are no
	// entries: the tar stream itself is bounded, or a run of them would be read to the
	// end of any amount of decompressed data.
	bound := streamBound(lim)
	stream := &streamLimit{r: gz, max: bound, left: bound}
	tr := tar.NewReader(stream)
	seen := map[string]bool{}
	var total int64
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, errStreamLimit) {
			return &ArchiveError{Reason: stream.reason()}
		}
		if err != nil {
			return &ArchiveError{Reason: "corrupt: " + err.Error()}
		}
		if n >= lim.Entries {
			return &ArchiveError{Reason: fmt.Sprintf("more than %d entries", lim.Entries)}
		}
		name, err := entryName(h.Name)
		if err != nil {
			return &ArchiveError{Entry: h.Name, Reason: err.Error()}
		}
		if name == "" { // "./"
			continue
		}
		if seen[name] {
			return &ArchiveError{Entry: h.Name, Reason: "duplicate entry"}
		}
		seen[name] = true
		switch h.Typeflag {
		case tar.TypeDir:
			if err := mkdirAll(root, name); err != nil {
				return &ArchiveError{Entry: h.Name, Reason: err.Error()}
			}
			continue
		case tar.TypeReg:
		case tar.TypeSymlink, tar.TypeLink:
			return &ArchiveError{Entry: h.Name, Reason: "links are not allowed"}
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			return &ArchiveError{Entry: h.Name, Reason: "devices and pipes are not allowed"}
		default:
			return &ArchiveError{Entry: h.Name, Reason: fmt.Sprintf("unsupported entry type %q", h.Typeflag)}
		}
		if h.Size > lim.FileBytes {
			return &ArchiveError{Entry: h.Name, Reason: fmt.Sprintf("%d bytes, over the limit of %d per file", h.Size, lim.FileBytes)}
		}
		if total+h.Size > lim.Total {
			return &ArchiveError{Entry: h.Name, Reason: fmt.Sprintf("archive over the limit of %d bytes in all", lim.Total)}
		}
		if dir := path.Dir(name); dir != "." {
			if err := mkdirAll(root, dir); err != nil {
				return &ArchiveError{Entry: h.Name, Reason: err.Error()}
			}
		}
		out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return &ArchiveError{Entry: h.Name, Reason: err.Error()}
		}
		// The header's size is what tar reads; count real bytes anyway.
		written, err := io.Copy(out, io.LimitReader(tr, h.Size))
		cerr := out.Close()
		if errors.Is(err, errStreamLimit) {
			return &ArchiveError{Entry: h.Name, Reason: stream.reason()}
		}
		if err != nil {
			return &ArchiveError{Entry: h.Name, Reason: "corrupt: " + err.Error()}
		}
		if cerr != nil {
			return cerr
		}
		total += written
	}
	return nil
}

// metaPerEntry is what one entry may take of the tar stream besides its file's bytes: a
// 512-byte header, a PAX or GNU long-name record and padding need about 2 KiB.
const metaPerEntry = 16 << 10

// streamBound is how many bytes of tar stream an archive within lim can need: its
// files' bytes, and headers for each entry and the end-of-archive blocks.
func streamBound(lim Limits) int64 {
	n := lim.Total + int64(lim.Entries+1)*metaPerEntry
	if n < lim.Total { // overflow: no bound beyond Total's
		return math.MaxInt64
	}
	return n
}

var errStreamLimit = errors.New("tar stream over its limit")

// streamLimit reads at most max bytes of r (the decompressed tar stream), then fails
// with errStreamLimit.
type streamLimit struct {
	r         io.Reader
	max, left int64
}

func (s *streamLimit) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, errStreamLimit
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.r.Read(p)
	s.left -= int64(n)
	return n, err
}

func (s *streamLimit) reason() string {
	return fmt.Sprintf("tar stream over the limit of %d bytes (the files' bytes and their headers' due)", s.max)
}

// entryName checks an archive name and returns it clean and relative ("" for "./").
func entryName(raw string) (string, error) {
	name := strings.TrimPrefix(raw, "./")
	name = strings.TrimSuffix(name, "/")
	switch {
	case strings.HasPrefix(raw, "/"):
		return "", errors.New("absolute path")
	case strings.ContainsAny(name, "\\\x00"):
		return "", errors.New("backslash or NUL in name")
	case name == "" || name == ".":
		return "", nil
	case name == ".." || strings.HasPrefix(name, "../") || strings.Contains(name, "/../") || strings.HasSuffix(name, "/.."):
		return "", errors.New("path leaves the package (..)")
	case path.Clean(name) != name:
		return "", errors.New("unclean path")
	}
	return name, nil
}

func mkdirAll(root *os.Root, dir string) error {
	cur := ""
	for _, part := range strings.Split(dir, "/") {
		cur = path.Join(cur, part)
		if err := root.Mkdir(cur, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		st, err := root.Lstat(cur)
		if err != nil {
			return err
		}
		if !st.IsDir() {
			return fmt.Errorf("%s is not a directory", cur)
		}
	}
	return nil
}

// cleanDir empties dir after a failed extraction (dir itself stays: it may have been
// the caller's empty directory).
func cleanDir(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}
