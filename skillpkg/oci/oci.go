// Package oci moves signed skill packages through OCI registries. Push stores a package
// directory as an OCI 1.1 artifact of its own type (skill.yaml and the code as layers,
// the empty config) and attaches its Sigstore bundle as a referrer, laid out as cosign
// lays out bundles (artifact type application/vnd.dev.sigstore.bundle.v0.3+json, subject
// = the artifact's manifest). Pull does the reverse into a directory, with bounded
// sizes and every byte checked against its digest, so that the directory can be
// verified and installed exactly as a local package is.
//
// The package moves bytes and checks digests; it does not judge signatures: that is
// the engine's (install) or the verify command's job, on the directory Pull wrote.
package oci

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/skillbox-dev/skillbox/skillpkg"
)

// Media and artifact types of a skill in a registry.
const (
	// Scheme prefixes a registry reference where a path could also be meant.
	Scheme = "oci://"
	// ArtifactType is the artifact type of a skill package's manifest.
	ArtifactType = "application/vnd.skillbox.skill.v1"
	// MediaTypeManifest is the layer that holds skill.yaml.
	MediaTypeManifest = "application/vnd.skillbox.skill.manifest.v1+yaml"
	// MediaTypeModule is the layer that holds a wasm skill's module.
	MediaTypeModule = "application/vnd.skillbox.skill.module.v1+wasm"
	// MediaTypeImage is the layer that holds a container skill's `docker save` tarball.
	MediaTypeImage = "application/vnd.skillbox.skill.image.v1+tar"
	// BundleMediaType is the Sigstore bundle's media type, as cosign stores bundles:
	// the referrer's artifact type and its one layer's media type.
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"

	// annotationContent and annotationPredicate describe a bundle referrer (cosign's
	// bundle spec); annotationTitle names a layer's file.
	annotationContent   = "dev.sigstore.bundle.content"
	annotationPredicate = "dev.sigstore.bundle.predicateType"
	annotationTitle     = "org.opencontainers.image.title"
	// epoch is the fixed creation time of what Push writes: the same package gives
	// the same artifact digest every time (as pack gives the same archive bytes).
	epoch = "1970-01-01T00:00:00Z"
)

// Bounds on what Pull reads before it trusts anything: a registry is a stranger.
const (
	// MaxManifestBytes bounds an OCI manifest (the artifact's or a referrer's).
	MaxManifestBytes = 256 << 10
	// MaxBundleBytes bounds a Sigstore bundle, as the store does (a real one is a few KiB).
	MaxBundleBytes = 1 << 20
	// MaxReferrers is how many bundle referrers Pull looks at, and MaxReferrerBytes
	// how many bytes of bundles it fetches in all: anyone who can push to a repository
	// can attach referrers, so more junk than this fails an install (closed), and less
	// cannot.
	MaxReferrers     = 64
	MaxReferrerBytes = 16 << 20
	// maxMetadataBytes bounds a referrers list; maxReferrerPages its pages.
	maxMetadataBytes = 1 << 20
	maxReferrerPages = 4
)

// Options say how to reach a registry.
type Options struct {
	// PlainHTTPUnsafe talks plain HTTP instead of TLS: nothing authenticates the
	// registry and anyone on the path can read and change what moves. Allowed only
	// for a loopback registry (localhost, 127.0.0.0/8, ::1), and every connection is
	// checked to really go to a loopback address.
	PlainHTTPUnsafe bool
	// CAFile is a PEM file of certificates trusted besides the system roots.
	CAFile string
	// DockerConfig is the docker config.json whose credentials (and credential
	// helpers) are used: "" means $DOCKER_CONFIG/config.json or ~/.docker/config.json;
	// "-" means no credentials at all.
	DockerConfig string
	// Limits bound the files Pull accepts, as an archive install's: zero means
	// skillpkg.DefaultLimits.
	Limits skillpkg.Limits
	// VerifyBundle, when set, judges a bundle referrer against the caller's trust
	// policy (rawManifest is the artifact's skill.yaml): Pull tries every bundle
	// referrer it fetched (at most MaxReferrers, each at most MaxBundleBytes) and
	// keeps the first that verifies, so that junk referrers anyone who can push may
	// attach cannot fail an install (Pulled.Verified, Pulled.Rejected). Nil, or none
	// verifies: Pull keeps the bundle whose statement names this skill.yaml, for the
	// caller to verify and refuse.
	VerifyBundle func(ctx context.Context, rawManifest, bundle []byte) error
}

func (o Options) limits() skillpkg.Limits {
	if o.Limits == (skillpkg.Limits{}) {
		return skillpkg.DefaultLimits()
	}
	return o.Limits
}

// Ref is a parsed registry reference: host[:port]/repository, then a tag, a digest,
// or both (the digest wins).
type Ref struct {
	Registry   string
	Repository string
	Tag        string
	Digest     string // "sha256:<hex>", or ""
}

// IsRef reports whether s is written as a registry reference (oci://...).
func IsRef(s string) bool { return strings.HasPrefix(s, Scheme) }

// RefError is a reference that does not parse.
type RefError struct {
	Ref    string
	Reason string
}

func (e *RefError) Error() string { return fmt.Sprintf("%s: %s", e.Ref, e.Reason) }

