package signing

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// libraryTexts are fragments of Go's and the libraries' wording that must not reach an
// operator: Go type names, the PEM/x509/pkcs8/protobuf/regexp packages' messages, raw
// I/O errors with their "open PATH:" prefix, skillbox's anchoring of patterns.
var libraryTexts = []string{
	"*rsa", "*ecdsa", "rsa.Public", "pkcs8", "x509", "proto", "unmarshal", "error parsing regexp",
	"^(?:", "PEM block found", "unsupported PEM block", "open /", "no such file", "got *",
	"failed to", "trust policy does not list",
}

func noLibraryText(t *testing.T, what string, err error) {
	t.Helper()
	for _, bad := range libraryTexts {
		if strings.Contains(err.Error(), bad) {
			t.Errorf("%s: %q holds %q", what, err, bad)
		}
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// UX review A and B: trust.yaml's key and root mistakes are named by field, file and
// what to do, in plain words.
func TestPolicyFileMistakesInPlainWords(t *testing.T) {
	dir := t.TempDir()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	writeFile(t, filepath.Join(dir, "keys", "rsa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ = x509.MarshalPKIXPublicKey(&p384.PublicKey)
	writeFile(t, filepath.Join(dir, "keys", "p384.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	priv, pub, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "keys", "rel.key"), priv)
	writeFile(t, filepath.Join(dir, "keys", "rel.pub"), pub)
	writeFile(t, filepath.Join(dir, "root.pem"), pub)
	writeFile(t, filepath.Join(dir, "root.json"), []byte(`{"mediaType": 5}`))

	keyless := func(re string) string {
		return "signers:\n  - name: ci\n    keyless: {issuer: https://i, subjectRegexp: \"" + re + "\"}\ntrustedRoot: root.json\n"
	}
	path := filepath.Join(dir, "trust.yaml")
	for _, tc := range []struct{ doc, want string }{
		{"signers:\n  - {name: a, key: keys/rsa.pub}\n", "signers[0].key: keys/rsa.pub: only ECDSA P-256 keys are supported, this is an RSA key (skillbox keygen makes one)"},
		{"signers:\n  - {name: a, key: keys/p384.pub}\n", "signers[0].key: keys/p384.pub: only ECDSA P-256 keys are supported, this is an ECDSA key on curve P-384"},
		{"signers:\n  - {name: a, key: keys/rel.key}\n", "signers[0].key: keys/rel.key is a private key; list the public key (keys/rel.pub)"},
		{"signers:\n  - {name: a, key: keys/missing.pub}\n", "signers[0].key: keys/missing.pub does not exist (relative paths are read from " + dir + ", the trust file's directory)"},
		{"signers:\n  - {name: a, key: keys/rel.pub}\ntrustedRoot: root.pem\n", "trustedRoot: root.pem is a PEM file; want a Sigstore trusted root in JSON"},
		{"signers:\n  - {name: a, key: keys/rel.pub}\ntrustedRoot: nope.json\n", "trustedRoot: nope.json does not exist (relative paths are read from " + dir},
		{"signers:\n  - {name: a, key: keys/rel.pub}\ntrustedRoot: root.json\n", "trustedRoot: root.json is JSON but not a Sigstore trusted root"},
		{keyless("("), `signers[0].keyless.subjectRegexp: "(" is not a valid regular expression: missing closing ) at "("`},
		{keyless("a)"), `signers[0].keyless.subjectRegexp: "a)" is not a valid regular expression: unexpected ) at "a)"`},
	} {
		writeFile(t, path, []byte(tc.doc))
		_, err := LoadPolicy(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.doc, err, tc.want)
			continue
		}
		noLibraryText(t, tc.doc, err)
	}

	_, err = LoadPolicy(filepath.Join(dir, "none", "trust.yaml"))
	if err == nil || err.Error() != "no usable trust policy at "+filepath.Join(dir, "none", "trust.yaml")+": the file does not exist" || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing trust.yaml: %v", err)
	}
}

// UX review A and B: key files given to sign and verify are named for what they are.
func TestKeyFileMistakesInPlainWords(t *testing.T) {
	priv, pub, err := GenerateKey([]byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParsePrivateKey(priv, []byte("wrong"))
	if !errors.Is(err, ErrWrongPassword) || err.Error() != "wrong password for this key (SKILLBOX_KEY_PASSWORD), or the key file is damaged" {
		t.Errorf("wrong password: %v", err)
	} else {
		noLibraryText(t, "wrong password", err)
	}
	if _, err := ParsePrivateKey(pub, nil); !errors.Is(err, ErrPublicKeyGiven) {
		t.Errorf("public key to sign with: %v", err)
	}
	if _, err := ParsePublicKey(priv); !errors.Is(err, ErrPrivateKeyGiven) {
		t.Errorf("private key to verify with: %v", err)
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	_, err = ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil)
	if err == nil || !strings.Contains(err.Error(), "only ECDSA P-256 keys are supported, this is an RSA key") {
		t.Errorf("RSA private key: %v", err)
	} else {
		noLibraryText(t, "RSA private key", err)
	}
	if _, err := ParsePrivateKey([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), nil); err == nil {
		t.Error("damaged key accepted")
	} else {
		noLibraryText(t, "damaged key", err)
	}
}

// UX review B: verify --key names that key, not a trust policy, when another key signed.
func TestVerifyWithOneKeyNamesIt(t *testing.T) {
	pkg := newTestPackage(t, "echo")
	bundle := pkg.sign(t)
	_, otherPub, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := PolicyFromKey("other.pub", otherPub)
	if err != nil {
		t.Fatal(err)
	}
	_, err = VerifySkill(context.Background(), bundle, pkg.manifest, pkg.code, policy)
	if CheckOf(err) != CheckUntrustedKey || !strings.HasPrefix(err.Error(), "untrusted-key check failed: not signed by other.pub (signed by key ") {
		t.Fatalf("verify with another key: %v", err)
	}
	noLibraryText(t, "verify --key", err)
}
