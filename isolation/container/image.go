package container

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// MismatchError is an image tarball whose loaded ID is not the signed one.
type MismatchError struct {
	Want string
	Got  []string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("image ID mismatch: manifest says %s, tarball holds %s", e.Want, strings.Join(e.Got, ", "))
}

type imageInfo struct {
	user    string   // "uid:gid" the container runs as, never 0 (see runUser)
	volumes []string // the image's VOLUME paths, clean and sorted
}

// LoadImage loads a `docker save` tarball, without its tags, and checks that it holds
// exactly the image wantID ("sha256:…"). On a mismatch it refuses and removes the images the load added.
// An image already present under wantID is not loaded again: its ID is its content.
func (s *Sandbox) LoadImage(ctx context.Context, tarPath, wantID string) error {
	if !validID(wantID) {
		return fmt.Errorf("load %s: image id %q is not sha256:<64 hex>", tarPath, wantID)
	}
	if _, err := s.cli.ImageInspect(ctx, wantID); err == nil {
		return nil
	}
	before, err := s.imageIDs(ctx)
	if err != nil {
		return fmt.Errorf("load %s: %w", tarPath, err)
	}
	f, err := os.Open(tarPath)
	if err != nil {
		return fmt.Errorf("load image: %w", err)
	}
	defer f.Close()
	body := untagged(f)
	defer body.Close()
	resp, err := s.cli.ImageLoad(ctx, body, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("load %s: %w", tarPath, err)
	}
	defer resp.Body.Close()
	loaded, err := loadedIDs(ctx, s.cli, resp.Body)
	if err != nil {
		return fmt.Errorf("load %s: %w", tarPath, err)
	}
	if len(loaded) == 1 && loaded[0] == wantID {
		return nil
	}
	for _, id := range loaded {
		if !before[id] {
			_, _ = s.cli.ImageRemove(context.WithoutCancel(ctx), id, image.RemoveOptions{Force: true, PruneChildren: true})
		}
	}
	if len(loaded) == 0 {
		loaded = []string{"no image"}
	}
	return fmt.Errorf("load %s: %w", tarPath, &MismatchError{Want: wantID, Got: loaded})
}

// PullImage pulls a registry reference pinned by digest (repo@sha256:…) and checks
// that the image it yields has the signed ID wantID; on a mismatch the image is removed.
// The engine's registry configuration (mirrors, credentials) applies.
func (s *Sandbox) PullImage(ctx context.Context, ref, wantID string) error {
	if !validID(wantID) {
		return fmt.Errorf("pull %s: image id %q is not sha256:<64 hex>", ref, wantID)
	}
	if !strings.Contains(ref, "@"+manifest.DigestPrefix) {
		return fmt.Errorf("pull %s: a registry image must be pinned by digest (repo@sha256:…)", ref)
	}
	if _, err := s.cli.ImageInspect(ctx, wantID); err == nil {
		return nil
	}
	rc, err := s.cli.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	defer rc.Close()
	// The pull reports failures inside its progress stream.
	dec := json.NewDecoder(rc)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("pull %s: %w", ref, err)
		}
		if msg.Error != "" {
			return fmt.Errorf("pull %s: %s", ref, msg.Error)
		}
	}
	ins, err := s.cli.ImageInspect(ctx, ref)
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	if ins.ID != wantID {
		_, _ = s.cli.ImageRemove(context.WithoutCancel(ctx), ins.ID, image.RemoveOptions{Force: true, PruneChildren: true})
		return fmt.Errorf("pull %s: %w", ref, &MismatchError{Want: wantID, Got: []string{ins.ID}})
	}
	return nil
}

func (s *Sandbox) imageIDs(ctx context.Context) (map[string]bool, error) {
	list, err := s.cli.ImageList(ctx, image.ListOptions{All: true})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	ids := make(map[string]bool, len(list))
	for _, im := range list {
		ids[im.ID] = true
	}
	return ids, nil
}

