package oci

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"oras.land/oras-go/v2"

	"github.com/skillbox-dev/skillbox/internal/ociregistry"
	"github.com/skillbox-dev/skillbox/signing"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

func TestMain(m *testing.M) {
	// distribution logs every request through logrus' standard logger.
	logrus.SetOutput(io.Discard)
	os.Exit(m.Run())
}

// startRegistry runs a real registry in-process on loopback for one test.
func startRegistry(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	reg, err := ociregistry.Start(context.Background(), "", wrap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Errorf("registry close: %v", err)
		}
	})
	return reg.Addr
}

var local = Options{PlainHTTPUnsafe: true, DockerConfig: "-"}

type signer struct {
	s   signing.Signer
	pub []byte
}

func newSigner(t *testing.T) signer {
	t.Helper()
	privPEM, pubPEM, err := signing.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := signing.ParsePrivateKey(privPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	return signer{signing.KeySigner(priv), pubPEM}
}

// writePackage writes a signed wasm package (any bytes do for a module here: nothing
// runs it) and returns its directory.
func writePackage(t *testing.T, k signer, name, version, module string) string {
	t.Helper()
	dir := t.TempDir()
	sum := sha256.Sum256([]byte(module))
	m := fmt.Sprintf("apiVersion: skillbox/v1\nname: %s\nversion: %s\ndescription: A test skill.\n"+
		"sandbox:\n  wasm:\n    module: module.wasm\n    sha256: %s\ninput: {type: object}\noutput: {type: object}\n",
		name, version, hex.EncodeToString(sum[:]))
	write(t, dir, "skill.yaml", m)
	write(t, dir, "module.wasm", module)
	if k.s != nil {
		sign(t, k, dir)
	}
	return dir
}

func sign(t *testing.T, k signer, dir string) {
	t.Helper()
	p, err := skillpkg.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ms, cs := p.Subjects()
	b, err := signing.SignSkill(context.Background(), ms, cs, k.s)
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, skillpkg.BundleFile, string(b))
}

