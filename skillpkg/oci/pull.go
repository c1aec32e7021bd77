package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/signing"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

// Pulled is what Pull fetched.
type Pulled struct {
	Ref    Ref    // as given
	Digest string // the artifact manifest's digest (a tag resolved to it)
	// Bundle is the digest of the referrer whose bundle Pull wrote; Bundles is how
	// many bundle referrers it found.
	Bundle  string
	Bundles int
	// Verified says Options.VerifyBundle accepted the bundle written. When it accepted
	// none, the one whose statement names this skill.yaml is written all the same, for
	// the install to refuse in its own words (and record), and Rejected says why each
	// was refused ("referrer DIGEST: reason").
	Verified bool
	Rejected []string
}

// Pinned is the artifact's reference by digest: what install records.
func (p *Pulled) Pinned() string { return p.Ref.Pinned(p.Digest) }

// PullError is an artifact Pull refuses: Ref is the reference pinned by digest once
// known, What the part that failed.
type PullError struct {
	Ref    string
	What   string
	Reason string
	Err    error
}

func (e *PullError) Error() string {
	if e.What == "" {
		return e.Ref + ": " + e.Reason
	}
	return e.Ref + ": " + e.What + ": " + e.Reason
}
func (e *PullError) Unwrap() error { return e.Err }

// Pull fetches the skill artifact at ref into dest (created; it must not exist or be
// empty) as a package directory: skill.yaml, the code, and skill.sigstore.json taken
// from the artifact's bundle referrers. Every manifest and layer is read within the
// bounds of opts.Limits (the archive install's by default) and checked against its
// digest; a tag is resolved once, and everything after is fetched by digest. Pull
// judges no signature: among several bundles it prefers one whose statement names
// this skill.yaml (unverified; it only chooses), and the caller verifies the result.
// On any refusal dest is left empty.
func Pull(ctx context.Context, ref, dest string, opts Options) (_ *Pulled, err error) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	if r.Digest == "" && r.Tag == "" {
		return nil, &RefError{Ref: ref, Reason: "want a tag or a digest: oci://HOST/REPOSITORY:TAG or oci://HOST/REPOSITORY@sha256:DIGEST"}
	}
	repo, err := repository(r, opts)
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(dest, 0o755); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if ents, rerr := os.ReadDir(dest); rerr != nil || len(ents) > 0 {
			return nil, fmt.Errorf("pull: %s is not empty", dest)
		}
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	defer func() {
		if err != nil {
			emptyDir(dest)
		}
	}()

	name := r.String()
	fail := func(what, reason string, cause error) error {
		return &PullError{Ref: name, What: what, Reason: reason, Err: cause}
	}
	want := r.Digest
	if want == "" {
		want = r.Tag
	}
	desc, err := repo.Resolve(ctx, want)
	if err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return nil, fail("", "not found in the registry", err)
		}
		return nil, fail("", transportWords(err), err)
	}
	if r.Digest != "" && desc.Digest.String() != r.Digest {
		return nil, fail("", fmt.Sprintf("the registry answered with %s", desc.Digest), nil)
	}
	name = r.Pinned(desc.Digest.String())
	out := &Pulled{Ref: r, Digest: desc.Digest.String()}

	art, err := fetchManifest(ctx, repo, desc)
	if err != nil {
		return nil, fail("manifest", err.Error(), err)
	}
	if art.ArtifactType != ArtifactType {
		return nil, fail("", fmt.Sprintf("not a skillbox package (artifact type %q, want %q)", art.ArtifactType, ArtifactType), nil)
	}
	layers, err := checkLayers(art.Layers, opts.limits())
	if err != nil {
		return nil, fail("manifest", err.Error(), err)
	}
	var skillYAML []byte
	for _, l := range layers {
		data, err := fetchLayer(ctx, repo, root, l)
		if err != nil {
			return nil, fail("layer "+l.Annotations[annotationTitle], err.Error(), err)
		}
		if l.MediaType == MediaTypeManifest {
			skillYAML = data
		}
	}

	bundles, reasons, err := fetchBundles(ctx, repo, desc)
	if err != nil {
		return nil, fail("referrers", oneLine(err), err)
	}
	out.Bundles = len(bundles)
	if len(bundles) == 0 {
		reason := fmt.Sprintf("%v (no referrer of type %s): nothing to verify it with; sign the package and push it with skillbox push", ErrNoBundle, BundleMediaType)
		if len(reasons) > 0 {
			reason += "; " + reasons[0]
		}
		return nil, fail("", reason, ErrNoBundle)
	}
	// Bundles whose statement names this skill.yaml first (unverified: it only orders).
	slices.SortStableFunc(bundles, func(a, b bundleRef) int {
		am := signing.StaleManifestBundle(a.data, skillpkg.ManifestSubject(skillYAML)) == nil
		bm := signing.StaleManifestBundle(b.data, skillpkg.ManifestSubject(skillYAML)) == nil
		switch {
		case am == bm:
			return 0
		case am:
			return -1
		}
		return 1
	})
	chosen := bundles[0]
	if opts.VerifyBundle != nil {
		for _, b := range bundles {
			err := opts.VerifyBundle(ctx, skillYAML, b.data)
			if err == nil {
				chosen, out.Verified = b, true
				break
			}
			out.Rejected = append(out.Rejected, fmt.Sprintf("referrer %s: %s", b.digest, oneLine(err)))
		}
	}
	if err := root.WriteFile(skillpkg.BundleFile, chosen.data, 0o644); err != nil {
		return nil, err
	}
	out.Bundle = chosen.digest
	return out, nil
}

