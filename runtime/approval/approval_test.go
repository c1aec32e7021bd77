package approval

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

const skillYAML = `apiVersion: skillbox/v1
name: http-fetch
version: 1.2.0
description: Fetch a web page.
sandbox:
  wasm:
    module: module.wasm
    sha256: 9f2c000000000000000000000000000000000000000000000000000000000000
input: {type: object}
output: {type: object}
capabilities:
  network:
    - https://api.example.com
    - https://*.wikipedia.org
  files:
    - path: /data
      access: read
    - path: /scratch
      access: read-write
  env: [LANG]
  secrets: [API_TOKEN]
limits:
  timeout: 10s
  memory: 64MiB
  output: 1MiB
  cpu: 1
  requests: 20
`

const digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

func testManifest(t *testing.T) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Parse([]byte(skillYAML))
	if err != nil {
		t.Fatalf("test manifest: %v", err)
	}
	return m
}

func origin(t *testing.T, s string) manifest.Origin {
	t.Helper()
	o, err := manifest.ParseOrigin(s)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func goodApproval(t *testing.T) *Approval {
	dir := t.TempDir()
	return &Approval{
		Skill: "http-fetch", ManifestDigest: digest, Signer: "acme-release",
		ApprovedBy: "ops@example.com", ApprovedAt: time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC),
		Grant: Grant{
			Network: []manifest.Origin{origin(t, "https://api.example.com")},
			Files:   []File{{Path: "/data", Host: dir, Access: manifest.AccessRead}},
			Env:     map[string]string{"LANG": "en_GB.UTF-8"},
			Secrets: map[string]string{"API_TOKEN": "env:SKILLBOX_TEST_TOKEN"},
			Limits:  manifest.Limits{Timeout: manifest.Duration(5 * time.Second)},
		},
	}
}

