package signing

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Finding 14: trust.yaml mistakes are named by file, line, field path and what is
// allowed; no Go type name ("signing.trustFileSigner") reaches the operator.
func TestPolicyErrorsNameNoGoTypes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "trust.yaml")
	for _, tc := range []struct{ doc, want string }{
		{"signers:\n  - nmae: acme\n    key: k.pub\n", `trust.yaml: line 2: signers[0]: unknown field "nmae" (allowed: name, key, keyless)`},
		{"signers:\n  - name: acme\n    keyless: {issuer: i, subject: s}\n", `line 3: signers[0].keyless: unknown field "subject" (allowed: issuer, subjectRegexp)`},
		{"signers: acme\n", "line 1: signers: want a list, got a string"},
		{"signers:\n  - name: [acme]\n", "line 2: signers[0].name: want a string, got a list"},
		{"signers:\n  - name: acme\n    keyless: yes\n", "line 3: signers[0].keyless: want a mapping, got a string"},
		{"trustedRoot: {path: x}\n", "line 1: trustedRoot: want a string, got a mapping"},
		{"signers: []\nsigners: []\n", "line 2: signers: duplicate key (first at line 1)"},
		{"signers: [\n", "trust.yaml: line 1: did not find expected node content"},
	} {
		os.WriteFile(path, []byte(tc.doc), 0o600)
		_, err := LoadPolicy(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.doc, err, tc.want)
			continue
		}
		for _, bad := range []string{"signing.", "trustFile", "struct", "[]string", "*struct", "not found in type", "!!", "unmarshal"} {
			if strings.Contains(err.Error(), bad) {
				t.Errorf("%q: %v holds %q", tc.doc, err, bad)
			}
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error spans lines: %q", tc.doc, err)
		}
	}
}
