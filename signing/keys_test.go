package signing

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
)

func TestGenerateKeyRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name     string
		password []byte
		pemType  string
	}{
		{"plain", nil, "PRIVATE KEY"},
		{"encrypted", []byte("correct horse"), "ENCRYPTED PRIVATE KEY"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			privPEM, pubPEM, err := GenerateKey(tt.password)
			if err != nil {
				t.Fatal(err)
			}
			if block, _ := pem.Decode(privPEM); block == nil || block.Type != tt.pemType {
				t.Fatalf("private PEM type: %v, want %s", block, tt.pemType)
			}
			priv, err := ParsePrivateKey(privPEM, tt.password)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := ParsePublicKey(pubPEM)
			if err != nil {
				t.Fatal(err)
			}
			if !priv.PublicKey.Equal(pub) {
				t.Fatal("public key does not belong to the private key")
			}
			if len(tt.password) > 0 {
				if _, err := ParsePrivateKey(privPEM, nil); !errors.Is(err, ErrPasswordRequired) {
					t.Errorf("no password: err %v, want ErrPasswordRequired", err)
				}
				if _, err := ParsePrivateKey(privPEM, []byte("wrong")); err == nil {
					t.Error("wrong password accepted")
				}
				if bytes.Contains(privPEM, []byte("correct horse")) {
					t.Error("password in key file")
				}
			}
		})
	}
}

// TestParseCosignKey reads keys in cosign's own encrypted format (scrypt + secretbox
// over PKCS#8 DER), as cosign generate-key-pair writes them.
func TestParseCosignKey(t *testing.T) {
	privPEM, pubPEM, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := ParsePrivateKey(privPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(plain)
	if err != nil {
		t.Fatal(err)
	}
	box, err := encrypted.Encrypt(der, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"} {
		cosignPEM := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: box})
		got, err := ParsePrivateKey(cosignPEM, []byte("pw"))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if !got.Equal(plain) {
			t.Fatalf("%s: different key", typ)
		}
		if _, err := ParsePrivateKey(cosignPEM, []byte("nope")); err == nil {
			t.Fatalf("%s: wrong password accepted", typ)
		}
	}
	pub, _ := ParsePublicKey(pubPEM)
	if h, _ := KeyHint(pub); len(h) != 44 {
		t.Errorf("hint %q is not base64 of 32 bytes", h)
	}
}

func TestParseKeyRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":      "",
		"not PEM":    "hello",
		"wrong type": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
	} {
		if _, err := ParsePrivateKey([]byte(in), nil); err == nil {
			t.Errorf("private %s: accepted", name)
		}
		if _, err := ParsePublicKey([]byte(in)); err == nil {
			t.Errorf("public %s: accepted", name)
		}
	}
}