func TestCheck(t *testing.T) {
	m := testManifest(t)
	cases := []struct {
		name    string
		edit    func(a *Approval)
		digest  string
		wantErr string // substring; "" = accepted
		notAppr bool
	}{
		{name: "as approved", edit: func(*Approval) {}},
		{name: "everything asked", edit: func(a *Approval) {
			a.Grant = Ask(m)
			a.Grant.Files[0].Host, a.Grant.Files[1].Host = "/srv/data", "/srv/scratch"
		}},
		{name: "nothing granted", edit: func(a *Approval) { a.Grant = Grant{} }},
		{name: "read where read-write asked", edit: func(a *Approval) {
			a.Grant.Files = append(a.Grant.Files, File{Path: "/scratch", Host: "/tmp", Access: manifest.AccessRead})
		}},
		{name: "origin not asked", edit: func(a *Approval) {
			a.Grant.Network = append(a.Grant.Network, origin(t, "https://evil.example"))
		}, wantErr: `grant.network[1]: "https://evil.example" is not asked for`},
		{name: "wildcard wider than asked host", edit: func(a *Approval) {
			a.Grant.Network = []manifest.Origin{origin(t, "https://*.example.com")}
		}, wantErr: `grant.network[0]: "https://*.example.com" is not asked for`},
		{name: "other port", edit: func(a *Approval) {
			a.Grant.Network = []manifest.Origin{origin(t, "https://api.example.com:8443")}
		}, wantErr: `grant.network[0]`},
		{name: "read-write where read asked", edit: func(a *Approval) { a.Grant.Files[0].Access = manifest.AccessReadWrite },
			wantErr: "grant.files[0].access: read-write, but the manifest asks only read"},
		{name: "file path not asked", edit: func(a *Approval) { a.Grant.Files[0].Path = "/etc" },
			wantErr: `grant.files[0].path: "/etc" is not asked for`},
		{name: "relative host", edit: func(a *Approval) { a.Grant.Files[0].Host = "data" },
			wantErr: "grant.files[0].host"},
		{name: "env not asked", edit: func(a *Approval) { a.Grant.Env["HOME"] = "/root" },
			wantErr: "grant.env.HOME: HOME is not asked for"},
		{name: "secret not asked", edit: func(a *Approval) { a.Grant.Secrets["AWS_KEY"] = "env:AWS_KEY" },
			wantErr: "grant.secrets.AWS_KEY: AWS_KEY is not asked for"},
		{name: "bad secret source", edit: func(a *Approval) { a.Grant.Secrets["API_TOKEN"] = "vault:x" },
			wantErr: "grant.secrets.API_TOKEN: \"vault:x\": want env:VAR or file:/abs/path"},
		{name: "timeout raised", edit: func(a *Approval) { a.Grant.Limits.Timeout = manifest.Duration(time.Minute) },
			wantErr: "grant.limits.timeout: 1m is more than the manifest's 10s"},
		{name: "memory raised", edit: func(a *Approval) { a.Grant.Limits.Memory = 128 << 20 },
			wantErr: "grant.limits.memory: 128MiB is more than the manifest's 64MiB"},
		{name: "requests raised", edit: func(a *Approval) { a.Grant.Limits.Requests = 21 },
			wantErr: "grant.limits.requests"},
		{name: "cpu raised", edit: func(a *Approval) { a.Grant.Limits.CPU = 2 }, wantErr: "grant.limits.cpu"},
		{name: "output raised", edit: func(a *Approval) { a.Grant.Limits.Output = 2 << 20 }, wantErr: "grant.limits.output"},
		{name: "negative limit", edit: func(a *Approval) { a.Grant.Limits.Memory = -1 }, wantErr: "grant.limits.memory: must not be negative"},
		{name: "new version", edit: func(*Approval) {}, digest: "sha256:2222222222222222222222222222222222222222222222222222222222222222",
			wantErr: "is not approved", notAppr: true},
		{name: "other skill", edit: func(a *Approval) { a.Skill = "other" }, wantErr: "not \"http-fetch\"", notAppr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := goodApproval(t)
			tc.edit(a)
			d := digest
			if tc.digest != "" {
				d = tc.digest
			}
			err := Check(m, d, a)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if got := errors.Is(err, ErrNotApproved); got != tc.notAppr {
				t.Errorf("errors.Is(err, ErrNotApproved) = %v", got)
			}
		})
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	a := goodApproval(t)
	path := Path(t.TempDir(), "http-fetch")
	if err := Save(path, a); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("stat %v mode %v", err, st.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
	b, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if b.ManifestDigest != a.ManifestDigest || !b.ApprovedAt.Equal(a.ApprovedAt) || b.Grant.Network[0] != a.Grant.Network[0] ||
		b.Grant.Files[0] != a.Grant.Files[0] || b.Grant.Secrets["API_TOKEN"] != "env:SKILLBOX_TEST_TOKEN" ||
		b.Grant.Limits.Timeout != a.Grant.Limits.Timeout {
		t.Fatalf("round trip changed the approval:\n%+v\n%+v", a, b)
	}
	if err := Check(testManifest(t), digest, b); err != nil {
		t.Fatalf("reloaded approval refused: %v", err)
	}
	// Save over an existing file replaces it.
	a.ApprovedBy = "someone-else"
	if err := Save(path, a); err != nil {
		t.Fatal(err)
	}
	if b, _ = Load(path); b.ApprovedBy != "someone-else" {
		t.Fatalf("second save not visible: %q", b.ApprovedBy)
	}
}

func TestLoadStrict(t *testing.T) {
	good := `skill: http-fetch
manifestDigest: ` + digest + `
signer: acme-release
approvedBy: ops
approvedAt: 2026-11-25T04:00:00Z
grant:
  network: [https://api.example.com]
`
	cases := map[string]struct{ content, want string }{
		"unknown top field":   {good + "extra: 1\n", `line 8: unknown field "extra" (allowed: skill, manifestDigest, signer, approvedBy, approvedAt, grant)`},
		"unknown grant field": {strings.Replace(good, "grant:\n", "grant:\n  sudo: true\n", 1), `line 7: grant: unknown field "sudo" (allowed: network, files, env, secrets, secretOrigins, limits, callers, oversight)`},
		"bad origin":          {strings.Replace(good, "https://api.example.com", "ftp://x", 1), "scheme must be http or https"},
		"bad digest":          {strings.Replace(good, digest, "sha256:abc", 1), "manifestDigest"},
		"duplicate key":       {good + "signer: other\n", "line 8: signer: duplicate key (first at line 3)"},
		"two documents":       {good + "---\nskill: x\n", "more than one YAML document"},
		"empty":               {"", "empty file"},
		"missing signer":      {strings.Replace(good, "signer: acme-release\n", "", 1), "signer: required"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "a.yaml")
			os.WriteFile(p, []byte(tc.content), 0o600)
			_, err := Load(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v, want %q", err, tc.want)
			}
		})
	}
	p := filepath.Join(t.TempDir(), "a.yaml")
	os.WriteFile(p, []byte(good), 0o600)
	if _, err := Load(p); err != nil {
		t.Fatalf("good approval refused: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, ErrNotApproved) {
		t.Fatalf("missing approval: %v, want ErrNotApproved", err)
	}
}