// loadedIDs reads the load response stream ("Loaded image ID: …" or "Loaded image:
// repo:tag") and returns the IDs it names.
func loadedIDs(ctx context.Context, cli *client.Client, body interface{ Read([]byte) (int, error) }) ([]string, error) {
	var ids []string
	seen := map[string]bool{}
	dec := json.NewDecoder(bufio.NewReader(body))
	for dec.More() {
		var msg struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&msg); err != nil {
			return nil, fmt.Errorf("read load response: %w", err)
		}
		if msg.Error != "" {
			return nil, fmt.Errorf("engine: %s", msg.Error)
		}
		line := strings.TrimSpace(msg.Stream)
		var id string
		switch {
		case strings.HasPrefix(line, "Loaded image ID: "):
			id = strings.TrimPrefix(line, "Loaded image ID: ")
		case strings.HasPrefix(line, "Loaded image: "):
			ins, err := cli.ImageInspect(ctx, strings.TrimPrefix(line, "Loaded image: "))
			if err != nil {
				return nil, fmt.Errorf("inspect loaded image: %w", err)
			}
			id = ins.ID
		default:
			continue
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// Prepare implements isolation.Preparer: it makes the skill's image present in the
// Docker engine, loading the package's image.tar from skill.Dir or pulling its
// registry reference, and checks that it has the signed ID. An image already present
// under its ID is not loaded again: its ID is its content.
func (s *Sandbox) Prepare(ctx context.Context, skill isolation.Skill) error {
	if skill.Manifest == nil || skill.Manifest.Sandbox.Container == nil {
		return isolation.Errorf(isolation.ReasonInvalidModule, "not a container skill")
	}
	c := skill.Manifest.Sandbox.Container
	return s.loadOrPull(ctx, c, skill.Dir, c.ID)
}

// loadOrPull is the one way an image gets into the Docker engine: pulled when the
// manifest names a registry reference, else loaded from the image.tar in dir; either
// way checked against wantID.
func (s *Sandbox) loadOrPull(ctx context.Context, c *manifest.ContainerSandbox, dir, wantID string) error {
	if c.FromRegistry() {
		return s.PullImage(ctx, c.Image, wantID)
	}
	// Clean as an absolute path first: the tarball stays inside dir whatever Image says.
	return s.LoadImage(ctx, filepath.Join(dir, filepath.Clean("/"+filepath.FromSlash(c.Image))), wantID)
}

// ensureImage makes sure the call's image is present (loading the package's tarball
// when it is not) and returns what running it needs to know.
func (s *Sandbox) ensureImage(ctx context.Context, sk isolation.Skill) (string, imageInfo, error) {
	id := sk.Digest
	var tar string
	if c := sk.Manifest; c != nil && c.Sandbox.Container != nil {
		if id == "" {
			id = c.Sandbox.Container.ID
		}
		tar = c.Sandbox.Container.Image
	}
	if !validID(id) {
		return "", imageInfo{}, isolation.Errorf(isolation.ReasonInvalidModule, "image id %q is not sha256:<64 hex>", id)
	}
	s.mu.Lock()
	info, ok := s.images[id]
	s.mu.Unlock()
	if ok {
		return id, info, nil
	}
	ins, err := s.cli.ImageInspect(ctx, id)
	if errdefs.IsNotFound(err) {
		if tar == "" || sk.Dir == "" {
			return "", imageInfo{}, isolation.Errorf(isolation.ReasonInvalidModule, "image %s is not loaded and the package has no image.tar", id)
		}
		if err := s.loadOrPull(ctx, sk.Manifest.Sandbox.Container, sk.Dir, id); err != nil {
			msg := "load image"
			if sk.Manifest.Sandbox.Container.FromRegistry() {
				msg = "image " + tar
			}
			return "", imageInfo{}, &isolation.Error{Reason: isolation.ReasonInvalidModule, Msg: msg, Err: err}
		}
		ins, err = s.cli.ImageInspect(ctx, id)
	}
	if err != nil {
		return "", imageInfo{}, &isolation.Error{Reason: isolation.ReasonInternal, Msg: "inspect image " + id, Err: err}
	}
	var user string
	if ins.Config != nil {
		user = ins.Config.User
		for v := range ins.Config.Volumes {
			info.volumes = append(info.volumes, path.Clean("/"+v))
		}
		sort.Strings(info.volumes)
	}
	if info.user, err = s.runUser(ctx, id, user); err != nil {
		return "", imageInfo{}, err
	}
	s.mu.Lock()
	s.images[id] = info
	s.mu.Unlock()
	return id, info, nil
}

// validID reports whether id is an image ID as Docker spells it, a digest.
func validID(id string) bool {
	_, err := manifest.ParseDigest(id)
	return err == nil
}

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