// fetchManifest reads an image manifest by digest, within MaxManifestBytes, checked
// against its digest.
func fetchManifest(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor) (*ocispec.Manifest, error) {
	if desc.MediaType != ocispec.MediaTypeImageManifest {
		return nil, fmt.Errorf("media type %q, want an OCI image manifest", desc.MediaType)
	}
	if desc.Size > MaxManifestBytes || desc.Size < 0 {
		return nil, fmt.Errorf("%d bytes, over the limit of %d", desc.Size, MaxManifestBytes)
	}
	rc, err := repo.Fetch(ctx, desc)
	if err != nil {
		return nil, errors.New(oneLine(err))
	}
	defer rc.Close()
	data, err := content.ReadAll(rc, desc)
	if err != nil {
		return nil, digestWords(desc, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("not JSON: %s", oneLine(err))
	}
	if m.MediaType != "" && m.MediaType != ocispec.MediaTypeImageManifest {
		return nil, fmt.Errorf("media type %q, want an OCI image manifest", m.MediaType)
	}
	return &m, nil
}

// checkLayers accepts skill.yaml and at most one code layer, each named by a clean
// relative title, within the limits.
func checkLayers(ls []ocispec.Descriptor, lim skillpkg.Limits) ([]ocispec.Descriptor, error) {
	if len(ls) > 2 || len(ls) > lim.Entries {
		return nil, fmt.Errorf("%d layers, want skill.yaml and at most one code layer", len(ls))
	}
	seen := map[string]bool{}
	var manifests, code int
	var total int64
	for _, l := range ls {
		title := l.Annotations[annotationTitle]
		if err := manifest.CheckPackagePath(title); err != nil {
			return nil, fmt.Errorf("layer %s: title %v", l.Digest, err)
		}
		if seen[title] || title == skillpkg.BundleFile {
			return nil, fmt.Errorf("layer %q: duplicate or reserved name", title)
		}
		seen[title] = true
		switch l.MediaType {
		case MediaTypeManifest:
			manifests++
			if title != skillpkg.ManifestFile {
				return nil, fmt.Errorf("layer %q: the manifest layer must be %s", title, skillpkg.ManifestFile)
			}
			if l.Size > manifest.MaxManifestBytes {
				return nil, fmt.Errorf("layer %q: %d bytes, over the limit of %d", title, l.Size, manifest.MaxManifestBytes)
			}
		case MediaTypeModule, MediaTypeImage:
			code++
		default:
			return nil, fmt.Errorf("layer %q: media type %q is not part of a skill package", title, l.MediaType)
		}
		if l.Size < 0 || l.Size > lim.FileBytes {
			return nil, fmt.Errorf("layer %q: %d bytes, over the limit of %d per file", title, l.Size, lim.FileBytes)
		}
		if total += l.Size; total > lim.Total {
			return nil, fmt.Errorf("layers over the limit of %d bytes in all", lim.Total)
		}
	}
	if manifests != 1 || code > 1 {
		return nil, fmt.Errorf("want one %s layer and at most one code layer", skillpkg.ManifestFile)
	}
	return ls, nil
}

// fetchLayer streams a layer into root under its title, checked against its size
// and digest. skill.yaml's bytes are returned too.
func fetchLayer(ctx context.Context, repo *remote.Repository, root *os.Root, l ocispec.Descriptor) ([]byte, error) {
	title := l.Annotations[annotationTitle]
	if dir := path.Dir(title); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	rc, err := repo.Fetch(ctx, l)
	if err != nil {
		return nil, errors.New(oneLine(err))
	}
	defer rc.Close()
	f, err := root.OpenFile(title, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	vr := content.NewVerifyReader(rc, l)
	_, err = io.Copy(f, vr)
	if err == nil {
		err = vr.Verify()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, digestWords(l, err)
	}
	if l.MediaType != MediaTypeManifest {
		return nil, nil
	}
	// Its size was bounded and its digest checked above.
	return root.ReadFile(title)
}

// transportWords is a failure to reach the registry, with the way forward when TLS
// met a plain-HTTP server.
func transportWords(err error) string {
	s := oneLine(err)
	if strings.Contains(s, "server gave HTTP response to HTTPS client") {
		host := "the registry"
		var ue *url.Error
		if errors.As(err, &ue) {
			if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
				host = u.Host
			}
		}
		return host + " answers plain HTTP, not HTTPS (a plain-HTTP registry on loopback needs --plain-http-unsafe)"
	}
	return s
}

// digestWords says a content check failed in the user's words.
func digestWords(d ocispec.Descriptor, err error) error {
	switch {
	case errors.Is(err, content.ErrMismatchedDigest):
		return fmt.Errorf("content does not match its digest %s (changed in the registry or on the way): refused", d.Digest)
	case errors.Is(err, content.ErrTrailingData), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("content is not the %d bytes its descriptor says (%s): refused", d.Size, d.Digest)
	}
	return errors.New(oneLine(err))
}

// bundleRef is one bundle found among an artifact's referrers.
type bundleRef struct {
	digest string // the referrer manifest's
	data   []byte
}

// fetchBundles lists the artifact's bundle referrers (the referrers API, or the
// referrers tag schema where the registry has no such API) and fetches up to
// MaxReferrers of them. A referrer that does not hold one bounded bundle about this
// very artifact is skipped, its reason kept.
// errEnoughReferrers ends a referrers listing once MaxReferrers were seen.
var errEnoughReferrers = errors.New("enough referrers")

func fetchBundles(ctx context.Context, repo *remote.Repository, subject ocispec.Descriptor) ([]bundleRef, []string, error) {
	var list []ocispec.Descriptor
	err := repo.Referrers(ctx, subject, BundleMediaType, func(rs []ocispec.Descriptor) error {
		for _, d := range rs {
			if len(list) == MaxReferrers {
				return errEnoughReferrers // no further pages of a list anyone may grow
			}
			list = append(list, d)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errdef.ErrNotFound) && !errors.Is(err, errEnoughReferrers) {
		return nil, nil, err
	}
	var out []bundleRef
	var reasons []string
	fetched := int64(0)
	for _, d := range list {
		if fetched+max(d.Size, 0) > MaxReferrerBytes {
			reasons = append(reasons, fmt.Sprintf("referrer %s and later ones: over the %d bytes fetched for bundles", d.Digest, MaxReferrerBytes))
			break
		}
		data, err := fetchBundle(ctx, repo, subject, d)
		fetched += max(d.Size, 0) + int64(len(data))
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("referrer %s: %v", d.Digest, err))
			continue
		}
		out = append(out, bundleRef{digest: d.Digest.String(), data: data})
	}
	return out, reasons, nil
}

func fetchBundle(ctx context.Context, repo *remote.Repository, subject, d ocispec.Descriptor) ([]byte, error) {
	m, err := fetchManifest(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	switch {
	case m.ArtifactType != BundleMediaType:
		return nil, fmt.Errorf("artifact type %q, want %q", m.ArtifactType, BundleMediaType)
	case m.Subject == nil || m.Subject.Digest != subject.Digest:
		// A referrers list made by the tag schema is only a tag anyone who can push
		// may rewrite: the referrer itself must name this artifact.
		return nil, fmt.Errorf("its subject is not %s", subject.Digest)
	case len(m.Layers) != 1 || m.Layers[0].MediaType != BundleMediaType:
		return nil, fmt.Errorf("want one layer of type %s", BundleMediaType)
	case m.Layers[0].Size < 0 || m.Layers[0].Size > MaxBundleBytes:
		return nil, fmt.Errorf("bundle of %d bytes, over the limit of %d", m.Layers[0].Size, MaxBundleBytes)
	}
	rc, err := repo.Fetch(ctx, m.Layers[0])
	if err != nil {
		return nil, errors.New(oneLine(err))
	}
	defer rc.Close()
	data, err := content.ReadAll(rc, m.Layers[0])
	if err != nil {
		return nil, digestWords(m.Layers[0], err)
	}
	return data, nil
}

// emptyDir removes what a failed pull wrote (dest itself stays: it may be the
// caller's).
func emptyDir(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		os.RemoveAll(dir + string(os.PathSeparator) + e.Name())
	}
}