func TestLoadGrant(t *testing.T) {
	p := filepath.Join(t.TempDir(), "grant.yaml")
	os.WriteFile(p, []byte(`network: ["https://*.wikipedia.org"]
files:
  - {path: /data, host: /srv/data, access: read}
secrets: {API_TOKEN: "file:/run/secrets/token"}
limits: {timeout: 2s, memory: 16MiB}
callers: [token:agent-1]
`), 0o600)
	g, err := LoadGrant(p)
	if err != nil {
		t.Fatal(err)
	}
	if g.Network[0].String() != "https://*.wikipedia.org" || g.Limits.Memory != 16<<20 || g.Callers[0] != "token:agent-1" {
		t.Fatalf("grant = %+v", g)
	}
	if err := CheckGrant(testManifest(t), g, ""); err != nil {
		t.Fatalf("grant refused: %v", err)
	}
	os.WriteFile(p, []byte("manifestDigest: "+digest+"\n"), 0o600)
	if _, err := LoadGrant(p); err == nil {
		t.Fatal("grant file with pins accepted")
	}
}

func TestEffective(t *testing.T) {
	m := testManifest(t)
	a := goodApproval(t)
	t.Setenv("SKILLBOX_TEST_TOKEN", "s3cret")
	lim, g, err := Effective(m, a, manifest.Limits{Memory: 32 << 20, Timeout: manifest.Duration(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	want := isolation.Limits{Timeout: 5 * time.Second, Memory: 32 << 20, Output: 1 << 20, Logs: LogsCap, CPU: 1, Requests: 20, Response: 8 << 20}
	if lim != want {
		t.Fatalf("limits = %+v, want %+v", lim, want)
	}
	if g.Env["API_TOKEN"] != "s3cret" || g.Env["LANG"] != "en_GB.UTF-8" || len(g.Env) != 2 {
		t.Fatalf("env = %v", g.Env)
	}
	if len(g.Network) != 1 || len(g.Files) != 1 || g.Files[0].Guest != "/data" || g.Files[0].Access != manifest.AccessRead {
		t.Fatalf("grant = %+v", g)
	}
	// The approval's grant is not aliased by the result.
	g.Network[0] = origin(t, "https://evil.example")
	if a.Grant.Network[0].String() != "https://api.example.com" {
		t.Fatal("Effective aliased the approval's origins")
	}

	// Secret from a file, trailing newline dropped.
	sf := filepath.Join(t.TempDir(), "token")
	os.WriteFile(sf, []byte("from-file\n"), 0o600)
	a.Grant.Secrets["API_TOKEN"] = "file:" + sf
	if _, g, err = Effective(m, a, manifest.Limits{}); err != nil || g.Env["API_TOKEN"] != "from-file" {
		t.Fatalf("file secret: %q %v", g.Env["API_TOKEN"], err)
	}

	// No network granted: no requests either, whatever the manifest says.
	a.Grant.Network = nil
	if lim, _, _ = Effective(m, a, manifest.Limits{}); lim.Requests != 0 {
		t.Fatalf("requests without network = %d", lim.Requests)
	}
}

func TestEffectiveMissingSources(t *testing.T) {
	m := testManifest(t)
	cases := map[string]struct {
		edit func(a *Approval)
		want string
	}{
		"env var unset":   {func(a *Approval) { a.Grant.Secrets["API_TOKEN"] = "env:SKILLBOX_TEST_UNSET_VAR" }, "secret API_TOKEN: source env:SKILLBOX_TEST_UNSET_VAR: the runtime's environment has no SKILLBOX_TEST_UNSET_VAR"},
		"file missing":    {func(a *Approval) { a.Grant.Secrets["API_TOKEN"] = "file:/nonexistent/token" }, "secret API_TOKEN: source file:/nonexistent/token"},
		"host dir absent": {func(a *Approval) { a.Grant.Files[0].Host = "/nonexistent/dir" }, "grant.files[0]: host directory for /data"},
		"host is a file": {func(a *Approval) {
			f := filepath.Join(t.TempDir(), "f")
			os.WriteFile(f, nil, 0o600)
			a.Grant.Files[0].Host = f
		}, "is not a directory"},
	}
	os.Unsetenv("SKILLBOX_TEST_UNSET_VAR")
	t.Setenv("SKILLBOX_TEST_TOKEN", "x")
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a := goodApproval(t)
			tc.edit(a)
			_, _, err := Effective(m, a, manifest.Limits{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestEffectiveLimits(t *testing.T) {
	m := manifest.Limits{Timeout: manifest.Duration(10 * time.Second), Memory: 64 << 20, Output: 1 << 20, CPU: 2, Requests: 20}
	cases := []struct {
		name          string
		grant, caller manifest.Limits
		want          isolation.Limits
	}{
		{"manifest only", manifest.Limits{}, manifest.Limits{},
			isolation.Limits{Timeout: 10 * time.Second, Memory: 64 << 20, Output: 1 << 20, CPU: 2, Requests: 20, Logs: LogsCap, Response: ResponseCap}},
		{"caller lowers, cannot raise", manifest.Limits{Output: 512 << 10}, manifest.Limits{Timeout: manifest.Duration(time.Hour), Memory: 4 << 20, CPU: 0.5, Requests: 3},
			isolation.Limits{Timeout: 10 * time.Second, Memory: 4 << 20, Output: 512 << 10, CPU: 0.5, Requests: 3, Logs: LogsCap, Response: 4 << 20}},
		{"grant lower than caller", manifest.Limits{Timeout: manifest.Duration(time.Second), CPU: 1}, manifest.Limits{Timeout: manifest.Duration(2 * time.Second), CPU: 1.5},
			isolation.Limits{Timeout: time.Second, Memory: 64 << 20, Output: 1 << 20, CPU: 1, Requests: 20, Logs: LogsCap, Response: ResponseCap}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := EffectiveLimits(m, tc.grant, tc.caller); got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestCheckCaller(t *testing.T) {
	a := goodApproval(t)
	if err := CheckCaller(a, "anyone"); err != nil {
		t.Fatalf("empty callers refused: %v", err)
	}
	a.Grant.Callers = []string{"agent-1", "uid:1000"}
	if err := CheckCaller(a, "uid:1000"); err != nil {
		t.Fatal(err)
	}
	if err := CheckCaller(a, "agent-2"); !errors.Is(err, ErrCallerNotAllowed) {
		t.Fatalf("agent-2: %v", err)
	}
}

func TestCheckSigner(t *testing.T) {
	a := goodApproval(t)
	if err := CheckSigner(a, "acme-release"); err != nil {
		t.Fatal(err)
	}
	if err := CheckSigner(a, "acme-ci"); !errors.Is(err, ErrNotApproved) {
		t.Fatalf("other signer: %v", err)
	}
}
