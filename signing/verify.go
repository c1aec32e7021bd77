package signing

import (
	"context"
	"crypto"
	_ "embed" // the public-good trusted root
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// publicGoodRoot is the Sigstore public-good trusted root (sigstore/root-signing,
// targets/trusted_root.json), used by VerifyBundle when no root is given, so that
// verification never needs the network. Refresh it with the file under
// shared/testdata/sigstore-conformance when the public-good keys rotate.
//
//go:embed public_good_trusted_root.json
var publicGoodRoot []byte

// PublicGoodTrustedRoot returns the embedded Sigstore public-good trusted root JSON.
func PublicGoodTrustedRoot() []byte { return append([]byte(nil), publicGoodRoot...) }

// Identity is who signed a verified bundle.
type Identity struct {
	Signer  string // the trust policy entry that matched ("" for VerifyBundle)
	KeyHint string // key-based: base64(sha256(SubjectPublicKeyInfo))
	Subject string // keyless: the certificate's subject alternative name
	Issuer  string // keyless: the OIDC issuer in the certificate
}

// String is one line for humans: "acme-ci (keyless: SAN, issuer ISSUER)".
func (id *Identity) String() string {
	name := id.Signer
	if name == "" {
		name = "signer"
	}
	if id.Subject != "" || id.Issuer != "" {
		return fmt.Sprintf("%s (keyless: %s, issuer %s)", name, id.Subject, id.Issuer)
	}
	return fmt.Sprintf("%s (key %s)", name, id.KeyHint)
}

// VerifySkill checks a skill bundle: the signature against the policy's keys or
// identities (and, for keyless, the certificate chain, transparency log and timestamps
// against the policy's trusted root file), then that the statement is an in-toto
// Statement v1 of PredicateType with exactly the two subjects manifest and code, with
// exactly the digests the caller computed from the files in hand. Every refusal is a
// *VerifyError naming the check.
func VerifySkill(ctx context.Context, bundleJSON []byte, manifest, code Subject, policy *Policy) (*Identity, error) {
	c, err := normalize(code)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	return verifySkill(ctx, bundleJSON, manifest, &c, policy)
}

// VerifyManifest is the first half of VerifySkill, for an installer that holds only the
// bytes of skill.yaml: the signature against the policy, and a statement signing this
// manifest digest. It needs nothing parsed from skill.yaml, so an unsigned or foreign
// package is refused before any of its content is interpreted (a hostile schema costs
// seconds to compile). It is never a whole verification: the code is not checked, so
// VerifySkill must follow once the code's digest is known.
func VerifyManifest(ctx context.Context, bundleJSON []byte, manifest Subject, policy *Policy) (*Identity, error) {
	return verifySkill(ctx, bundleJSON, manifest, nil, policy)
}

// verifySkill checks the signature, then the statement's subjects; code nil skips the
// code subject's digest.
func verifySkill(ctx context.Context, bundleJSON []byte, manifest Subject, code *Subject, policy *Policy) (id *Identity, err error) {
	// The bundle is hostile input to a third-party parser (sigstore-go v1.2 panicked on
	// some malformed bundles): a panic there is a refusal, never a crash of the caller.
	defer func() {
		if r := recover(); r != nil {
			id, err = nil, &VerifyError{Check: CheckBundle, Err: fmt.Errorf("malformed bundle: %v", r)}
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if policy == nil {
		return nil, &VerifyError{Check: CheckPolicy, Err: errors.New("no trust policy")}
	}
	m, err := normalize(manifest)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if len(bundleJSON) == 0 {
		return nil, &VerifyError{Check: CheckMissingBundle, Err: errors.New("no " + BundleFile + ": the package is not signed")}
	}
	b, err := parseBundle(bundleJSON)
	if err != nil {
		return nil, err
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, &VerifyError{Check: CheckBundle, Err: errors.New("bundle holds a plain message signature, not a DSSE in-toto statement")}
	}
	if env.GetPayloadType() != PayloadType {
		return nil, &VerifyError{Check: CheckBundle, Err: fmt.Errorf("DSSE payload type is %q, want %q", env.GetPayloadType(), PayloadType)}
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return nil, &VerifyError{Check: CheckBundle, Err: err}
	}
	if vc.PublicKey() != nil {
		id, err = verifyWithKeys(b, vc.PublicKey().Hint(), policy)
	} else {
		id, err = verifyKeyless(b, policy)
	}
	if err != nil {
		return nil, err
	}
	// The signature is good: now the statement must be exactly what we expect.
	if err := checkStatement(env.GetPayload(), m, code); err != nil {
		return nil, err
	}
	return id, nil
}

func parseBundle(data []byte) (b *bundle.Bundle, err error) {
	// Every bundle is hostile input to sigstore-go's parser, verified or not (a pull
	// orders a registry's unverified referrers by parsing them): a panic there is a
	// refusal, as in verifySkill.
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, &VerifyError{Check: CheckBundle, Err: fmt.Errorf("malformed bundle: %v", r)}
		}
	}()
	b = &bundle.Bundle{}
	if err := b.UnmarshalJSON(data); err != nil {
		return nil, &VerifyError{Check: CheckBundle, Err: err}
	}
	return b, nil
}

func keyMaterial(k trustedKey) root.TrustedMaterial {
	return root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		v, err := signature.LoadVerifier(k.pub, crypto.SHA256)
		if err != nil {
			return nil, err
		}
		return root.NewExpiringKey(v, time.Time{}, time.Time{}), nil
	})
}

