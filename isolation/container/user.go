package container

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"

	"github.com/skillbox-dev/skillbox/isolation"
)

// A skill never runs as uid 0 or gid 0, whatever its image says. The engine (and
// runc under it) reads USER leniently: "+0", "-0" and "00" are uid 0, a name is looked
// up in the image's own /etc/passwd (which may map any name to 0), a bare uid takes
// the gid of its passwd entry or 0 when there is none, and a user given without a
// group gets supplementary groups from the image's /etc/group (where it may be listed
// in group 0). So skillbox decides the identity itself, from the same files, and
// always hands the engine an explicit numeric "uid:gid": with both parts numeric,
// runc takes exactly those ids and adds no supplementary groups. A result of 0 is
// replaced by nobody (65534).

const (
	nobodyID  = 65534
	maxID     = 1<<31 - 1 // runc refuses ids above this
	maxIDFile = 1 << 20   // bytes of /etc/passwd or /etc/group read from an image
)

// runUser returns the "uid:gid" a container of image id runs as, given its USER.
func (s *Sandbox) runUser(ctx context.Context, id, spec string) (string, error) {
	var files map[string][]byte
	return resolveUser(spec, func(name string) ([]byte, error) {
		if files == nil {
			var err error
			if files, err = s.imageFiles(ctx, id, "/etc/passwd", "/etc/group"); err != nil {
				return nil, err
			}
		}
		return files[name], nil
	})
}

// resolveUser decides the identity for USER spec as runc would, reading the image's
// /etc/passwd and /etc/group through read only when it must, and never returns 0.
func resolveUser(spec string, read func(name string) ([]byte, error)) (string, error) {
	userArg, groupArg, _ := strings.Cut(spec, ":")
	groupArg, _, _ = strings.Cut(groupArg, ":") // runc ignores fields past the second
	if userArg == "" {
		// No USER (root), or ":group" (root with a group): nobody.
		return idPair(nobodyID, nobodyID), nil
	}
	uidArg, uidErr := strconv.Atoi(userArg)
	gidArg, gidErr := strconv.Atoi(groupArg)
	uid, gid := uidArg, 0
	if uidErr != nil || groupArg == "" {
		// A name, or a uid whose gid comes from its passwd entry: look it up. (With a
		// numeric uid and a group, the entry could only confirm the same uid.)
		passwd, err := read("/etc/passwd")
		if err != nil {
			return "", err
		}
		if u, ok := findID(passwd, func(f []string) bool {
			if uidErr == nil {
				return atoi(f[2]) == uidArg
			}
			return f[0] == userArg
		}); ok {
			uid, gid = atoi(u[2]), atoi(u[3])
		} else if uidErr != nil {
			return "", isolation.Errorf(isolation.ReasonInvalidModule, "image user %q: no such user in the image's /etc/passwd", limitString(userArg, 64))
		}
	}
	if groupArg != "" && gidErr != nil {
		group, err := read("/etc/group")
		if err != nil {
			return "", err
		}
		g, ok := findID(group, func(f []string) bool { return f[0] == groupArg })
		if !ok {
			return "", isolation.Errorf(isolation.ReasonInvalidModule, "image user %q: no such group in the image's /etc/group", limitString(spec, 64))
		}
		gid = atoi(g[2])
	} else if groupArg != "" {
		gid = gidArg
	}
	if uid <= 0 || uid > maxID {
		return idPair(nobodyID, nobodyID), nil
	}
	if gid <= 0 || gid > maxID {
		gid = nobodyID
	}
	return idPair(uid, gid), nil
}

func idPair(uid, gid int) string { return strconv.Itoa(uid) + ":" + strconv.Itoa(gid) }

// atoi reads an id field as runc does: a sign is accepted, anything unparsable is 0.
func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// findID returns the fields (at least four) of the first line of a passwd or group
// file that matches.
func findID(data []byte, match func([]string) bool) ([]string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxIDFile)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Split(line, ":")
		for len(f) < 4 {
			f = append(f, "")
		}
		if match(f) {
			return f, true
		}
	}
	return nil, false
}

func limitString(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// imageFiles reads small files from an image through a created, never started
// container (removed again). A file the image lacks is absent from the map; a
// symbolic link is followed within the image, a few hops at most.
func (s *Sandbox) imageFiles(ctx context.Context, id string, names ...string) (map[string][]byte, error) {
	cfg := &container.Config{
		Image:      id,
		Entrypoint: []string{"/.skillbox-probe"}, // never started; create needs a command
		Labels:     s.labels("", "image-probe"),
	}
	c, err := s.cli.ContainerCreate(ctx, cfg, &container.HostConfig{NetworkMode: "none"}, nil, nil, "skillbox-probe-"+randomID())
	if err != nil {
		return nil, classify(err, "read the image's user files")
	}
	defer func() {
		_ = s.cli.ContainerRemove(context.WithoutCancel(ctx), c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}()
	out := map[string][]byte{}
	for _, name := range names {
		p := name
		for hop := 0; hop < 8; hop++ {
			data, link, err := s.copyOne(ctx, c.ID, p)
			if err != nil {
				return nil, err
			}
			if link == "" {
				if data != nil {
					out[name] = data
				}
				break
			}
			if !path.IsAbs(link) {
				link = path.Join(path.Dir(p), link)
			}
			p = path.Clean(link)
		}
	}
	return out, nil
}

// copyOne returns the content of a regular file, or the target of a symbolic link;
// nil and "" when the file is missing or something else.
func (s *Sandbox) copyOne(ctx context.Context, id, p string) ([]byte, string, error) {
	rc, _, err := s.cli.CopyFromContainer(ctx, id, p)
	if errdefs.IsNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", &isolation.Error{Reason: isolation.ReasonInternal, Msg: "read " + p + " from the image", Err: err}
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	h, err := tr.Next()
	if err != nil {
		return nil, "", &isolation.Error{Reason: isolation.ReasonInternal, Msg: "read " + p + " from the image", Err: err}
	}
	switch h.Typeflag {
	case tar.TypeSymlink:
		return nil, h.Linkname, nil
	case tar.TypeReg:
		data, err := io.ReadAll(io.LimitReader(tr, maxIDFile+1))
		if err != nil {
			return nil, "", &isolation.Error{Reason: isolation.ReasonInternal, Msg: "read " + p + " from the image", Err: err}
		}
		if len(data) > maxIDFile {
			return nil, "", isolation.Errorf(isolation.ReasonInvalidModule, "the image's %s is larger than %d bytes", p, maxIDFile)
		}
		return data, "", nil
	}
	return nil, "", nil
}