func write(t *testing.T, dir, name, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// verifyDir checks a pulled directory as `skillbox verify --key` does.
func verifyDir(t *testing.T, dir string, k signer) error {
	t.Helper()
	policy, err := signing.PolicyFromKey("test", k.pub)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := os.ReadFile(filepath.Join(dir, skillpkg.BundleFile))
	if err != nil {
		return err
	}
	p, err := skillpkg.Load(dir)
	if err != nil {
		return err
	}
	ms, cs := p.Subjects()
	_, err = signing.VerifySkill(context.Background(), bundle, ms, cs, policy)
	return err
}

func dirEmpty(t *testing.T, dir string) bool {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(ents) == 0
}

func TestPushPullRoundTrip(t *testing.T) {
	ctx := context.Background()
	addr := startRegistry(t, nil)
	k := newSigner(t)
	dir := writePackage(t, k, "echo", "1.0.0", "\x00asm\x01\x00\x00\x00 echo")
	p, err := Push(ctx, dir, addr+"/skills/echo:1.0.0", local)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.Digest, "sha256:") || p.Bundle == "" {
		t.Fatalf("pushed %+v", p)
	}
	// The same package pushes to the same digest.
	again, err := Push(ctx, dir, addr+"/skills/echo:again", local)
	if err != nil || again.Digest != p.Digest {
		t.Fatalf("second push: %v %+v, want digest %s", err, again, p.Digest)
	}

	for _, ref := range []string{p.Pinned(), "oci://" + addr + "/skills/echo:1.0.0"} {
		out := filepath.Join(t.TempDir(), "pkg")
		got, err := Pull(ctx, ref, out, local)
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		if got.Digest != p.Digest || got.Bundle != p.Bundle || got.Bundles != 1 {
			t.Fatalf("pull %s: %+v, want digest %s bundle %s", ref, got, p.Digest, p.Bundle)
		}
		for _, f := range []string{"skill.yaml", "module.wasm", skillpkg.BundleFile} {
			want, _ := os.ReadFile(filepath.Join(dir, f))
			have, err := os.ReadFile(filepath.Join(out, f))
			if err != nil || !bytes.Equal(want, have) {
				t.Fatalf("%s: pulled bytes differ from pushed (%v)", f, err)
			}
		}
		if err := verifyDir(t, out, k); err != nil {
			t.Fatalf("pulled package does not verify: %v", err)
		}
	}

	// The artifact is laid out as the OCI 1.1 artifact guidance and cosign's bundle
	// spec say.
	repo, err := repository(Ref{Registry: addr, Repository: "skills/echo"}, local)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := repo.Resolve(ctx, p.Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := fetchManifest(ctx, repo, desc)
	if err != nil {
		t.Fatal(err)
	}
	if m.ArtifactType != ArtifactType || m.Config.MediaType != ocispec.MediaTypeEmptyJSON || len(m.Layers) != 2 ||
		m.Layers[0].MediaType != MediaTypeManifest || m.Layers[1].MediaType != MediaTypeModule {
		t.Fatalf("artifact manifest: %+v", m)
	}
	bdesc, err := repo.Resolve(ctx, p.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	bm, err := fetchManifest(ctx, repo, bdesc)
	if err != nil {
		t.Fatal(err)
	}
	if bm.ArtifactType != BundleMediaType || bm.Subject == nil || bm.Subject.Digest.String() != p.Digest ||
		bm.Config.MediaType != ocispec.MediaTypeEmptyJSON || len(bm.Layers) != 1 || bm.Layers[0].MediaType != BundleMediaType ||
		bm.Annotations[annotationContent] != "dsse-envelope" {
		t.Fatalf("bundle referrer: %+v", bm)
	}
}

// A container skill travels with its docker-save tarball as a layer; the image ID the
// signature covers is computed from the pulled tar as from a local one.
func TestPushPullContainerSkill(t *testing.T) {
	ctx := context.Background()
	addr := startRegistry(t, nil)
	k := newSigner(t)
	dir := t.TempDir()
	config := `{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/skill"]},"rootfs":{"type":"layers","diff_ids":[]}}`
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for _, f := range []struct{ name, data string }{
		{"config.json", config},
		{"manifest.json", `[{"Config":"config.json","RepoTags":["demo:1"],"Layers":[]}]`},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f.data))
	}
	tw.Close()
	write(t, dir, "image.tar", tarBuf.String())
	id := sha256.Sum256([]byte(config))
	write(t, dir, "skill.yaml", "apiVersion: skillbox/v1\nname: boxed\nversion: 1.0.0\ndescription: A container skill.\n"+
		"sandbox:\n  container:\n    image: image.tar\n    id: sha256:"+hex.EncodeToString(id[:])+"\ninput: {type: object}\noutput: {type: object}\n")
	sign(t, k, dir)
	p, err := Push(ctx, dir, addr+"/skills/boxed:1", local)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "pkg")
	if _, err := Pull(ctx, p.Pinned(), out, local); err != nil {
		t.Fatal(err)
	}
	if err := verifyDir(t, out, k); err != nil {
		t.Fatalf("pulled container package does not verify: %v", err)
	}
	repo, _ := repository(Ref{Registry: addr, Repository: "skills/boxed"}, local)
	desc, _ := repo.Resolve(ctx, p.Digest)
	m, err := fetchManifest(ctx, repo, desc)
	if err != nil || len(m.Layers) != 2 || m.Layers[1].MediaType != MediaTypeImage || m.Layers[1].Annotations[annotationTitle] != "image.tar" {
		t.Fatalf("container artifact: %v %+v", err, m)
	}
}

func TestPushRefusesUnsignedAndStale(t *testing.T) {
	ctx := context.Background()
	addr := startRegistry(t, nil)
	k := newSigner(t)
	unsigned := writePackage(t, signer{}, "echo", "1.0.0", "module")
	if _, err := Push(ctx, unsigned, addr+"/s/echo:1", local); err == nil || !strings.Contains(err.Error(), "has no skill.sigstore.json: sign it first") {
		t.Fatalf("unsigned: %v", err)
	}
	stale := writePackage(t, k, "echo", "1.0.0", "module")
	// An edit after signing: the manifest's description changes.
	b, _ := os.ReadFile(filepath.Join(stale, "skill.yaml"))
	write(t, stale, "skill.yaml", strings.Replace(string(b), "A test skill.", "Edited.", 1))
	if _, err := Push(ctx, stale, addr+"/s/echo:1", local); err == nil || !strings.Contains(err.Error(), "does not match the package any more") {
		t.Fatalf("stale: %v", err)
	}
	// Nothing reached the registry.
	repo, _ := repository(Ref{Registry: addr, Repository: "s/echo"}, local)
	if _, err := repo.Resolve(ctx, "1"); err == nil {
		t.Fatal("a refused push left a tag behind")
	}
}

