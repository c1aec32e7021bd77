package signing

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadPolicy(t *testing.T) {
	dir := t.TempDir()
	_, pub, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keys", "acme.pub"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "trusted_root.json"), PublicGoodTrustedRoot(), 0o600); err != nil {
		t.Fatal(err)
	}
	const good = `signers:
  - name: acme-release
    key: keys/acme.pub
  - name: acme-ci
    keyless:
      issuer: https://token.actions.githubusercontent.com
      subjectRegexp: ^https://github\.com/acme/skills/\.github/workflows/release\.yml@refs/tags/v.*$
trustedRoot: trusted_root.json
`
	tests := []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{"spec example", good, ""},
		{"unknown field", good + "extra: 1\n", `trust.yaml: line 9: unknown field "extra" (allowed: signers, trustedRoot)`},
		{"unknown signer field", strings.Replace(good, "key: keys/acme.pub", "key: keys/acme.pub\n    comment: x", 1), `trust.yaml: line 4: signers[0]: unknown field "comment" (allowed: name, key, keyless)`},
		{"keyless without issuer", strings.Replace(good, "      issuer: https://token.actions.githubusercontent.com\n", "", 1), "issuer: required"},
		{"keyless without subjectRegexp", strings.Replace(good, "      subjectRegexp:", "      #", 1), "subjectRegexp: required"},
		{"keyless without trustedRoot", strings.Replace(good, "trustedRoot: trusted_root.json\n", "", 1), "trustedRoot: required"},
		{"missing key file", strings.Replace(good, "keys/acme.pub", "keys/nope.pub", 1), "signers[0].key"},
		{"bad regexp", strings.Replace(good, `v.*$`, `v(.*$`, 1), "subjectRegexp"},
		{"no signers", "signers: []\n", "at least one signer"},
		{"duplicate name", strings.Replace(good, "acme-ci", "acme-release", 1), "appears twice"},
		{"key and keyless", strings.Replace(good, "    key: keys/acme.pub\n", "    key: keys/acme.pub\n    keyless: {issuer: a, subjectRegexp: b}\n", 1), "not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "trust.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			p, err := LoadPolicy(path)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := strings.Join(p.Signers(), ","); got != "acme-release,acme-ci" {
					t.Fatalf("signers %q", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestSubjectRegexpIsAnchored(t *testing.T) {
	id, err := newTrustedIdentity("ci", "https://issuer", `https://github\.com/acme/`)
	if err != nil {
		t.Fatal(err)
	}
	for san, want := range map[string]bool{
		"https://github.com/acme/":                    true,
		"https://github.com/acme/skills/x.yml":        false,
		"evil https://github.com/acme/":               false,
		"https://github.com/acme/\nhttps://other.com": false,
	} {
		if got := id.matches("https://issuer", san); got != want {
			t.Errorf("%q: match %v, want %v", san, got, want)
		}
	}
	if id.matches("https://issuer.evil", "https://github.com/acme/") {
		t.Error("issuer must match exactly")
	}
}