// verifyWithKeys tries the policy keys the bundle's hint names (all keys when the
// bundle has no hint). Key-based bundles carry no witnessed time, so the key's own
// validity is not time-checked (no observer timestamps), like cosign --insecure-ignore-tlog.
func verifyWithKeys(b *bundle.Bundle, hint string, policy *Policy) (*Identity, error) {
	var candidates []trustedKey
	for _, k := range policy.keys {
		if hint == "" || k.hint == hint {
			candidates = append(candidates, k)
		}
	}
	if len(candidates) == 0 {
		if policy.oneKey && len(policy.keys) == 1 {
			// verify --key: no trust policy is involved, only that key.
			return nil, &VerifyError{Check: CheckUntrustedKey, Err: fmt.Errorf("not signed by %s (signed by key %s)", policy.keys[0].name, hint)}
		}
		return nil, &VerifyError{Check: CheckUntrustedKey, Err: fmt.Errorf("signed by key %s, which the trust policy does not list", hint)}
	}
	var lastErr error
	for _, k := range candidates {
		v, err := verify.NewVerifier(keyMaterial(k), verify.WithNoObserverTimestamps())
		if err != nil {
			return nil, err
		}
		if _, err = v.Verify(b, verify.NewPolicy(verify.WithoutArtifactUnsafe(), verify.WithKey())); err == nil {
			return &Identity{Signer: k.name, KeyHint: k.hint}, nil
		}
		lastErr = err
	}
	if hint == "" {
		if policy.oneKey && len(policy.keys) == 1 {
			return nil, &VerifyError{Check: CheckUntrustedKey, Err: &keyError{msg: fmt.Sprintf("not signed by %s", policy.keys[0].name), cause: lastErr}}
		}
		return nil, &VerifyError{Check: CheckUntrustedKey, Err: &keyError{msg: "no trusted key verifies the signature", cause: lastErr}}
	}
	return nil, classify(lastErr)
}

