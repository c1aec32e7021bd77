package signing

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/youmark/pkcs8"
)

// PEM block types this package reads and writes.
const (
	pemPrivateKey          = "PRIVATE KEY"                    // PKCS#8, plain
	pemEncryptedPrivateKey = "ENCRYPTED PRIVATE KEY"          // PKCS#8 EncryptedPrivateKeyInfo (PBES2)
	pemECPrivateKey        = "EC PRIVATE KEY"                 // SEC 1 (openssl ecparam)
	pemCosignKey           = "ENCRYPTED COSIGN PRIVATE KEY"   // cosign generate-key-pair (older)
	pemSigstoreKey         = "ENCRYPTED SIGSTORE PRIVATE KEY" // cosign generate-key-pair (current)
	pemPublicKey           = "PUBLIC KEY"                     // SubjectPublicKeyInfo
)

// Key file mistakes callers may branch on (errors.Is); each error's text says it in
// the user's words.
var (
	// ErrPasswordRequired: a private key is encrypted and no password was given.
	ErrPasswordRequired = errors.New("private key is encrypted: set SKILLBOX_KEY_PASSWORD")
	// ErrWrongPassword: an encrypted key did not decrypt with the password given.
	ErrWrongPassword = errors.New("wrong password for this key (SKILLBOX_KEY_PASSWORD), or the key file is damaged")
	// ErrPublicKeyGiven: a public key where a private key belongs (sign --key x.pub).
	ErrPublicKeyGiven = errors.New("this is a public key; signing needs the private key (.key)")
	// ErrPrivateKeyGiven: a private key where a public key belongs (trust.yaml,
	// verify --key).
	ErrPrivateKeyGiven = errors.New("this is a private key; list the public key (.pub)")
	// ErrNoPolicy: the trust policy file itself does not exist (a file it names that
	// does not exist is another error, also fs.ErrNotExist).
	ErrNoPolicy = errors.New("no trust policy")
)

// keyError is a key problem in the user's words that keeps its cause in the chain
// (for errors.Is and debugging) without printing the library's text.
type keyError struct {
	kind  error // one of the Err* values, or nil
	msg   string
	cause error
}

func (e *keyError) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return e.kind.Error()
}

func (e *keyError) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.kind, e.cause} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// keyKind names a key that is not ECDSA P-256, for "only ECDSA P-256 keys are
// supported" messages.
func keyKind(key any) string {
	switch k := key.(type) {
	case *rsa.PublicKey, *rsa.PrivateKey:
		return "an RSA key"
	case ed25519.PublicKey, ed25519.PrivateKey, *ed25519.PrivateKey:
		return "an Ed25519 key"
	case *ecdsa.PublicKey:
		return "an ECDSA key on curve " + k.Curve.Params().Name
	case *ecdsa.PrivateKey:
		return "an ECDSA key on curve " + k.Curve.Params().Name
	case *ecdh.PublicKey, *ecdh.PrivateKey:
		return "an X25519 key"
	}
	return "another kind of key"
}

func unsupportedKey(key any) error {
	return &keyError{msg: "only ECDSA P-256 keys are supported, this is " + keyKind(key) + " (skillbox keygen makes one)"}
}

// pemKind says what a PEM block holds when it is not what was wanted.
func pemKind(blockType string) string {
	switch {
	case strings.Contains(blockType, "PRIVATE KEY"):
		return "a private key"
	case blockType == pemPublicKey || blockType == "RSA PUBLIC KEY":
		return "a public key"
	case blockType == "CERTIFICATE":
		return "a certificate"
	}
	return fmt.Sprintf("a PEM %q block, not a key", blockType)
}

// keyEncryption is how encrypted keys are written: the same scrypt cost as cosign's keys
// (N=2^15, r=8, p=1), expressed as standard PBES2 so that openssl can read the file too.
func keyEncryption() *pkcs8.Opts {
	return &pkcs8.Opts{
		Cipher: pkcs8.AES256CBC,
		KDFOpts: pkcs8.ScryptOpts{
			SaltSize:                 16,
			CostParameter:            1 << 15,
			BlockSize:                8,
			ParallelizationParameter: 1,
		},
	}
}