// tamper serves one blob or manifest with other bytes of the same length: a registry (or
// anything on the way) that lies.
func tamper(target *atomic.Value) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			d, _ := target.Load().(string)
			if d == "" || r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+d) && !strings.HasSuffix(r.URL.Path, "/manifests/"+d) {
				next.ServeHTTP(w, r)
				return
			}
			rec := &recorder{header: http.Header{}, code: http.StatusOK}
			next.ServeHTTP(rec, r)
			body := rec.body.Bytes()
			if len(body) > 0 {
				body[len(body)-1] ^= 0xff
			}
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.code)
			w.Write(body)
		})
	}
}

type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(code int)        { r.code = code }

func TestPullRefusesTamperedLayer(t *testing.T) {
	ctx := context.Background()
	var target atomic.Value
	addr := startRegistry(t, tamper(&target))
	k := newSigner(t)
	module := "\x00asm\x01\x00\x00\x00 tamper"
	dir := writePackage(t, k, "echo", "1.0.0", module)
	p, err := Push(ctx, dir, addr+"/skills/echo:1", local)
	if err != nil {
		t.Fatal(err)
	}
	for what, blob := range map[string]string{"layer module.wasm": digest.FromString(module).String(), "manifest": p.Digest} {
		target.Store(blob)
		out := filepath.Join(t.TempDir(), "pkg")
		_, err = Pull(ctx, p.Pinned(), out, local)
		if err == nil || !strings.Contains(err.Error(), what+": content does not match its digest") {
			t.Fatalf("tampered %s: %v", what, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("not one line: %q", err)
		}
		if !dirEmpty(t, out) {
			t.Fatal("a refused pull left files behind")
		}
	}
	// The same bytes served honestly pull fine: the refusals above are the tampering's.
	target.Store("")
	if _, err := Pull(ctx, p.Pinned(), filepath.Join(t.TempDir(), "pkg"), local); err != nil {
		t.Fatal(err)
	}
}

// pushRaw pushes an artifact of skill.yaml and module.wasm from dir with oras alone
// (no bundle) and, when bundle is not nil, a referrer holding it.
func pushRaw(t *testing.T, addr, repoName, dir string, bundle []byte) string {
	t.Helper()
	ctx := context.Background()
	repo, err := repository(Ref{Registry: addr, Repository: repoName}, local)
	if err != nil {
		t.Fatal(err)
	}
	y, _ := os.ReadFile(filepath.Join(dir, "skill.yaml"))
	w, _ := os.ReadFile(filepath.Join(dir, "module.wasm"))
	l1, err := pushBytes(ctx, repo, MediaTypeManifest, "skill.yaml", y)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := pushBytes(ctx, repo, MediaTypeModule, "module.wasm", w)
	if err != nil {
		t.Fatal(err)
	}
	art, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, ArtifactType,
		oras.PackManifestOptions{Layers: []ocispec.Descriptor{l1, l2}, ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: epoch}})
	if err != nil {
		t.Fatal(err)
	}
	if bundle != nil {
		b, err := pushBytes(ctx, repo, BundleMediaType, "", bundle)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, BundleMediaType,
			oras.PackManifestOptions{Subject: &art, Layers: []ocispec.Descriptor{b}}); err != nil {
			t.Fatal(err)
		}
	}
	return Scheme + addr + "/" + repoName + "@" + art.Digest.String()
}