// verifyKeyless checks a certificate-signed bundle against the trusted root: the chain
// to a Fulcio CA at a witnessed time (Rekor integrated time or RFC 3161 timestamp), the
// transparency log entry when the root lists logs, SCTs when it lists CT logs, and then
// the identity.
func verifyKeyless(b *bundle.Bundle, policy *Policy) (*Identity, error) {
	if len(policy.keyless) == 0 {
		return nil, &VerifyError{Check: CheckIdentity, Err: errors.New("bundle is signed with a certificate (keyless) but the trust policy lists no keyless signers")}
	}
	tr := policy.trustedRoot
	if tr == nil {
		return nil, &VerifyError{Check: CheckPolicy, Err: errors.New("keyless signers need a trustedRoot")}
	}
	opts := []verify.VerifierOption{verify.WithObserverTimestamps(1)}
	if len(tr.CTLogs()) > 0 {
		opts = append(opts, verify.WithSignedCertificateTimestamps(1))
	}
	if len(tr.RekorLogs()) > 0 {
		opts = append(opts, verify.WithTransparencyLog(1))
	}
	v, err := verify.NewVerifier(tr, opts...)
	if err != nil {
		return nil, &VerifyError{Check: CheckPolicy, Err: err}
	}
	popts := []verify.PolicyOption{}
	for _, k := range policy.keyless {
		ci, err := verify.NewShortCertificateIdentity(k.issuer, "", "", anchor(k.pattern))
		if err != nil {
			return nil, &VerifyError{Check: CheckPolicy, Err: err}
		}
		popts = append(popts, verify.WithCertificateIdentity(ci))
	}
	res, err := v.Verify(b, verify.NewPolicy(verify.WithoutArtifactUnsafe(), popts...))
	if err != nil {
		return nil, classify(err)
	}
	if res.Signature == nil || res.Signature.Certificate == nil {
		return nil, &VerifyError{Check: CheckIdentity, Err: errors.New("no certificate in verification result")}
	}
	san, iss := res.Signature.Certificate.SubjectAlternativeName, res.Signature.Certificate.Issuer
	for _, k := range policy.keyless {
		if k.matches(iss, san) {
			return &Identity{Signer: k.name, Subject: san, Issuer: iss}, nil
		}
	}
	return nil, &VerifyError{Check: CheckIdentity, Err: fmt.Errorf("certificate identity %s (issuer %s) matches no trusted signer", san, iss)}
}

// Artifact is what VerifyBundle checks the bundle against: the bytes, or a digest.
type Artifact struct {
	data      []byte
	digestAlg string
	digest    []byte
}

// ArtifactBytes is an artifact given by its bytes.
func ArtifactBytes(data []byte) Artifact { return Artifact{data: data} }

// ParseArtifactDigest parses "sha256:HEX" (also sha384, sha512).
func ParseArtifactDigest(s string) (Artifact, error) {
	alg, h, ok := strings.Cut(s, ":")
	if !ok {
		return Artifact{}, fmt.Errorf("artifact digest %q: want ALG:HEX", s)
	}
	d, err := hex.DecodeString(h)
	if err != nil || len(d) == 0 {
		return Artifact{}, fmt.Errorf("artifact digest %q: bad hex", s)
	}
	switch alg {
	case "sha256", "sha384", "sha512":
	default:
		return Artifact{}, fmt.Errorf("artifact digest %q: unsupported algorithm %q", s, alg)
	}
	return Artifact{digestAlg: alg, digest: d}, nil
}

// BundlePolicy says whom VerifyBundle trusts: exactly one of KeyPEM or the certificate
// Identity (SAN, exact) and Issuer.
type BundlePolicy struct {
	KeyPEM          []byte
	Identity        string
	Issuer          string
	TrustedRootJSON []byte // nil: the embedded public-good root
}