// GenerateKey makes a new ECDSA P-256 key pair. The private key is PKCS#8 PEM, encrypted
// (PBES2: scrypt + AES-256-CBC, "ENCRYPTED PRIVATE KEY") when password is not empty;
// the public key is a PKIX "PUBLIC KEY" PEM.
func GenerateKey(password []byte) (privPEM, pubPEM []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	var block *pem.Block
	if len(password) == 0 {
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, nil, fmt.Errorf("marshal private key: %w", err)
		}
		block = &pem.Block{Type: pemPrivateKey, Bytes: der}
	} else {
		der, err := pkcs8.MarshalPrivateKey(priv, password, keyEncryption())
		if err != nil {
			return nil, nil, fmt.Errorf("encrypt private key: %w", err)
		}
		block = &pem.Block{Type: pemEncryptedPrivateKey, Bytes: der}
	}
	pubPEM, err = MarshalPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(block), pubPEM, nil
}

// MarshalPublicKey writes a public key as a PKIX "PUBLIC KEY" PEM block.
func MarshalPublicKey(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: der}), nil
}

// ParsePrivateKey reads an ECDSA private key from PEM: plain or encrypted PKCS#8, SEC 1,
// or a cosign key ("ENCRYPTED COSIGN PRIVATE KEY" / "ENCRYPTED SIGSTORE PRIVATE KEY",
// scrypt + NaCl secretbox). password is used only for encrypted keys.
func ParsePrivateKey(data, password []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not a key file (no PEM block such as -----BEGIN PRIVATE KEY-----)")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case pemPrivateKey:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case pemECPrivateKey:
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		return nil, unsupportedKey(&rsa.PrivateKey{})
	case pemEncryptedPrivateKey:
		if len(password) == 0 {
			return nil, ErrPasswordRequired
		}
		key, _, err = pkcs8.ParsePrivateKey(block.Bytes, password)
		if err != nil {
			return nil, &keyError{kind: ErrWrongPassword, cause: err}
		}
	case pemCosignKey, pemSigstoreKey:
		if len(password) == 0 {
			return nil, ErrPasswordRequired
		}
		var der []byte
		der, err = encrypted.Decrypt(block.Bytes, password)
		if err != nil {
			return nil, &keyError{kind: ErrWrongPassword, cause: err}
		}
		key, err = x509.ParsePKCS8PrivateKey(der)
	case pemPublicKey, "RSA PUBLIC KEY":
		return nil, ErrPublicKeyGiven
	default:
		return nil, &keyError{msg: "not a private key: the file holds " + pemKind(block.Type)}
	}
	if err != nil {
		return nil, &keyError{msg: "the private key in this file is damaged (its PEM block does not decode)", cause: err}
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, unsupportedKey(key)
	}
	return ec, nil
}

// ParsePublicKey reads an ECDSA P-256 public key from a "PUBLIC KEY" PEM block.
func ParsePublicKey(data []byte) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	switch {
	case block == nil:
		return nil, errors.New("not a key file (no PEM block such as -----BEGIN PUBLIC KEY-----)")
	case strings.Contains(block.Type, "PRIVATE KEY"):
		return nil, ErrPrivateKeyGiven
	case block.Type == "RSA PUBLIC KEY":
		return nil, unsupportedKey(&rsa.PublicKey{})
	case block.Type != pemPublicKey:
		return nil, &keyError{msg: "not a public key: the file holds " + pemKind(block.Type)}
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, &keyError{msg: "the public key in this file is damaged or of a kind skillbox does not know", cause: err}
	}
	ec, ok := key.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, unsupportedKey(key)
	}
	return ec, nil
}

// KeyHint is the key id cosign writes into bundles: base64(sha256(DER SubjectPublicKeyInfo)).
func KeyHint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("key hint: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// keypair adapts a long-lived ECDSA P-256 key to sigstore-go's sign.Keypair.
type keypair struct {
	priv *ecdsa.PrivateKey
	hint string
}

var _ sign.Keypair = (*keypair)(nil)

func newKeypair(priv *ecdsa.PrivateKey) (*keypair, error) {
	hint, err := KeyHint(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	return &keypair{priv: priv, hint: hint}, nil
}

func (k *keypair) GetHashAlgorithm() protocommon.HashAlgorithm {
	return protocommon.HashAlgorithm_SHA2_256
}

func (k *keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
}

func (k *keypair) GetHint() []byte { return []byte(k.hint) }

func (k *keypair) GetKeyAlgorithm() string { return "ECDSA" }

func (k *keypair) GetPublicKey() crypto.PublicKey { return &k.priv.PublicKey }

func (k *keypair) GetPublicKeyPem() (string, error) {
	b, err := MarshalPublicKey(&k.priv.PublicKey)
	return string(b), err
}

// SignData signs sha256(data) and returns the signature and the digest, as
// sign.EphemeralKeypair does.
func (k *keypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	digest := sha256.Sum256(data)
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, digest[:])
	if err != nil {
		return nil, nil, fmt.Errorf("sign: %w", err)
	}
	return sig, digest[:], nil
}
