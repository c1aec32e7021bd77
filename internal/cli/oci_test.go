package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/skillbox-dev/skillbox/internal/ociregistry"
	"github.com/skillbox-dev/skillbox/skillpkg/oci"
)

// ociHome is a fresh skill home trusting one key made with `skillbox keygen`, and a
// real registry on loopback that can be told to corrupt one blob it serves.
type ociHome struct {
	t         *testing.T
	bin, home string
	work      string
	env       []string
	reg       string        // host:port
	corrupt   *atomic.Value // digest whose blob the registry serves altered
	plain     string        // --plain-http-unsafe
}

func newOCIHome(t *testing.T, bin string) *ociHome {
	t.Helper()
	logrus.SetOutput(io.Discard) // the registry logs every request
	var corrupt atomic.Value
	corrupt.Store("")
	reg, err := ociregistry.Start(context.Background(), "", func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			d := corrupt.Load().(string)
			if d == "" || r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+d) {
				next.ServeHTTP(w, r)
				return
			}
			rec := &ociRecorder{header: http.Header{}, code: http.StatusOK}
			next.ServeHTTP(rec, r)
			body := rec.body.Bytes()
			body[len(body)/2] ^= 0x01
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.code)
			w.Write(body)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	home, work := t.TempDir(), t.TempDir()
	o := &ociHome{t: t, bin: bin, home: home, work: work, reg: reg.Addr, corrupt: &corrupt, plain: "--plain-http-unsafe",
		env: []string{"SKILLBOX_HOME=" + home, "SKILLBOX_KEY_PASSWORD=", "DOCKER_CONFIG=" + filepath.Join(work, "docker")}}
	o.must("keygen", "--out", filepath.Join(work, "release"))
	o.must("keygen", "--out", filepath.Join(work, "stranger"))
	pub, err := os.ReadFile(filepath.Join(work, "release.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "keys", "release.pub"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	trust := "signers:\n  - name: release\n    key: keys/release.pub\n"
	if err := os.WriteFile(filepath.Join(home, "trust.yaml"), []byte(trust), 0o600); err != nil {
		t.Fatal(err)
	}
	return o
}

type ociRecorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *ociRecorder) Header() http.Header         { return r.header }
func (r *ociRecorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *ociRecorder) WriteHeader(code int)        { r.code = code }

func (o *ociHome) run(args ...string) signCLIResult {
	o.t.Helper()
	return signRunCLI(o.t, o.bin, o.env, args...)
}

