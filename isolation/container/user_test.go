package container

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// hostileUsers makes one image per USER on top of the hostile test image (same
// binary, plus one layer of the given files) and returns their IDs. The images are
// written as one `docker save` tarball that reuses the hostile image's layers, and
// loaded at once: no compile, no build step, no pull.
func hostileUsers(t *testing.T, files map[string]string, users ...string) []string {
	t.Helper()
	ctx := context.Background()
	rc, err := env.cli.ImageSave(ctx, []string{env.hostileID})
	if err != nil {
		t.Fatal(err)
	}
	saved := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if saved[h.Name], err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	rc.Close()
	var manifest []struct {
		Config string
		Layers []string
	}
	if err := json.Unmarshal(saved["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("saved manifest.json: %v %s", err, saved["manifest.json"])
	}
	var config map[string]any
	if err := json.Unmarshal(saved[manifest[0].Config], &config); err != nil {
		t.Fatal(err)
	}
	// The extra layer: the files, as a tar.
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	for name, data := range files {
		if err := lw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := lw.Write([]byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	diffID := fmt.Sprintf("sha256:%x", sha256.Sum256(layer.Bytes()))
	rootfs := config["rootfs"].(map[string]any)
	rootfs["diff_ids"] = append(rootfs["diff_ids"].([]any), diffID)
	config["history"] = append(config["history"].([]any), map[string]any{"created_by": "test files"})
	out := map[string][]byte{"extra/layer.tar": layer.Bytes()}
	for _, name := range manifest[0].Layers {
		out[name] = saved[name]
	}
	type entry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var entries []entry
	var ids []string
	for _, u := range users {
		config["config"].(map[string]any)["User"] = u
		b, err := json.Marshal(config)
		if err != nil {
			t.Fatal(err)
		}
		hex := fmt.Sprintf("%x", sha256.Sum256(b))
		out[hex+".json"] = b
		entries = append(entries, entry{Config: hex + ".json", Layers: append(slices.Clone(manifest[0].Layers), "extra/layer.tar")})
		ids = append(ids, "sha256:"+hex)
	}
	if out["manifest.json"], err = json.Marshal(entries); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(out)) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(out[name]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(out[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	resp, err := env.cli.ImageLoad(ctx, &buf, client.ImageLoadWithQuiet(true))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, id := range ids {
		t.Cleanup(func() {
			_, _ = env.cli.ImageRemove(context.Background(), id, image.RemoveOptions{Force: true, PruneChildren: true})
		})
		if _, ierr := env.cli.ImageInspect(ctx, id); ierr != nil {
			t.Fatalf("load test images: %v; %s missing: %v", err, id, ierr)
		}
	}
	return ids
}

// TestImageUser: whatever an image's USER, /etc/passwd and /etc/group say, the skill
// runs with a uid, gid and groups none of which is 0, as the skill itself reports
// from /proc/self/status; and a root-only file in a read grant stays unreadable.
func TestImageUser(t *testing.T) {
	s := newSandbox(t)
	secret := t.TempDir()
	if err := os.WriteFile(filepath.Join(secret, "root-only"), []byte("shadow"), 0o600); err != nil {
		t.Fatal(err)
	}
	const (
		passwd = "root:x:0:0:root:/root:/bin/sh\n" +
			"toor:x:0:0:another root:/root:/bin/sh\n" +
			"signed:x:+0:-0:signed root:/:/bin/sh\n" +
			"svc:x:1000:1000:a service:/home/svc:/bin/sh\n" +
			"nogroup:x:1001:0:gid 0 in passwd:/:/bin/sh\n"
		group = "root:x:0:svc,nogroup\n" +
			"wheel:x:+0:svc\n" +
			"svc:x:1000:\n"
	)
	tests := []struct {
		user     string // the image's USER; "" for none
		uid, gid int    // expected
	}{
		{"", nobodyID, nobodyID},
		{"+0", nobodyID, nobodyID},
		{"-0", nobodyID, nobodyID},
		{"+0:+0", nobodyID, nobodyID},
		{"0:0", nobodyID, nobodyID},
		{"00", nobodyID, nobodyID},
		{"root", nobodyID, nobodyID},
		{"toor", nobodyID, nobodyID},    // a name mapped to 0 in passwd
		{"signed", nobodyID, nobodyID},  // mapped to "+0" in passwd
		{"65534:0", nobodyID, nobodyID}, // gid 0 given
		{"1000:root", 1000, nobodyID},   // gid 0 by group name
		{"1000:wheel", 1000, nobodyID},  // "+0" in /etc/group
		{"nogroup", 1001, nobodyID},     // gid 0 from passwd
		{"4242", 4242, nobodyID},        // no passwd entry: runc would use gid 0
		{"svc", 1000, 1000},             // listed in group root: no supplementary groups
		{"svc:svc", 1000, 1000},
		{"1000", 1000, 1000},
	}
	var users []string
	for _, tc := range tests {
		users = append(users, tc.user)
	}
	ids := hostileUsers(t, map[string]string{"etc/passwd": passwd, "etc/group": group}, users...)
	for i, tc := range tests {
		t.Run("USER "+tc.user, func(t *testing.T) {
			id := ids[i]
			call := hostileCall(`{"mode":"id","path":"/secret/root-only"}`)
			call.Skill.Digest, call.Skill.Manifest.Sandbox.Container.ID = id, id
			call.Grant.Files = []isolation.Mount{{Guest: "/secret", Host: secret, Access: manifest.AccessRead}}
			res, err := s.Run(context.Background(), call)
			if err != nil {
				t.Fatalf("Run: %v; logs %q", err, res.Logs)
			}
			out := decode(t, res.Output)
			t.Logf("USER %q: %v", tc.user, out)
			status, _ := out["status"].(map[string]any)
			for _, k := range []string{"Uid", "Gid", "Groups"} {
				if slices.Contains(strings.Fields(fmt.Sprint(status[k])), "0") {
					t.Errorf("/proc/self/status %s: %q holds 0", k, status[k])
				}
			}
			// The engine sets the supplementary groups to the primary gid alone.
			if groups, _ := out["groups"].([]any); len(groups) > 1 || len(groups) == 1 && groups[0] != float64(tc.gid) {
				t.Errorf("supplementary groups = %v, want at most the primary gid", groups)
			}
			if out["uid"] != float64(tc.uid) || out["gid"] != float64(tc.gid) || out["euid"] != float64(tc.uid) || out["egid"] != float64(tc.gid) {
				t.Errorf("ids = uid %v gid %v euid %v egid %v, want %d:%d", out["uid"], out["gid"], out["euid"], out["egid"], tc.uid, tc.gid)
			}
			if !strings.Contains(fmt.Sprint(out["read"]), "permission denied") {
				t.Errorf("read of a root-only 0600 file = %q, want permission denied", out["read"])
			}
		})
	}
	// A name the image does not define is refused, as runc would, with the name.
	id := hostileUsers(t, nil, "ghost")[0]
	call := hostileCall(`{"mode":"id"}`)
	call.Skill.Digest, call.Skill.Manifest.Sandbox.Container.ID = id, id
	if _, err := s.Run(context.Background(), call); isolation.ReasonOf(err) != isolation.ReasonInvalidModule || !strings.Contains(err.Error(), `"ghost"`) {
		t.Errorf("unknown user = %v, want INVALID_CODE naming it", err)
	}
}

// TestResolveUser covers the decision itself, file contents included.
func TestResolveUser(t *testing.T) {
	files := map[string][]byte{
		"/etc/passwd": []byte("root:x:0:0::/:\n\n  app:x:1234:1234::/:  \nbad:x:abc:1:::\nshort:x:77\n"),
		"/etc/group":  []byte("root:x:0:app\napp:x:1234:\nodd:x:-5:\n"),
	}
	read := func(name string) ([]byte, error) { return files[name], nil }
	for spec, want := range map[string]string{
		"": "65534:65534", ":0": "65534:65534", ":1234": "65534:65534",
		"0": "65534:65534", "+0": "65534:65534", "-0": "65534:65534", "0:1234": "65534:65534",
		"root": "65534:65534", "bad": "65534:65534", "-1": "65534:65534", "4294967296": "65534:65534",
		"app": "1234:1234", "app:root": "1234:65534", "app:0": "1234:65534", "app:-0": "1234:65534",
		"app:odd": "1234:65534", "short": "77:65534", "1234": "1234:1234", "99:99": "99:99",
		"99": "99:65534", "app:app:extra": "1234:1234", "+99:+7": "99:7",
	} {
		got, err := resolveUser(spec, read)
		if err != nil || got != want {
			t.Errorf("resolveUser(%q) = %q, %v; want %q", spec, got, err, want)
		}
	}
	for _, spec := range []string{"ghost", "app:ghosts", "99:ghosts"} {
		if got, err := resolveUser(spec, read); isolation.ReasonOf(err) != isolation.ReasonInvalidModule {
			t.Errorf("resolveUser(%q) = %q, %v; want INVALID_CODE", spec, got, err)
		}
	}
}