func TestPullBundles(t *testing.T) {
	ctx := context.Background()
	addr := startRegistry(t, nil)
	k := newSigner(t)
	a := writePackage(t, k, "alpha", "1.0.0", "alpha module")
	b := writePackage(t, k, "beta", "1.0.0", "beta module")
	bundleOf := func(dir string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, skillpkg.BundleFile))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}

	t.Run("no bundle", func(t *testing.T) {
		ref := pushRaw(t, addr, "unsigned/alpha", a, nil)
		out := filepath.Join(t.TempDir(), "pkg")
		_, err := Pull(ctx, ref, out, local)
		if !errors.Is(err, ErrNoBundle) || !strings.Contains(err.Error(), ref+": no Sigstore bundle attached") {
			t.Fatalf("got %v", err)
		}
		if !dirEmpty(t, out) {
			t.Fatal("files left behind")
		}
	})

	t.Run("swapped bundle is passed on for verify to refuse", func(t *testing.T) {
		ref := pushRaw(t, addr, "swapped/alpha", a, bundleOf(b))
		out := filepath.Join(t.TempDir(), "pkg")
		if _, err := Pull(ctx, ref, out, local); err != nil {
			t.Fatal(err)
		}
		err := verifyDir(t, out, k)
		if err == nil || signing.CheckOf(err) != signing.CheckManifestDigest {
			t.Fatalf("verify of alpha with beta's bundle: %v (check %s)", err, signing.CheckOf(err))
		}
	})

	t.Run("the matching bundle is chosen among several", func(t *testing.T) {
		ref := pushRaw(t, addr, "both/alpha", a, bundleOf(b))
		r, _ := ParseRef(ref)
		repo, _ := repository(r, local)
		desc, err := repo.Resolve(ctx, r.Digest)
		if err != nil {
			t.Fatal(err)
		}
		bl, _ := pushBytes(ctx, repo, BundleMediaType, "", bundleOf(a))
		if _, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, BundleMediaType,
			oras.PackManifestOptions{Subject: &desc, Layers: []ocispec.Descriptor{bl}}); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "pkg")
		got, err := Pull(ctx, ref, out, local)
		if err != nil || got.Bundles != 2 {
			t.Fatalf("pull: %v %+v", err, got)
		}
		if err := verifyDir(t, out, k); err != nil {
			t.Fatalf("the matching bundle was not chosen: %v", err)
		}
	})

	t.Run("bundle blob gone", func(t *testing.T) {
		ref := pushRaw(t, addr, "gone/alpha", a, bundleOf(a))
		r, _ := ParseRef(ref)
		repo, _ := repository(r, local)
		bd := ocispec.Descriptor{MediaType: BundleMediaType, Digest: digest.FromBytes(bundleOf(a)), Size: int64(len(bundleOf(a)))}
		if err := repo.Blobs().Delete(ctx, bd); err != nil {
			t.Fatal(err)
		}
		_, err := Pull(ctx, ref, filepath.Join(t.TempDir(), "pkg"), local)
		if !errors.Is(err, ErrNoBundle) || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("got %v", err)
		}
	})
}

// The referrers tag schema is a tag anyone who can push may rewrite: a referrer it
// lists must itself name the artifact as its subject.
func TestPullSkipsReferrerOfAnotherArtifact(t *testing.T) {
	ctx := context.Background()
	addr := startRegistry(t, nil)
	k := newSigner(t)
	pa, err := Push(ctx, writePackage(t, k, "alpha", "1.0.0", "alpha module"), addr+"/s/alpha:1", local)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := Push(ctx, writePackage(t, k, "beta", "1.0.0", "beta module"), addr+"/s/alpha:beta", local)
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := repository(Ref{Registry: addr, Repository: "s/alpha"}, local)
	bdesc, err := repo.Resolve(ctx, pb.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	bdesc.ArtifactType = BundleMediaType
	idx, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{bdesc}})
	if err != nil {
		t.Fatal(err)
	}
	idesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(idx), Size: int64(len(idx))}
	tag := strings.Replace(pa.Digest, ":", "-", 1)
	if err := repo.PushReference(ctx, idesc, bytes.NewReader(idx), tag); err != nil {
		t.Fatal(err)
	}
	_, err = Pull(ctx, pa.Pinned(), filepath.Join(t.TempDir(), "pkg"), local)
	if !errors.Is(err, ErrNoBundle) || !strings.Contains(err.Error(), "its subject is not "+pa.Digest) {
		t.Fatalf("got %v", err)
	}
}

func TestPullRefusesWhatIsNotASkill(t *testing.T) {
	ctx := context.Background()
	addr := startRegistry(t, nil)
	repo, _ := repository(Ref{Registry: addr, Repository: "other/thing"}, local)
	l, _ := pushBytes(ctx, repo, "application/octet-stream", "data.bin", []byte("data"))
	art, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.example.thing",
		oras.PackManifestOptions{Layers: []ocispec.Descriptor{l}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Pull(ctx, Scheme+addr+"/other/thing@"+art.Digest.String(), filepath.Join(t.TempDir(), "pkg"), local)
	if err == nil || !strings.Contains(err.Error(), "not a skillbox package") {
		t.Fatalf("got %v", err)
	}

	// A skill artifact with an extra layer, or a layer that would leave the package.
	k := newSigner(t)
	dir := writePackage(t, k, "echo", "1.0.0", "m")
	y, _ := os.ReadFile(filepath.Join(dir, "skill.yaml"))
	ly, _ := pushBytes(ctx, repo, MediaTypeManifest, "skill.yaml", y)
	for name, layers := range map[string][]ocispec.Descriptor{
		"outside":  {ly, mustPush(t, repo, MediaTypeModule, "../module.wasm", "m")},
		"extra":    {ly, mustPush(t, repo, MediaTypeModule, "module.wasm", "m"), mustPush(t, repo, MediaTypeModule, "b.wasm", "n")},
		"too big":  {ly, mustPush(t, repo, MediaTypeModule, "module.wasm", strings.Repeat("x", 2048))},
		"no yaml":  {mustPush(t, repo, MediaTypeModule, "module.wasm", "m")},
		"bad type": {ly, mustPush(t, repo, "application/x-sh", "module.wasm", "m")},
	} {
		art, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, ArtifactType, oras.PackManifestOptions{Layers: layers})
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "pkg")
		opts := local
		opts.Limits = skillpkg.Limits{Entries: 256, FileBytes: 1024, Total: 4096}
		_, err = Pull(ctx, Scheme+addr+"/other/thing@"+art.Digest.String(), out, opts)
		if err == nil || !strings.Contains(err.Error(), ": manifest: ") {
			t.Errorf("%s: got %v", name, err)
		}
		if !dirEmpty(t, out) {
			t.Errorf("%s: files left behind", name)
		}
	}
}