// ParseRef parses "oci://host/repo[:tag][@sha256:hex]" (the oci:// prefix optional).
func ParseRef(s string) (Ref, error) {
	raw := strings.TrimPrefix(s, Scheme)
	bad := func(reason string) (Ref, error) { return Ref{}, &RefError{Ref: s, Reason: reason} }
	if raw == "" {
		return bad("empty reference: want oci://HOST/REPOSITORY[:TAG][@sha256:DIGEST]")
	}
	if !strings.Contains(raw, "/") {
		return bad("no registry host: want oci://HOST/REPOSITORY[:TAG][@sha256:DIGEST]")
	}
	var tag, dgst string
	if at := strings.LastIndex(raw, "@"); at >= 0 {
		raw, dgst = raw[:at], raw[at+1:]
		d, err := digest.Parse(dgst)
		if err != nil || d.Algorithm() != digest.SHA256 {
			return bad(fmt.Sprintf("digest %q: want sha256: and 64 hex digits", dgst))
		}
	}
	if slash, colon := strings.LastIndex(raw, "/"), strings.LastIndex(raw, ":"); colon > slash {
		raw, tag = raw[:colon], raw[colon+1:]
	}
	r, err := registry.ParseReference(raw)
	if err != nil {
		if _, repo, ok := strings.Cut(raw, "/"); ok && strings.Contains(err.Error(), "invalid repository") {
			return bad(fmt.Sprintf("repository %q: lower-case letters and digits, parts joined by . _ - or /", repo))
		}
		return bad(oneLine(err))
	}
	out := Ref{Registry: r.Registry, Repository: r.Repository, Tag: tag, Digest: dgst}
	if tag != "" {
		if err := (registry.Reference{Registry: r.Registry, Repository: r.Repository, Reference: tag}).ValidateReferenceAsTag(); err != nil {
			return bad(fmt.Sprintf("tag %q: letters, digits, _ . - only, at most 128, not starting with . or -", tag))
		}
	}
	return out, nil
}

// String is the reference as oci://host/repo[:tag][@digest].
func (r Ref) String() string {
	s := Scheme + r.Registry + "/" + r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// Pinned is the reference by digest alone: oci://host/repo@sha256:....
func (r Ref) Pinned(d string) string {
	return Scheme + r.Registry + "/" + r.Repository + "@" + d
}

// repository is an oras-go client for r's repository, with the transport opts say.
func repository(r Ref, opts Options) (*remote.Repository, error) {
	repo, err := remote.NewRepository(r.Registry + "/" + r.Repository)
	if err != nil {
		return nil, &RefError{Ref: r.String(), Reason: oneLine(err)}
	}
	tr, err := transport(r.Registry, opts)
	if err != nil {
		return nil, err
	}
	client := &auth.Client{
		Client: &http.Client{Transport: tr, Timeout: 0},
		Header: http.Header{"User-Agent": {"skillbox"}},
		Cache:  auth.NewCache(),
	}
	if opts.DockerConfig != "-" {
		var store credentials.Store
		var serr error
		if opts.DockerConfig == "" {
			store, serr = credentials.NewStoreFromDocker(credentials.StoreOptions{})
		} else {
			store, serr = credentials.NewStore(opts.DockerConfig, credentials.StoreOptions{})
		}
		if serr != nil {
			return nil, fmt.Errorf("registry credentials: %s", oneLine(serr))
		}
		client.Credential = credentials.Credential(store)
	}
	repo.Client = client
	repo.PlainHTTP = opts.PlainHTTPUnsafe
	repo.MaxMetadataBytes = maxMetadataBytes
	repo.ReferrerListMaxPages = maxReferrerPages
	repo.TagListMaxPages = 1
	return repo, nil
}

// PlainHTTPError is plain HTTP asked for a registry that is not on loopback.
type PlainHTTPError struct{ Registry string }

func (e *PlainHTTPError) Error() string {
	return fmt.Sprintf("%s: plain HTTP is allowed only for a registry on loopback (localhost, 127.0.0.1, [::1]); use TLS (--registry-ca for a private CA)", e.Registry)
}

// transport is TLS with the system roots (plus opts.CAFile), or, with
// PlainHTTPUnsafe, plain HTTP that dials loopback addresses only.
func transport(host string, opts Options) (http.RoundTripper, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if opts.PlainHTTPUnsafe {
		if !loopbackHost(host) {
			return nil, &PlainHTTPError{Registry: host}
		}
		// The name said loopback; the address dialled must be loopback too (a
		// redirect, a proxy or a resolver must not carry plain HTTP elsewhere).
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			h, _, err := net.SplitHostPort(address)
			if ip := net.ParseIP(h); err != nil || ip == nil || !ip.IsLoopback() {
				return fmt.Errorf("plain HTTP: refusing to connect to %s: not a loopback address", address)
			}
			return nil
		}
		base.Proxy = nil
	}
	base.DialContext = dialer.DialContext
	// A registry that accepts the connection and never answers does not hold the
	// command forever (bodies may take long: an image tar is hundreds of MiB).
	base.ResponseHeaderTimeout = time.Minute
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("registry CA: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("registry CA: %s holds no PEM certificate", opts.CAFile)
		}
		cfg.RootCAs = pool
	}
	base.TLSClientConfig = cfg
	return base, nil
}

// loopbackHost reports whether a registry host[:port] names the loopback interface.
func loopbackHost(hostport string) bool {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// oneLine keeps the first line of an error's text.
func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// ErrNoBundle: the artifact has no Sigstore bundle attached.
var ErrNoBundle = errors.New("no Sigstore bundle attached")
