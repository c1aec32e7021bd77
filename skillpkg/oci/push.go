package oci

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/skillbox-dev/skillbox/signing"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

// Pushed is what Push wrote.
type Pushed struct {
	Ref     Ref    // as given (the tag, if any)
	Digest  string // the artifact manifest's digest: what an operator pins
	Bundle  string // the bundle referrer manifest's digest
	Name    string // the skill's name and version, from skill.yaml
	Version string
}

// Pinned is the artifact's reference by digest.
func (p *Pushed) Pinned() string { return p.Ref.Pinned(p.Digest) }

// UnsignedError is a package without a bundle: nothing to push.
type UnsignedError struct{ Dir string }

func (e *UnsignedError) Error() string {
	return fmt.Sprintf("%s has no %s: sign it first (skillbox sign %s --key KEY)", e.Dir, skillpkg.BundleFile, e.Dir)
}

// StaleError is a bundle that no longer matches the package it sits in.
type StaleError struct{ Err error }

func (e *StaleError) Error() string {
	return fmt.Sprintf("%s does not match the package any more (%s): sign it again before pushing", skillpkg.BundleFile, oneLine(e.Err))
}
func (e *StaleError) Unwrap() error { return e.Err }

// Push stores the signed package in dir at ref (a tag, or no tag: then the artifact
// is reachable by digest only) and attaches its bundle as a referrer. The package must
// load (digests filled in by pack) and carry a bundle over exactly its files; a
// package that is unsigned or whose bundle is stale is refused before anything is
// sent. The same package always gives the same artifact digest.
func Push(ctx context.Context, dir, ref string, opts Options) (*Pushed, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	if r.Digest != "" {
		return nil, &RefError{Ref: ref, Reason: "push names a tag, not a digest (the digest is what push prints)"}
	}
	p, err := skillpkg.Load(dir)
	if err != nil {
		return nil, err
	}
	if !p.HasBundle {
		return nil, &UnsignedError{Dir: dir}
	}
	bundle, err := signing.ReadBundle(filepath.Join(dir, skillpkg.BundleFile))
	if err != nil {
		return nil, err
	}
	if len(bundle) > MaxBundleBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", skillpkg.BundleFile, MaxBundleBytes)
	}
	mSubj, code := p.Subjects()
	if err := signing.StaleBundle(bundle, mSubj, code); err != nil {
		return nil, &StaleError{Err: err}
	}
	repo, err := repository(r, opts)
	if err != nil {
		return nil, err
	}
	layers := []ocispec.Descriptor{}
	desc, err := pushBytes(ctx, repo, MediaTypeManifest, skillpkg.ManifestFile, p.ManifestBytes)
	if err != nil {
		return nil, pushError(r, err)
	}
	layers = append(layers, desc)
	if c := p.Manifest.Sandbox.Container; c == nil || !c.FromRegistry() {
		mt := MediaTypeModule
		if c != nil {
			mt = MediaTypeImage
		}
		desc, err := pushFile(ctx, repo, mt, dir, p.Code.Name)
		if err != nil {
			return nil, pushError(r, err)
		}
		layers = append(layers, desc)
	}
	art, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, ArtifactType, oras.PackManifestOptions{
		Layers: layers,
		ManifestAnnotations: map[string]string{
			ocispec.AnnotationCreated: epoch,
			ocispec.AnnotationTitle:   p.Manifest.Name,
			ocispec.AnnotationVersion: p.Manifest.Version,
		},
	})
	if err != nil {
		return nil, pushError(r, err)
	}
	if r.Tag != "" {
		if err := repo.Tag(ctx, art, r.Tag); err != nil {
			return nil, pushError(r, err)
		}
	}
	bdesc, err := pushBytes(ctx, repo, BundleMediaType, "", bundle)
	if err != nil {
		return nil, pushError(r, err)
	}
	ref2, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, BundleMediaType, oras.PackManifestOptions{
		Subject: &art,
		Layers:  []ocispec.Descriptor{bdesc},
		ManifestAnnotations: map[string]string{
			ocispec.AnnotationCreated: epoch,
			annotationContent:         "dsse-envelope",
			annotationPredicate:       signing.PredicateType,
		},
	})
	if err != nil {
		return nil, pushError(r, err)
	}
	return &Pushed{Ref: r, Digest: art.Digest.String(), Bundle: ref2.Digest.String(),
		Name: p.Manifest.Name, Version: p.Manifest.Version}, nil
}

func pushError(r Ref, err error) error {
	return fmt.Errorf("%s: %s", r, transportWords(err)) // the CLI says "push: "
}

// pushBytes uploads data as a blob unless the registry has it already.
func pushBytes(ctx context.Context, repo *remote.Repository, mediaType, title string, data []byte) (ocispec.Descriptor, error) {
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if title != "" {
		desc.Annotations = map[string]string{annotationTitle: title}
	}
	ok, err := repo.Exists(ctx, desc)
	if err != nil || ok {
		return desc, err
	}
	return desc, repo.Push(ctx, desc, bytes.NewReader(data))
}

// pushFile uploads a package file by streaming it twice: once to digest it, once to
// send it (an image tar may be hundreds of MiB).
func pushFile(ctx context.Context, repo *remote.Repository, mediaType, dir, name string) (ocispec.Descriptor, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer f.Close()
	d, err := digest.SHA256.FromReader(f)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w", name, err)
	}
	size, err := f.Seek(0, 1)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if _, err := f.Seek(0, 0); err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: size,
		Annotations: map[string]string{annotationTitle: name}}
	ok, err := repo.Exists(ctx, desc)
	if err != nil || ok {
		return desc, err
	}
	return desc, repo.Push(ctx, desc, f)
}