func (o *ociHome) must(args ...string) string {
	o.t.Helper()
	r := o.run(args...)
	if r.code != 0 {
		o.t.Fatalf("skillbox %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// refuse runs a command that must fail with one line naming what failed.
func (o *ociHome) refuse(want string, args ...string) string {
	o.t.Helper()
	r := o.run(args...)
	msg := strings.TrimSpace(r.stderr)
	if r.code == 0 || !strings.Contains(msg, want) {
		o.t.Fatalf("skillbox %s: exit %d, stderr %q, want a refusal naming %q", strings.Join(args, " "), r.code, r.stderr, want)
	}
	if strings.Count(msg, "\n") != 0 {
		o.t.Errorf("skillbox %s: refusal is not one line:\n%s", strings.Join(args, " "), msg)
	}
	o.t.Logf("skillbox %s\n\t%s", args[0], msg)
	return msg
}

// installed lists the packages in the store.
func (o *ociHome) installed() []string {
	o.t.Helper()
	ents, err := os.ReadDir(filepath.Join(o.home, "skills"))
	if err != nil && !os.IsNotExist(err) {
		o.t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

// pkg writes, packs and signs (with key, "" for none) the echo skill at version.
func (o *ociHome) pkg(name, version, key string) string {
	o.t.Helper()
	dir := writeWasmSkill(o.t, filepath.Join(o.work, name+"-"+version+"-"+key), "echo",
		filepath.Join("..", "..", "runtime", "engine", "testdata", "echo.wasm"), "")
	y := filepath.Join(dir, "skill.yaml")
	b, _ := os.ReadFile(y)
	if err := os.WriteFile(y, []byte(strings.Replace(string(b), "version: 1.0.0", "version: "+version, 1)), 0o644); err != nil {
		o.t.Fatal(err)
	}
	o.must("pack", dir)
	if key != "" {
		o.must("sign", dir, "--key", filepath.Join(o.work, key+".key"))
	}
	return dir
}

var pushedDigest = regexp.MustCompile(`(?m)^(sha256:[0-9a-f]{64})$`)

func (o *ociHome) push(dir, ref string) string {
	o.t.Helper()
	out := o.must("push", dir, o.reg+"/"+ref, o.plain)
	m := pushedDigest.FindStringSubmatch(out)
	if m == nil {
		o.t.Fatalf("push printed no digest:\n%s", out)
	}
	return m[1]
}

// pushRaw stores dir's skill.yaml and module.wasm as a skill artifact with oras alone,
// with bundle (nil: none) as its referrer: what push would refuse to make.
func (o *ociHome) pushRaw(dir, repoName string, bundle []byte) string {
	o.t.Helper()
	ctx := context.Background()
	repo, err := remote.NewRepository(o.reg + "/" + repoName)
	if err != nil {
		o.t.Fatal(err)
	}
	repo.PlainHTTP = true
	blob := func(mt, title string, data []byte) ocispec.Descriptor {
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}
		if title != "" {
			d.Annotations = map[string]string{ocispec.AnnotationTitle: title}
		}
		if ok, _ := repo.Exists(ctx, d); !ok {
			if err := repo.Push(ctx, d, bytes.NewReader(data)); err != nil {
				o.t.Fatal(err)
			}
		}
		return d
	}
	y, _ := os.ReadFile(filepath.Join(dir, "skill.yaml"))
	w, _ := os.ReadFile(filepath.Join(dir, "module.wasm"))
	art, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, oci.ArtifactType, oras.PackManifestOptions{
		Layers: []ocispec.Descriptor{blob(oci.MediaTypeManifest, "skill.yaml", y), blob(oci.MediaTypeModule, "module.wasm", w)}})
	if err != nil {
		o.t.Fatal(err)
	}
	if bundle != nil {
		if _, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, oci.BundleMediaType, oras.PackManifestOptions{
			Subject: &art, Layers: []ocispec.Descriptor{blob(oci.BundleMediaType, "", bundle)}}); err != nil {
			o.t.Fatal(err)
		}
	}
	return "oci://" + o.reg + "/" + repoName + "@" + art.Digest.String()
}

// audit returns the audit log's records of event.
func (o *ociHome) audit(event string) []map[string]any {
	o.t.Helper()
	f, err := os.Open(filepath.Join(o.home, "audit", "audit.jsonl"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			o.t.Fatal(err)
		}
		if rec["event"] == event {
			out = append(out, rec)
		}
	}
	return out
}

func TestOCIPushInstallRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	o := newOCIHome(t, signBuildCLI(t))
	v1 := o.pkg("echo", "1.0.0", "release")
	d1 := o.push(v1, "skills/echo:stable")
	pinned := "oci://" + o.reg + "/skills/echo@" + d1

	// verify accepts the same reference and checks the same things, installing nothing.
	if out := o.must("verify", pinned, o.plain); !strings.Contains(out, "verified "+pinned+": signed by release") {
		t.Fatalf("verify: %s", out)
	}
	if got := o.installed(); len(got) != 0 {
		t.Fatalf("verify installed %v", got)
	}

	// Plain HTTP is an explicit, loopback-only choice: without it, TLS is spoken.
	o.refuse("answers plain HTTP, not HTTPS (a plain-HTTP registry on loopback needs --plain-http-unsafe)", "install", pinned)
	// A reference written without oci:// is not a path that is missing.
	o.refuse("no file or directory "+strings.TrimPrefix(pinned, "oci://")+" here; a registry reference is written with oci:// (skillbox install "+pinned+")",
		"install", strings.TrimPrefix(pinned, "oci://"), o.plain)
	if got := o.installed(); len(got) != 0 {
		t.Fatalf("installed %v", got)
	}

	// By tag: resolved to the digest, which is printed and recorded.
	out := o.must("install", "oci://"+o.reg+"/skills/echo:stable", o.plain)
	if !strings.Contains(out, "resolved oci://"+o.reg+"/skills/echo:stable to "+pinned) || !strings.Contains(out, "installed echo 1.0.0") {
		t.Fatalf("install by tag: %s", out)
	}
	recs := o.audit("install")
	if len(recs) != 1 {
		t.Fatalf("install records: %v", recs)
	}
	if det, _ := recs[0]["details"].(map[string]any); det["oci"] != pinned || det["ociTag"] != "stable" || !strings.HasPrefix(det["signer"].(string), "release") {
		t.Fatalf("install record details: %v", recs[0]["details"])
	}
	o.must("approve", "echo", "--yes", "--by", "test")
	runV := func() string {
		t.Helper()
		var res struct{ Version string }
		if err := json.Unmarshal([]byte(o.must("run", "echo", "--input", `{"n":1}`, "--json")), &res); err != nil {
			t.Fatal(err)
		}
		return res.Version
	}
	if v := runV(); v != "1.0.0" {
		t.Fatalf("run: version %q", v)
	}
	// By digest, again: already there.
	if out := o.must("install", pinned, o.plain); !strings.Contains(out, "already installed echo 1.0.0") {
		t.Fatalf("install by digest: %s", out)
	}

	// The tag moves to a new version after approval: installing the tag brings the
	// new digest in, the approved one still runs, and review shows a new version.
	v2 := o.pkg("echo", "1.1.0", "release")
	d2 := o.push(v2, "skills/echo:stable")
	if d2 == d1 {
		t.Fatal("a new version pushed to the same digest")
	}
	out = o.must("install", "oci://"+o.reg+"/skills/echo:stable", o.plain)
	if !strings.Contains(out, "to oci://"+o.reg+"/skills/echo@"+d2) || !strings.Contains(out, "installed echo 1.1.0") {
		t.Fatalf("install of the moved tag: %s", out)
	}
	if v := runV(); v != "1.0.0" {
		t.Fatalf("after the tag moved, run gave version %q, want the approved 1.0.0", v)
	}
	if out := o.must("review", "echo"); !strings.Contains(out, "NEW VERSION 1.1.0 is not approved (approved: 1.0.0)") {
		t.Fatalf("review: %s", out)
	}
	o.must("approve", "echo", "--yes", "--by", "test")
	if v := runV(); v != "1.1.0" {
		t.Fatalf("after approval, run gave version %q", v)
	}
}

func TestOCIInstallRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	o := newOCIHome(t, signBuildCLI(t))
	good := o.pkg("echo", "1.0.0", "release")
	d := o.push(good, "skills/echo:1.0.0")
	pinned := "oci://" + o.reg + "/skills/echo@" + d
	other := o.pkg("echo", "2.0.0", "release")
	otherBundle, err := os.ReadFile(filepath.Join(other, "skill.sigstore.json"))
	if err != nil {
		t.Fatal(err)
	}
	module, err := os.ReadFile(filepath.Join(good, "module.wasm"))
	if err != nil {
		t.Fatal(err)
	}

	type tc struct {
		name, ref, want string
		setup, undo     func()
		audited         bool // a verify.failed record names the artifact
	}
	cases := []tc{
		{name: "tampered layer", ref: pinned, want: "install: " + pinned + ": layer module.wasm: content does not match its digest",
			setup: func() { o.corrupt.Store(digest.FromBytes(module).String()) }, undo: func() { o.corrupt.Store("") }},
		{name: "swapped referrer", ref: o.pushRaw(good, "swapped/echo", otherBundle),
			want: "skill.yaml has sha256", audited: true},
		{name: "unsigned artifact: no bundle attached", ref: o.pushRaw(good, "nobundle/echo", nil),
			want: "no Sigstore bundle attached (no referrer of type application/vnd.dev.sigstore.bundle.v0.3+json)"},
		{name: "signed by a key not in trust.yaml", ref: "oci://" + o.reg + "/untrusted/echo@" + o.push(o.pkg("echo", "1.0.0", "stranger"), "untrusted/echo:1"),
			want: "verify", audited: true},
		{name: "unsigned at push", ref: "", want: "push: " + o.pkg("echo", "1.0.0", "") + " has no skill.sigstore.json: sign it first"},
		{name: "tag that does not exist", ref: "oci://" + o.reg + "/skills/echo:nope", want: "not found in the registry"},
		{name: "no tag or digest", ref: "oci://" + o.reg + "/skills/echo", want: "want a tag or a digest"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				c.setup()
				defer c.undo()
			}
			if c.ref == "" { // a push refusal: the unsigned directory never leaves
				dir := strings.TrimSuffix(strings.TrimPrefix(c.want, "push: "), " has no skill.sigstore.json: sign it first")
				o.refuse(c.want, "push", dir, o.reg+"/unsigned/echo:1", o.plain)
				o.refuse("not found in the registry", "install", "oci://"+o.reg+"/unsigned/echo:1", o.plain)
				return
			}
			before := len(o.audit("verify.failed"))
			msg := o.refuse(c.want, "install", c.ref, o.plain)
			if got := o.installed(); len(got) != 0 {
				t.Fatalf("refused (%s) but installed %v", msg, got)
			}
			// verify gives the same refusal, and installs nothing either.
			o.refuse(strings.TrimPrefix(c.want, "install: "), "verify", c.ref, o.plain, "--trust", filepath.Join(o.home, "trust.yaml"))
			if c.audited {
				recs := o.audit("verify.failed")
				if len(recs) != before+1 {
					t.Fatalf("verify.failed records: %d, want %d", len(recs), before+1)
				}
				if det, _ := recs[len(recs)-1]["details"].(map[string]any); det["oci"] == nil || !strings.HasPrefix(c.ref, det["oci"].(string)[:20]) {
					t.Fatalf("verify.failed record does not name the artifact: %v", recs[len(recs)-1])
				}
			}
		})
	}
	// After every refusal the honest artifact still installs.
	if out := o.must("install", pinned, o.plain); !strings.Contains(out, "installed echo 1.0.0") {
		t.Fatalf("install: %s", out)
	}
}
