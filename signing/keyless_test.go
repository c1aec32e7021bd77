package signing

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

const (
	ciIdentity = "release@acme.example"
	ciIssuer   = "https://token.actions.githubusercontent.com"
)

// virtualBundle signs payload as identity/issuer with the offline VirtualSigstore and
// packs what it returns (Fulcio certificate, DSSE envelope, Rekor entry with inclusion
// proof and signed entry timestamp, RFC 3161 timestamp) into a v0.3 bundle, the same
// shape sign.Bundle produces online.
func virtualBundle(t *testing.T, vs *ca.VirtualSigstore, identity, issuer string, payload []byte, integrated time.Time) []byte {
	t.Helper()
	ent, err := vs.AttestAtTime(identity, issuer, payload, integrated, true)
	if err != nil {
		t.Fatal(err)
	}
	vc, err := ent.VerificationContent()
	if err != nil {
		t.Fatal(err)
	}
	cert := vc.(*bundle.Certificate).Certificate()
	sc, err := ent.SignatureContent()
	if err != nil {
		t.Fatal(err)
	}
	env := sc.(*bundle.Envelope).Envelope
	body, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		t.Fatal(err)
	}
	tsrs, err := ent.Timestamps()
	if err != nil {
		t.Fatal(err)
	}
	entries, err := ent.TlogEntries()
	if err != nil {
		t.Fatal(err)
	}
	tle := proto.Clone(entries[0].TransparencyLogEntry()).(*protorekor.TransparencyLogEntry)
	var kv struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(tle.CanonicalizedBody, &kv); err != nil {
		t.Fatal(err)
	}
	tle.KindVersion = &protorekor.KindVersion{Kind: kv.Kind, Version: kv.APIVersion}
	set, err := vs.RekorSignPayload(tlog.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(tle.CanonicalizedBody),
		IntegratedTime: tle.IntegratedTime,
		LogIndex:       tle.LogIndex,
		LogID:          hex.EncodeToString(tle.LogId.KeyId),
	})
	if err != nil {
		t.Fatal(err)
	}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}

	tvd := &protobundle.TimestampVerificationData{}
	for _, ts := range tsrs {
		tvd.Rfc3161Timestamps = append(tvd.Rfc3161Timestamps, &protocommon.RFC3161SignedTimestamp{SignedTimestamp: ts})
	}
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:                   &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: cert.Raw}},
			TlogEntries:               []*protorekor.TransparencyLogEntry{tle},
			TimestampVerificationData: tvd,
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload:     body,
			PayloadType: env.PayloadType,
			Signatures:  []*protodsse.Signature{{Sig: sig, Keyid: env.Signatures[0].KeyID}},
		}},
	}
	out, err := protojson.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// writeTrust writes a trusted_root.json made of the given CAs and logs and a trust.yaml
// that trusts ci@acme keyless, and loads it as the operator would.
func writeTrust(t *testing.T, fulcio *ca.VirtualSigstore, logs *ca.VirtualSigstore) *Policy {
	t.Helper()
	dir := t.TempDir()
	// No CT logs: the virtual CA issues certificates without SCTs.
	// VirtualSigstore keeps the log ID as hex text in TransparencyLog.ID; a trusted root
	// file holds the raw key ID, so convert before writing it out.
	rekor := map[string]*root.TransparencyLog{}
	for id, l := range logs.RekorLogs() {
		raw, err := hex.DecodeString(id)
		if err != nil {
			t.Fatal(err)
		}
		c := *l
		c.ID = raw
		rekor[id] = &c
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, fulcio.FulcioCertificateAuthorities(), nil, logs.TimestampingAuthorities(), rekor)
	if err != nil {
		t.Fatal(err)
	}
	trJSON, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "trusted_root.json"), trJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	trust := `signers:
  - name: acme-ci
    keyless:
      issuer: ` + ciIssuer + `
      subjectRegexp: release@acme\.example
trustedRoot: trusted_root.json
`
	if err := os.WriteFile(filepath.Join(dir, "trust.yaml"), []byte(trust), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPolicy(filepath.Join(dir, "trust.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerifySkillKeyless(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	pkg := newTestPackage(t, "http-fetch")
	payload, err := newStatement(pkg.manifest, pkg.code)
	if err != nil {
		t.Fatal(err)
	}
	trusted := writeTrust(t, vs, vs)
	// The virtual CA's leaf certificates are valid for 10 minutes from now; its own
	// tests integrate at now+5m.
	soon := time.Now().Add(5 * time.Minute)

	tests := []struct {
		name      string
		identity  string
		issuer    string
		when      time.Time
		policy    *Policy
		tamper    func([]byte) []byte
		wantCheck string
	}{
		{name: "right identity", identity: ciIdentity, issuer: ciIssuer, when: soon, policy: trusted},
		{name: "wrong SAN", identity: "mallory@acme.example", issuer: ciIssuer, when: soon, policy: trusted, wantCheck: CheckIdentity},
		{name: "SAN only contains the pattern (anchored)", identity: "release@acme.example.evil.test", issuer: ciIssuer, when: soon, policy: trusted, wantCheck: CheckIdentity},
		{name: "wrong issuer", identity: ciIdentity, issuer: "https://accounts.google.com", when: soon, policy: trusted, wantCheck: CheckIdentity},
		{name: "untrusted CA", identity: ciIdentity, issuer: ciIssuer, when: soon, policy: writeTrust(t, other, vs), wantCheck: CheckCertificate},
		{name: "signed after the certificate expired", identity: ciIdentity, issuer: ciIssuer, when: time.Now().Add(30 * time.Minute), policy: trusted, wantCheck: CheckCertificate},
		{name: "tampered signature", identity: ciIdentity, issuer: ciIssuer, when: soon, policy: trusted, tamper: flipDSSESignature(t), wantCheck: CheckTlog},
		{name: "keyless bundle, key-only policy", identity: ciIdentity, issuer: ciIssuer, when: soon, policy: pkg.policy, wantCheck: CheckIdentity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := virtualBundle(t, vs, tt.identity, tt.issuer, payload, tt.when)
			if tt.tamper != nil {
				b = tt.tamper(b)
			}
			id, err := VerifySkill(context.Background(), b, pkg.manifest, pkg.code, tt.policy)
			if tt.wantCheck == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if id.Signer != "acme-ci" || id.Subject != ciIdentity || id.Issuer != ciIssuer {
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

// flipDSSESignature flips one bit of the envelope signature. The Rekor entry records
// the original signature, so the log check is the first to notice.
func flipDSSESignature(t *testing.T) func([]byte) []byte {
	return func(in []byte) []byte {
		t.Helper()
		var pb protobundle.Bundle
		if err := protojson.Unmarshal(in, &pb); err != nil {
			t.Fatal(err)
		}
		pb.GetDsseEnvelope().Signatures[0].Sig[10] ^= 1
		out, err := protojson.Marshal(&pb)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}