func mustPush(t *testing.T, repo interface {
	Exists(context.Context, ocispec.Descriptor) (bool, error)
	Push(context.Context, ocispec.Descriptor, io.Reader) error
}, mt, title, data string) ocispec.Descriptor {
	t.Helper()
	d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromString(data), Size: int64(len(data)),
		Annotations: map[string]string{annotationTitle: title}}
	if err := repo.Push(context.Background(), d, strings.NewReader(data)); err != nil && !strings.Contains(err.Error(), "exists") {
		t.Fatal(err)
	}
	return d
}

func TestPlainHTTPOnlyOnLoopback(t *testing.T) {
	ctx := context.Background()
	for _, ref := range []string{"oci://registry.example.com/s/echo:1", "oci://10.0.0.1:5000/s/echo:1", "oci://localhost.example.com/s/echo:1"} {
		_, err := Pull(ctx, ref, filepath.Join(t.TempDir(), "pkg"), local)
		var pe *PlainHTTPError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "plain HTTP is allowed only for a registry on loopback") {
			t.Errorf("%s: %v", ref, err)
		}
	}
	// Without the option a loopback registry is spoken to over TLS, which a
	// plain-HTTP registry does not answer.
	addr := startRegistry(t, nil)
	_, err := Pull(ctx, "oci://"+addr+"/s/echo:1", filepath.Join(t.TempDir(), "pkg"), Options{DockerConfig: "-"})
	if want := addr + " answers plain HTTP, not HTTPS (a plain-HTTP registry on loopback needs --plain-http-unsafe)"; err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Fatalf("TLS to a plain registry: %v, want it to end %q", err, want)
	}
	// Push says the same, once: the CLI adds "push: ".
	_, err = Push(ctx, writePackage(t, newSigner(t), "echo", "1.0.0", "echo module"), addr+"/s/echo:1", Options{DockerConfig: "-"})
	if want := "oci://" + addr + "/s/echo:1: " + addr + " answers plain HTTP, not HTTPS"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("push over TLS to a plain registry: %v, want it to start %q", err, want)
	}
}

func TestParseRef(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for in, want := range map[string]Ref{
		"oci://localhost:5000/skills/echo:1.0":  {Registry: "localhost:5000", Repository: "skills/echo", Tag: "1.0"},
		"oci://localhost:5000/skills/echo@" + d: {Registry: "localhost:5000", Repository: "skills/echo", Digest: d},
		"r.example.com/a/b:t@" + d:              {Registry: "r.example.com", Repository: "a/b", Tag: "t", Digest: d},
		"oci://127.0.0.1:5000/echo":             {Registry: "127.0.0.1:5000", Repository: "echo"},
	} {
		got, err := ParseRef(in)
		if err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"oci://", "oci://echo", "oci://h/r@sha256:12", "oci://h/r@md5:" + strings.Repeat("a", 32), "oci://h/R:t", "oci://h/r:-t"} {
		if _, err := ParseRef(in); err == nil {
			t.Errorf("%s: accepted", in)
		}
	}
	if _, err := ParseRef("oci://h.example/Skills/Echo:1"); err == nil || err.Error() !=
		`oci://h.example/Skills/Echo:1: repository "Skills/Echo": lower-case letters and digits, parts joined by . _ - or /` {
		t.Errorf("upper-case repository: %v", err)
	}
}
