package engine

import (
	"context"
	"fmt"

	"github.com/skillbox-dev/skillbox/runtime/store"
	"github.com/skillbox-dev/skillbox/signing"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

// VerifyBundle checks a Sigstore bundle against the exact bytes of a skill.yaml under
// trust.yaml as loaded now. A registry pull asks it of every bundle referrer, so a
// junk referrer cannot fail an install (oci.Options.VerifyBundle); the install then
// verifies the package in full.
func (e *Engine) VerifyBundle(ctx context.Context, rawManifest, bundle []byte) error {
	st := e.state.Load()
	if st.policy == nil {
		return fmt.Errorf("no usable trust policy at %s: %w", e.TrustPath(), st.policyErr)
	}
	_, err := signing.VerifyManifest(ctx, bundle, skillpkg.ManifestSubject(rawManifest), st.policy)
	return err
}

// OriginOf is the registry reference (oci://…@sha256:…) the package with manifest
// digest md was installed from, or "" for a directory or an archive.
func (e *Engine) OriginOf(md string) (string, error) { return store.Origin(e.home, md) }
