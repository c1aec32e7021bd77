package replica

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/approval"
)

// TestRelayedEntriesChecked: an entry that is malformed, would allow the whole file
// system or environment, or overlaps the server's home is refused, naming its flag.
func TestRelayedEntriesChecked(t *testing.T) {
	for _, tc := range []struct {
		r    Relayed
		want string // "" = accepted
	}{
		{Relayed{SecretSources: []string{"env:SKILLBOX_SECRET_*", "env:API_TOKEN", "file:/etc/skillbox/secrets/", "file:/run/token"},
			HostDirs: []string{"/srv/skills", "/srv/data/"}}, ""},
		{Relayed{SecretSources: []string{" ", ""}}, ""},
		{Relayed{SecretSources: []string{"file:/"}}, `--kube-relayed-secret-sources "file:/": the root directory`},
		{Relayed{SecretSources: []string{"file://"}}, `--kube-relayed-secret-sources "file://": the root directory`},
		{Relayed{HostDirs: []string{"//"}}, `--kube-relayed-host-dirs "//": the root directory`},
		{Relayed{SecretSources: []string{"file:/etc/skillbox/../"}}, "absolute, clean path"},
		{Relayed{SecretSources: []string{"file:/etc/skillbox/secrets/../../"}}, "absolute, clean path"},
		{Relayed{SecretSources: []string{"file:/etc//skillbox/"}}, "absolute, clean path"},
		{Relayed{SecretSources: []string{"file:etc/skillbox/"}}, "absolute, clean path"},
		{Relayed{SecretSources: []string{"file:/etc/skillbox/*"}}, "no wildcards"},
		{Relayed{SecretSources: []string{"env:*"}}, "a prefix must not be empty"},
		{Relayed{SecretSources: []string{"env:"}}, "want env:NAME or env:PREFIX*"},
		{Relayed{SecretSources: []string{"env:A*B"}}, "'*' only ends a prefix"},
		{Relayed{SecretSources: []string{"vault:x"}}, "want env:NAME, env:PREFIX*, file:/abs/file or file:/abs/dir/"},
		{Relayed{HostDirs: []string{"/"}}, `--kube-relayed-host-dirs "/": the root directory`},
		{Relayed{HostDirs: []string{"/srv/skills/../.."}}, "absolute, clean directory"},
		{Relayed{HostDirs: []string{"srv"}}, "absolute, clean directory"},
	} {
		err := tc.r.Check()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.r, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: %v, want %q", tc.r, err, tc.want)
		}
	}
	// The server's home (approvals/, trust.yaml, native code) is never allowed, nor
	// anything holding it.
	for _, r := range []Relayed{
		{SecretSources: []string{"file:/home/skillbox/"}},
		{SecretSources: []string{"file:/home/skillbox/trust.yaml"}},
		{SecretSources: []string{"file:/home/"}},
		{HostDirs: []string{"/home/skillbox/cache"}},
		{HostDirs: []string{"/home"}},
	} {
		if _, err := r.compile("/home/skillbox"); err == nil || !strings.Contains(err.Error(), "overlaps the server's home /home/skillbox") {
			t.Errorf("%+v with home /home/skillbox: %v", r, err)
		}
	}
	if _, err := (Relayed{SecretSources: []string{"file:/home/skillbox-secrets/"}, HostDirs: []string{"/home/skillbox2"}}).compile("/home/skillbox"); err != nil {
		t.Errorf("a sibling of the home: %v", err)
	}
}

// TestRelayedMatching: which sources and host directories an approval from the
// cluster may name. Prefixes end at a path separator, paths are matched only when
// clean (a path with .. matches nothing, even where its text starts with an allowed
// directory), an env prefix is a prefix of the variable's name.
func TestRelayedMatching(t *testing.T) {
	rr, err := Relayed{
		SecretSources: []string{"env:SKILLBOX_SECRET_*", "env:API_TOKEN", "file:/etc/skillbox/secrets/", "file:/run/token"},
		HostDirs:      []string{"/srv/skills", "/data/"},
	}.compile("/home/skillbox")
	if err != nil {
		t.Fatal(err)
	}
	for src, want := range map[string]bool{
		"env:SKILLBOX_SECRET_GH":                  true,
		"env:SKILLBOX_SECRET_":                    true,
		"env:API_TOKEN":                           true,
		"env:API_TOKEN_2":                         false,
		"env:SKILLBOX_SECRE":                      false,
		"env:HOME":                                false,
		"env:":                                    false,
		"file:/etc/skillbox/secrets/gh":           true,
		"file:/etc/skillbox/secrets/a/b/c":        true,
		"file:/etc/skillbox/secrets/..data/token": true, // a Secret volume's own layout: a name, not ..
		"file:/etc/skillbox/secrets":              false,
		"file:/etc/skillbox/secrets-old/gh":       false,
		"file:/etc/skillbox/secrets/../../../var/run/secrets/kubernetes.io/serviceaccount/token": false,
		"file:/etc/skillbox/secrets/./gh": false,
		"file:/etc/skillbox/secrets//gh":  false,
		"file:/run/token":                 true,
		"file:/run/token2":                false,
		"file:/run/token/x":               false,
		"file:/var/run/secrets/kubernetes.io/serviceaccount/token": false,
		"file:etc/skillbox/secrets/gh":                             false,
		"vault:/etc/skillbox/secrets/gh":                           false,
	} {
		if got := rr.source(src); got != want {
			t.Errorf("source %s: allowed %v, want %v", src, got, want)
		}
	}
	for dir, want := range map[string]bool{
		"/srv/skills":             true,
		"/srv/skills/a":           true,
		"/data":                   true,
		"/data/x/y":               true,
		"/srv/skills-other":       false,
		"/srv":                    false,
		"/srv/skills/../../home":  false,
		"/srv/skills/../skillbox": false,
		"/home/skillbox":          false,
		"/":                       false,
		"srv/skills":              false,
	} {
		if got := rr.hostDir(dir); got != want {
			t.Errorf("host dir %s: allowed %v, want %v", dir, got, want)
		}
	}
}

