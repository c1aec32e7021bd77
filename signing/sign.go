package signing

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"time"

	"github.com/sigstore/sigstore-go/pkg/sign"
	"google.golang.org/protobuf/encoding/protojson"
)

// Public-good Sigstore service URLs, the defaults for keyless signing.
const (
	DefaultFulcioURL = "https://fulcio.sigstore.dev"
	DefaultRekorURL  = "https://rekor.sigstore.dev"
)

// Signer says who signs: a long-lived key (KeySigner) or a Fulcio certificate for an
// OIDC identity (KeylessSigner).
type Signer interface {
	// bundleOptions returns the key that signs and how the bundle is completed.
	bundleOptions(ctx context.Context) (sign.Keypair, sign.BundleOptions, error)
}

type keySigner struct{ priv *ecdsa.PrivateKey }

// KeySigner signs with a long-lived ECDSA P-256 key. The bundle carries the key hint
// and no transparency log entry: trust comes from the operator's trust.yaml.
func KeySigner(priv *ecdsa.PrivateKey) Signer { return keySigner{priv: priv} }

func (s keySigner) bundleOptions(ctx context.Context) (sign.Keypair, sign.BundleOptions, error) {
	if s.priv == nil {
		return nil, sign.BundleOptions{}, errors.New("no private key")
	}
	kp, err := newKeypair(s.priv)
	return kp, sign.BundleOptions{Context: ctx}, err
}

// KeylessOption configures a KeylessSigner.
type KeylessOption func(*keylessSigner)

// WithFulcio sets the Fulcio URL (default DefaultFulcioURL).
func WithFulcio(url string) KeylessOption { return func(k *keylessSigner) { k.fulcio = url } }

// WithRekor sets the Rekor URL (default DefaultRekorURL); "" means no transparency log,
// which then requires WithTimestampAuthority.
func WithRekor(url string) KeylessOption { return func(k *keylessSigner) { k.rekor = url } }

// WithTimestampAuthority adds an RFC 3161 timestamp authority (full URL with path).
func WithTimestampAuthority(url string) KeylessOption {
	return func(k *keylessSigner) { k.tsa = url }
}

// WithTimeout bounds each network request (default 30s).
func WithTimeout(d time.Duration) KeylessOption { return func(k *keylessSigner) { k.timeout = d } }

type keylessSigner struct {
	token              string
	fulcio, rekor, tsa string
	timeout            time.Duration
}

// KeylessSigner signs with an ephemeral key certified by Fulcio for the identity in the
// OIDC token, and records the signature in Rekor and/or with a timestamp authority.
func KeylessSigner(idToken string, opts ...KeylessOption) Signer {
	k := &keylessSigner{token: idToken, fulcio: DefaultFulcioURL, rekor: DefaultRekorURL, timeout: 30 * time.Second}
	for _, o := range opts {
		o(k)
	}
	return k
}

func (k *keylessSigner) bundleOptions(ctx context.Context) (sign.Keypair, sign.BundleOptions, error) {
	if k.token == "" {
		return nil, sign.BundleOptions{}, errors.New("keyless signing needs an OIDC identity token")
	}
	if k.fulcio == "" {
		return nil, sign.BundleOptions{}, errors.New("keyless signing needs a Fulcio URL")
	}
	if k.rekor == "" && k.tsa == "" {
		return nil, sign.BundleOptions{}, errors.New("keyless signing needs a Rekor URL or a timestamp authority URL: a certificate is only checkable at a witnessed time")
	}
	kp, err := sign.NewEphemeralKeypair(nil)
	if err != nil {
		return nil, sign.BundleOptions{}, err
	}
	o := sign.BundleOptions{
		Context:                    ctx,
		CertificateProvider:        sign.NewFulcio(&sign.FulcioOptions{BaseURL: k.fulcio, Timeout: k.timeout, Retries: 1}),
		CertificateProviderOptions: &sign.CertificateProviderOptions{IDToken: k.token},
	}
	if k.rekor != "" {
		o.TransparencyLogs = append(o.TransparencyLogs, sign.NewRekor(&sign.RekorOptions{BaseURL: k.rekor, Timeout: k.timeout, Retries: 1}))
	}
	if k.tsa != "" {
		o.TimestampAuthorities = append(o.TimestampAuthorities, sign.NewTimestampAuthority(&sign.TimestampAuthorityOptions{URL: k.tsa, Timeout: k.timeout, Retries: 1}))
	}
	return kp, o, nil
}

// SignSkill signs the in-toto statement over exactly the manifest and code subjects and
// returns the Sigstore bundle (v0.3 JSON) holding its DSSE envelope.
func SignSkill(ctx context.Context, manifest, code Subject, signer Signer) ([]byte, error) {
	m, err := normalize(manifest)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	c, err := normalize(code)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if m.Name == c.Name {
		return nil, fmt.Errorf("sign: manifest and code subjects are both named %q", m.Name)
	}
	payload, err := newStatement(m, c)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return signPayload(ctx, payload, signer)
}

// signPayload wraps any in-toto payload in a DSSE envelope and a bundle. Tests use it to
// make well-signed bundles over wrong statements.
func signPayload(ctx context.Context, payload []byte, signer Signer) ([]byte, error) {
	if signer == nil {
		return nil, errors.New("sign: no signer")
	}
	kp, opts, err := signer.bundleOptions(ctx)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	pb, err := sign.Bundle(&sign.DSSEData{Data: payload, PayloadType: PayloadType}, kp, opts)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	out, err := protojson.Marshal(pb)
	if err != nil {
		return nil, fmt.Errorf("sign: encode bundle: %w", err)
	}
	return out, nil
}
