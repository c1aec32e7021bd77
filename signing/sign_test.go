package signing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// testPackage is a skill's files in memory, its subjects, a key and a policy trusting it.
type testPackage struct {
	manifestYAML, module []byte
	manifest, code       Subject
	signer               Signer
	pubPEM               []byte
	policy               *Policy
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func newTestPackage(t testing.TB, name string) *testPackage {
	t.Helper()
	module := []byte("\x00asm\x01\x00\x00\x00" + name)
	manifestYAML := []byte("apiVersion: skillbox/v1\nname: " + name + "\nversion: 1.0.0\ndescription: test\nsandbox:\n  wasm:\n    module: module.wasm\n    sha256: " + sha(module) + "\n")
	privPEM, pubPEM, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ParsePrivateKey(privPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := PolicyFromKey("acme-release", pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &testPackage{
		manifestYAML: manifestYAML,
		module:       module,
		manifest:     Subject{Name: ManifestName, SHA256: sha(manifestYAML)},
		code:         Subject{Name: "module.wasm", SHA256: sha(module)},
		signer:       KeySigner(priv),
		pubPEM:       pubPEM,
		policy:       policy,
	}
}

func (p *testPackage) sign(t *testing.T) []byte {
	t.Helper()
	b, err := SignSkill(context.Background(), p.manifest, p.code, p.signer)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signStatement signs an arbitrary statement with the package's key: a well-signed
// bundle over a wrong statement.
func (p *testPackage) signStatement(t *testing.T, st statement) []byte {
	t.Helper()
	payload, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	b, err := signPayload(context.Background(), payload, p.signer)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func subj(s Subject) statementSubject {
	return statementSubject{Name: s.Name, Digest: map[string]string{"sha256": s.SHA256}}
}

func TestSignSkillBundleShape(t *testing.T) {
	pkg := newTestPackage(t, "http-fetch")
	raw := pkg.sign(t)
	var pb protobundle.Bundle
	if err := protojson.Unmarshal(raw, &pb); err != nil {
		t.Fatal(err)
	}
	if pb.MediaType != "application/vnd.dev.sigstore.bundle.v0.3+json" {
		t.Errorf("media type %q", pb.MediaType)
	}
	env := pb.GetDsseEnvelope()
	if env == nil || env.PayloadType != PayloadType {
		t.Fatalf("want a DSSE envelope of %s, got %v", PayloadType, env)
	}
	hint, _ := KeyHint(mustPub(t, pkg.pubPEM))
	if got := pb.GetVerificationMaterial().GetPublicKey().GetHint(); got != hint {
		t.Errorf("key hint %q, want %q", got, hint)
	}
	var st statement
	if err := json.Unmarshal(env.Payload, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != StatementType || st.PredicateType != PredicateType || len(st.Subject) != 2 ||
		st.Subject[0].Name != "skill.yaml" || st.Subject[0].Digest["sha256"] != pkg.manifest.SHA256 ||
		st.Subject[1].Name != "module.wasm" || st.Subject[1].Digest["sha256"] != pkg.code.SHA256 {
		t.Errorf("statement = %s", env.Payload)
	}
	if !bytes.Contains(env.Payload, []byte(`"predicate":{"manifest":"skill.yaml","code":"module.wasm"}`)) {
		t.Errorf("predicate missing: %s", env.Payload)
	}
}

func mustPub(t *testing.T, pemBytes []byte) any {
	t.Helper()
	k, err := ParsePublicKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestVerifySkillTamper: each way a package can be wrong is refused with its own check.
func TestVerifySkillTamper(t *testing.T) {
	ctx := context.Background()
	pkg := newTestPackage(t, "http-fetch")
	other := newTestPackage(t, "file-read") // another skill, another key
	good := pkg.sign(t)

	flippedModule := append([]byte(nil), pkg.module...)
	flippedModule[len(flippedModule)-1] ^= 0x01
	editedManifest := bytes.Replace(pkg.manifestYAML, []byte("version: 1.0.0"), []byte("version: 1.0.1"), 1)

	// Another skill signed by the same (trusted) key: its bundle moved into this package.
	sameKeyOther := newTestPackage(t, "file-read")
	sameKeyOther.signer = pkg.signer
	moved := sameKeyOther.sign(t)

	tampered := func() []byte {
		var pb protobundle.Bundle
		if err := protojson.Unmarshal(good, &pb); err != nil {
			t.Fatal(err)
		}
		pb.GetDsseEnvelope().Signatures[0].Sig[8] ^= 0x01
		b, _ := protojson.Marshal(&pb)
		return b
	}()
	// A message-signature bundle (sigstore's other kind) from the same key.
	plain := func() []byte {
		var pb protobundle.Bundle
		if err := protojson.Unmarshal(good, &pb); err != nil {
			t.Fatal(err)
		}
		pb.Content = &protobundle.Bundle_MessageSignature{}
		b, _ := protojson.Marshal(&pb)
		return b
	}()

	tests := []struct {
		name      string
		bundle    []byte
		manifest  Subject
		code      Subject
		policy    *Policy
		wantCheck string
	}{
		{"good", good, pkg.manifest, pkg.code, pkg.policy, ""},
		{"one flipped byte in the module", good, pkg.manifest, Subject{Name: "module.wasm", SHA256: sha(flippedModule)}, pkg.policy, CheckCodeDigest},
		{"a changed field in skill.yaml", good, Subject{Name: ManifestName, SHA256: sha(editedManifest)}, pkg.code, pkg.policy, CheckManifestDigest},
		{"bundle moved from another skill", moved, pkg.manifest, pkg.code, pkg.policy, CheckManifestDigest},
		{"subject renamed", pkg.signStatement(t, statement{Type: StatementType, PredicateType: PredicateType,
			Subject: []statementSubject{subj(pkg.manifest), subj(Subject{Name: "other.wasm", SHA256: pkg.code.SHA256})}}), pkg.manifest, pkg.code, pkg.policy, CheckSubjects},
		{"extra subject", pkg.signStatement(t, statement{Type: StatementType, PredicateType: PredicateType,
			Subject: []statementSubject{subj(pkg.manifest), subj(pkg.code), subj(Subject{Name: "extra.bin", SHA256: pkg.code.SHA256})}}), pkg.manifest, pkg.code, pkg.policy, CheckSubjects},
		{"duplicate subject", pkg.signStatement(t, statement{Type: StatementType, PredicateType: PredicateType,
			Subject: []statementSubject{subj(pkg.manifest), subj(pkg.manifest)}}), pkg.manifest, pkg.code, pkg.policy, CheckSubjects},
		{"wrong predicate type", pkg.signStatement(t, statement{Type: StatementType, PredicateType: "https://slsa.dev/provenance/v1",
			Subject: []statementSubject{subj(pkg.manifest), subj(pkg.code)}}), pkg.manifest, pkg.code, pkg.policy, CheckPredicate},
		{"untrusted key", other.sign(t), other.manifest, other.code, pkg.policy, CheckUntrustedKey},
		{"tampered signature", tampered, pkg.manifest, pkg.code, pkg.policy, CheckSignature},
		{"missing bundle", nil, pkg.manifest, pkg.code, pkg.policy, CheckMissingBundle},
		{"not a bundle", []byte(`{"mediaType": 3}`), pkg.manifest, pkg.code, pkg.policy, CheckBundle},
		{"message signature, not DSSE", plain, pkg.manifest, pkg.code, pkg.policy, CheckBundle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := VerifySkill(ctx, tt.bundle, tt.manifest, tt.code, tt.policy)
			if tt.wantCheck == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if id.Signer != "acme-release" || id.KeyHint == "" {
					t.Fatalf("identity = %+v", id)
				}
				return
			}
			if got := CheckOf(err); got != tt.wantCheck {
				t.Fatalf("check = %q (err %v), want %q", got, err, tt.wantCheck)
			}
		})
	}
}

func TestReadBundleMissing(t *testing.T) {
	_, err := ReadBundle(filepath.Join(t.TempDir(), BundleFile))
	if got := CheckOf(err); got != CheckMissingBundle {
		t.Fatalf("check = %q (err %v), want %q", got, err, CheckMissingBundle)
	}
}

func TestContainerSubject(t *testing.T) {
	pkg := newTestPackage(t, "pdf-text")
	img := Subject{Name: "image.tar", SHA256: "sha256:" + sha([]byte("image config"))}
	b, err := SignSkill(context.Background(), pkg.manifest, img, pkg.signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifySkill(context.Background(), b, pkg.manifest, img, pkg.policy); err != nil {
		t.Fatalf("refused: %v", err)
	}
	otherImg := Subject{Name: "image.tar", SHA256: sha([]byte("another image"))}
	if _, err := VerifySkill(context.Background(), b, pkg.manifest, otherImg, pkg.policy); CheckOf(err) != CheckCodeDigest {
		t.Fatalf("other image ID: err %v, want %s", err, CheckCodeDigest)
	}
}

func TestSignSkillRejectsBadSubjects(t *testing.T) {
	pkg := newTestPackage(t, "x")
	for _, tt := range []struct {
		name     string
		manifest Subject
		code     Subject
	}{
		{"short digest", Subject{Name: ManifestName, SHA256: "abcd"}, pkg.code},
		{"no name", pkg.manifest, Subject{Name: "", SHA256: pkg.code.SHA256}},
		{"same name", pkg.manifest, Subject{Name: ManifestName, SHA256: pkg.code.SHA256}},
	} {
		if _, err := SignSkill(context.Background(), tt.manifest, tt.code, pkg.signer); err == nil {
			t.Errorf("%s: signed, want error", tt.name)
		}
	}
}

func TestKeylessSignerNeedsTokenAndWitness(t *testing.T) {
	ctx := context.Background()
	pkg := newTestPackage(t, "x")
	for _, tt := range []struct {
		name   string
		signer Signer
		want   string
	}{
		{"no token", KeylessSigner(""), "OIDC identity token"},
		{"no Fulcio", KeylessSigner("tok", WithFulcio("")), "Fulcio URL"},
		{"no Rekor and no TSA", KeylessSigner("tok", WithRekor("")), "Rekor URL or a timestamp authority"},
	} {
		_, err := SignSkill(ctx, pkg.manifest, pkg.code, tt.signer)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want it to mention %q", tt.name, err, tt.want)
		}
	}
}