// TestRelayedOwnBinding: with nothing allowed, a relayed approval may still name what
// this replica's own approval of the skill binds the same way: the same secret from the
// same source, the same guest path on the same host directory with no more access.
func TestRelayedOwnBinding(t *testing.T) {
	rr, err := Relayed{}.compile("/home/skillbox")
	if err != nil {
		t.Fatal(err)
	}
	own := &approval.Approval{Skill: "s", Grant: approval.Grant{
		Secrets: map[string]string{"TOKEN": "file:/run/own/token", "KEY": "env:OWN_KEY"},
		Files:   []approval.File{{Path: "/data", Host: "/srv/own", Access: manifest.AccessReadWrite}, {Path: "/ro", Host: "/srv/ro", Access: manifest.AccessRead}},
	}}
	for _, tc := range []struct {
		name string
		g    approval.Grant
		want []string // substrings of the refusals, in order; none = taken
	}{
		{"the same", own.Grant, nil},
		{"fewer", approval.Grant{Secrets: map[string]string{"TOKEN": "file:/run/own/token"}}, nil},
		{"read where own has read-write", approval.Grant{Files: []approval.File{{Path: "/data", Host: "/srv/own", Access: manifest.AccessRead}}}, nil},
		{"no secret, no file", approval.Grant{Env: map[string]string{"LANG": "C"}}, nil},
		{"another source", approval.Grant{Secrets: map[string]string{"TOKEN": "file:/var/run/secrets/kubernetes.io/serviceaccount/token"}},
			[]string{"grant.secrets.TOKEN: source file:/var/run/secrets/kubernetes.io/serviceaccount/token is not allowed (--kube-relayed-secret-sources: none)"}},
		{"own source under another name", approval.Grant{Secrets: map[string]string{"KEY": "file:/run/own/token"}}, []string{"grant.secrets.KEY: source file:/run/own/token"}},
		{"another host", approval.Grant{Files: []approval.File{{Path: "/data", Host: "/home/skillbox", Access: manifest.AccessReadWrite}}},
			[]string{"grant.files[0].host: /home/skillbox (for /data) is not allowed (--kube-relayed-host-dirs: none)"}},
		{"read-write where own has read", approval.Grant{Files: []approval.File{{Path: "/ro", Host: "/srv/ro", Access: manifest.AccessReadWrite}}}, []string{"grant.files[0].host: /srv/ro (for /ro)"}},
		{"own host at another guest path", approval.Grant{Files: []approval.File{{Path: "/ro", Host: "/srv/own", Access: manifest.AccessRead}}}, []string{"grant.files[0].host: /srv/own (for /ro)"}},
		{"both", approval.Grant{Secrets: map[string]string{"TOKEN": "env:HOME"}, Files: []approval.File{{Path: "/data", Host: "/", Access: manifest.AccessRead}}},
			[]string{"grant.secrets.TOKEN", "grant.files[0].host: / "}},
	} {
		got := rr.refusals(&approval.Approval{Skill: "s", Grant: tc.g}, own)
		if len(got) != len(tc.want) {
			t.Errorf("%s: refusals %q, want %d", tc.name, got, len(tc.want))
			continue
		}
		for i := range got {
			if !strings.Contains(got[i], tc.want[i]) {
				t.Errorf("%s: refusal %q, want %q", tc.name, got[i], tc.want[i])
			}
		}
	}
	// Without an own approval, the same grant is refused.
	if got := rr.refusals(&approval.Approval{Skill: "s", Grant: own.Grant}, nil); len(got) != 4 {
		t.Errorf("without an own approval: %q, want all four refused", got)
	}
}

// TestWriteApprovalKeepsLoadError: an approval from the cluster that does not load is
// refused with Load's problem (its chain kept, so a caller can tell a grant's problems
// apart), never the temporary file's name, and nothing is written.
func TestWriteApprovalKeepsLoadError(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/echo.yaml"
	rr, err := Relayed{}.compile("")
	if err != nil {
		t.Fatal(err)
	}
	err = writeApproval(path, "echo", []byte("skill: echo\nmanifestDigest: nope\nsigner: x\n"), rr)
	var ge *approval.GrantError
	if !errors.As(err, &ge) {
		t.Fatalf("error %v (%T) does not keep the grant's problems", err, err)
	}
	if strings.Contains(err.Error(), ".replica-") || !strings.Contains(err.Error(), "manifestDigest") {
		t.Fatalf("error %q: want the problem without the temporary file", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left %v", entries)
	}
}
