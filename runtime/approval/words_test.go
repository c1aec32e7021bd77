package approval

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/manifest"
)

// UX review A, B, C: approval and grant mistakes in the operator's words: a timestamp
// that is not one, a tab, a caller no transport could ever be, and the file named once.
func TestApprovalMistakesInPlainWords(t *testing.T) {
	dir := t.TempDir()
	approvalDoc := "skill: http-fetch\nmanifestDigest: " + digest + "\nsigner: acme-release\napprovedBy: ops\napprovedAt: yesterday\n"
	path := filepath.Join(dir, "http-fetch.yaml")
	os.WriteFile(path, []byte(approvalDoc), 0o600)
	_, err := Load(path)
	want := path + `: line 5: approvedAt: want a timestamp such as 2025-01-02T15:04:05Z, got "yesterday"`
	if err == nil || err.Error() != want {
		t.Errorf("approvedAt: yesterday: %v, want %q", err, want)
	}

	os.WriteFile(path, []byte(strings.Replace(approvalDoc, "approvedAt: yesterday\n", "grant:\n\tnetwork: []\n", 1)), 0o600)
	_, err = Load(path)
	want = path + ": line 6: indented with a tab; YAML allows only spaces for indentation"
	if err == nil || err.Error() != want {
		t.Errorf("tab: %v, want %q", err, want)
	}

	grant := filepath.Join(dir, "grant.yaml")
	os.WriteFile(grant, []byte(`callers: ["bob", "unix:uid=1000", "token:agent", "cert:ci", "tls:anonymous", "unix:1000", "token:", "tls:bob"]`+"\n"), 0o600)
	_, err = LoadGrant(grant)
	for _, w := range []string{
		`callers[0]: "bob" is not a caller identity; write unix:uid=N, cert:NAME, token:NAME or tls:anonymous`,
		`callers[5]: "unix:1000" is not a caller identity`,
		`callers[6]: "token:" is not a caller identity`,
		`callers[7]: "tls:bob" is not a caller identity`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("grant callers: %v, want %q", err, w)
		}
	}
	for _, ok := range []string{"callers[1]", "callers[2]", "callers[3]", "callers[4]"} {
		if err != nil && strings.Contains(err.Error(), ok+":") {
			t.Errorf("grant callers: %v refuses %s", err, ok)
		}
	}

	for _, e := range []error{err} {
		for _, bad := range []string{"parsing time", "2006-01-02T15:04:05Z07:00", "cannot parse", "approval " + dir, "cannot start any token"} {
			if e != nil && strings.Contains(e.Error(), bad) {
				t.Errorf("%v holds %q", e, bad)
			}
		}
	}
}

// The grant's words: cpu only where there is a CPU budget (a container), and what the
// grant left out of the manifest's ask, including write access narrowed to read.
func TestGrantWordsCPUAndLeftOut(t *testing.T) {
	m := testManifest(t)
	g := Grant{Network: m.Capabilities.Network[:1], Files: []File{{Path: "/scratch", Host: "/srv/s", Access: manifest.AccessRead}},
		Env: map[string]string{"LANG": "C"}}
	words := strings.Join(g.Words(m), "\n")
	if strings.Contains(words, "cpu") {
		t.Errorf("wasm grant shows cpu:\n%s", words)
	}
	if want := "left out: network https://*.wikipedia.org, file /data, write access to /scratch, secret API_TOKEN"; !strings.Contains(words, want) {
		t.Errorf("words lack %q:\n%s", want, words)
	}
	cm, err := manifest.Parse([]byte(strings.Replace(skillYAML, "  wasm:\n    module: module.wasm\n    sha256: 9f2c000000000000000000000000000000000000000000000000000000000000\n",
		"  container:\n    image: image.tar\n    id: sha256:9f2c000000000000000000000000000000000000000000000000000000000000\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if words := strings.Join(g.Words(cm), "\n"); !strings.Contains(words, ", cpu 1,") {
		t.Errorf("container grant lacks its cpu budget:\n%s", words)
	}
}