// VerifyBundle checks any Sigstore bundle (message signature or DSSE) against an
// artifact, as the sigstore-conformance client protocol defines verify-bundle. It needs
// no network.
func VerifyBundle(ctx context.Context, bundleJSON []byte, artifact Artifact, p BundlePolicy) (id *Identity, err error) {
	defer func() { // as in VerifySkill: a parser panic is a refusal
		if r := recover(); r != nil {
			id, err = nil, &VerifyError{Check: CheckBundle, Err: fmt.Errorf("malformed bundle: %v", r)}
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(bundleJSON) == 0 {
		return nil, &VerifyError{Check: CheckMissingBundle, Err: errors.New("no bundle")}
	}
	rootJSON := p.TrustedRootJSON
	if rootJSON == nil {
		rootJSON = publicGoodRoot
	}
	trusted, err := root.NewTrustedRootFromJSON(rootJSON)
	if err != nil {
		return nil, &VerifyError{Check: CheckPolicy, Err: fmt.Errorf("trusted root: %w", err)}
	}
	b, err := parseBundle(bundleJSON)
	if err != nil {
		return nil, err
	}

	var (
		tm     root.TrustedMaterial = trusted
		vopts  []verify.VerifierOption
		popts  []verify.PolicyOption
		hint   string
		useKey = len(p.KeyPEM) > 0
	)
	switch {
	case useKey && (p.Identity != "" || p.Issuer != ""):
		return nil, &VerifyError{Check: CheckPolicy, Err: errors.New("give a key or a certificate identity, not both")}
	case useKey:
		pub, err := cryptoutils.UnmarshalPEMToPublicKey(p.KeyPEM)
		if err != nil {
			return nil, &VerifyError{Check: CheckPolicy, Err: fmt.Errorf("key: %w", err)}
		}
		if hint, err = KeyHint(pub); err != nil {
			return nil, &VerifyError{Check: CheckPolicy, Err: err}
		}
		km := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
			v, err := signature.LoadDefaultVerifier(pub)
			if err != nil {
				return nil, err
			}
			return root.NewExpiringKey(v, time.Time{}, time.Time{}), nil
		})
		tm = root.TrustedMaterialCollection{km, trusted}
		popts = append(popts, verify.WithKey())
	case p.Identity == "" || p.Issuer == "":
		return nil, &VerifyError{Check: CheckPolicy, Err: errors.New("need --key, or both --certificate-identity and --certificate-oidc-issuer")}
	default:
		vopts = append(vopts, verify.WithSignedCertificateTimestamps(1))
		ci, err := verify.NewShortCertificateIdentity(p.Issuer, "", p.Identity, "")
		if err != nil {
			return nil, &VerifyError{Check: CheckPolicy, Err: err}
		}
		popts = append(popts, verify.WithCertificateIdentity(ci))
	}

	ts, err := b.Timestamps()
	if err != nil {
		return nil, &VerifyError{Check: CheckBundle, Err: err}
	}
	if len(tm.TimestampingAuthorities()) > 0 && len(ts) > 0 {
		vopts = append(vopts, verify.WithSignedTimestamps(1))
	}
	if len(tm.RekorLogs()) > 0 {
		vopts = append(vopts, verify.WithTransparencyLog(1))
		if b.HasInclusionPromise() {
			vopts = append(vopts, verify.WithIntegratedTimestamps(1))
		}
	}
	if len(vopts) == 0 {
		vopts = append(vopts, verify.WithNoObserverTimestamps())
	}
	v, err := verify.NewVerifier(tm, vopts...)
	if err != nil {
		return nil, &VerifyError{Check: CheckPolicy, Err: err}
	}
	var aopt verify.ArtifactPolicyOption
	if artifact.digest != nil {
		aopt = verify.WithArtifactDigest(artifact.digestAlg, artifact.digest)
	} else {
		aopt = verify.WithArtifact(bytesReader(artifact.data))
	}
	res, err := v.Verify(b, verify.NewPolicy(aopt, popts...))
	if err != nil {
		return nil, classify(err)
	}
	if useKey {
		return &Identity{KeyHint: hint}, nil
	}
	id = &Identity{Subject: p.Identity, Issuer: p.Issuer}
	if res.Signature != nil && res.Signature.Certificate != nil {
		id.Subject = res.Signature.Certificate.SubjectAlternativeName
		id.Issuer = res.Signature.Certificate.Issuer
	}
	return id, nil
}

// ReadBundle reads a bundle file. A missing file is a *VerifyError with
// CheckMissingBundle, so an unsigned package is refused with its own reason.
func ReadBundle(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &VerifyError{Check: CheckMissingBundle, Err: fmt.Errorf("%s not found: the package is not signed", path)}
	}
	if err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	if len(b) == 0 {
		return nil, &VerifyError{Check: CheckMissingBundle, Err: fmt.Errorf("%s is empty", path)}
	}
	return b, nil
}
