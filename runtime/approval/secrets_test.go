package approval

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// brokeredManifest asks for a plain secret and a brokered one sent to two origins.
func brokeredManifest(t *testing.T) *manifest.Manifest {
	t.Helper()
	doc := strings.Replace(skillYAML, "  secrets: [API_TOKEN]\n", `  secrets:
    - API_TOKEN
    - name: GH_TOKEN
      origins: [https://api.example.com, "https://*.wikipedia.org"]
      format: "Bearer {}"
`, 1)
	m, err := manifest.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCheckSecretOrigins(t *testing.T) {
	m := brokeredManifest(t)
	for _, tc := range []struct {
		name    string
		origins map[string][]manifest.Origin
		want    string // "" for accepted
	}{
		{"narrowed", map[string][]manifest.Origin{"GH_TOKEN": {origin(t, "https://api.example.com")}}, ""},
		{"all listed", map[string][]manifest.Origin{"GH_TOKEN": {origin(t, "https://*.wikipedia.org"), origin(t, "https://api.example.com")}}, ""},
		{"widened", map[string][]manifest.Origin{"GH_TOKEN": {origin(t, "https://api.example.com"), origin(t, "https://evil.example")}},
			`grant.secretOrigins.GH_TOKEN[1]: "https://evil.example" is not among the origins the manifest lists for GH_TOKEN (https://api.example.com, https://*.wikipedia.org): a grant may narrow a secret's origins, never widen them`},
		{"a host under the wildcard is still a widening", map[string][]manifest.Origin{"GH_TOKEN": {origin(t, "https://en.wikipedia.org")}},
			`grant.secretOrigins.GH_TOKEN[0]: "https://en.wikipedia.org" is not among the origins the manifest lists for GH_TOKEN`},
		{"plain secret", map[string][]manifest.Origin{"API_TOKEN": {origin(t, "https://api.example.com")}},
			"grant.secretOrigins.API_TOKEN: API_TOKEN is handed to the skill, not brokered, so it has no origins to narrow"},
		{"unknown", map[string][]manifest.Origin{"NOPE": {origin(t, "https://api.example.com")}},
			"grant.secretOrigins.NOPE: NOPE is not a brokered secret of the manifest"},
		{"empty", map[string][]manifest.Origin{"GH_TOKEN": {}},
			"grant.secretOrigins.GH_TOKEN: lists no origin; to send GH_TOKEN nowhere, leave it out of secrets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := goodApproval(t)
			a.Grant.Secrets["GH_TOKEN"] = "env:SKILLBOX_TEST_GH"
			a.Grant.SecretOrigins = tc.origins
			err := Check(m, digest, a)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ge *GrantError
			if !errors.As(err, &ge) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	// A grant file (no pins) names the field without the "grant." prefix.
	g := goodApproval(t).Grant
	g.SecretOrigins = map[string][]manifest.Origin{"GH_TOKEN": {origin(t, "https://evil.example")}}
	if err := CheckGrant(m, g, ""); err == nil || !strings.HasPrefix(err.Error(), `secretOrigins.GH_TOKEN[0]: "https://evil.example" is not among`) {
		t.Fatalf("grant file: %v", err)
	}
}

func TestEffectiveBrokered(t *testing.T) {
	m := brokeredManifest(t)
	a := goodApproval(t)
	a.Grant.Network = []manifest.Origin{origin(t, "https://api.example.com"), origin(t, "https://*.wikipedia.org")}
	a.Grant.Secrets["GH_TOKEN"] = "env:SKILLBOX_TEST_GH"
	t.Setenv("SKILLBOX_TEST_TOKEN", "plain-value")
	t.Setenv("SKILLBOX_TEST_GH", "gh-value")
	_, g, err := Effective(m, a, manifest.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g.Env["GH_TOKEN"]; ok {
		t.Fatal("a brokered secret went into the skill's env")
	}
	for k, v := range g.Env {
		if strings.Contains(v, "gh-value") {
			t.Fatalf("env %s holds the brokered value", k)
		}
	}
	if g.Env["API_TOKEN"] != "plain-value" {
		t.Fatalf("plain secret: env = %v", g.Env)
	}
	want := []isolation.BrokeredSecret{{Name: "GH_TOKEN", Origins: a.Grant.Network, Header: "Authorization", Value: "Bearer gh-value", Secret: "gh-value"}}
	if !reflect.DeepEqual(g.Brokered, want) {
		t.Fatalf("brokered = %+v\nwant %+v", g.Brokered, want)
	}

	// Narrowed by the grant; and never to an origin the network grant leaves out.
	a.Grant.SecretOrigins = map[string][]manifest.Origin{"GH_TOKEN": {origin(t, "https://*.wikipedia.org")}}
	if _, g, err = Effective(m, a, manifest.Limits{}); err != nil || len(g.Brokered) != 1 ||
		!reflect.DeepEqual(g.Brokered[0].Origins, []manifest.Origin{origin(t, "https://*.wikipedia.org")}) {
		t.Fatalf("narrowed: %+v %v", g.Brokered, err)
	}
	a.Grant.SecretOrigins = nil
	a.Grant.Network = []manifest.Origin{origin(t, "https://api.example.com")}
	if _, g, err = Effective(m, a, manifest.Limits{}); err != nil || len(g.Brokered) != 1 ||
		!reflect.DeepEqual(g.Brokered[0].Origins, []manifest.Origin{origin(t, "https://api.example.com")}) {
		t.Fatalf("network narrowed: %+v %v", g.Brokered, err)
	}
}

// A value that could add a header of its own is refused when the call starts, with
// an error that names the secret and never quotes the value.
func TestEffectiveBrokeredHeaderInjection(t *testing.T) {
	m := brokeredManifest(t)
	for name, value := range map[string]string{
		"LF":   "abc\nX-Evil: 1",
		"CR":   "abc\rX-Evil: 1",
		"CRLF": "abc\r\nX-Evil: 1",
		"NUL":  "abc\x00def",
	} {
		t.Run(name, func(t *testing.T) {
			a := goodApproval(t)
			f := filepath.Join(t.TempDir(), "gh")
			// A file source keeps inner line breaks (only one trailing newline is dropped).
			if err := os.WriteFile(f, []byte(value), 0o600); err != nil {
				t.Fatal(err)
			}
			a.Grant.Secrets["GH_TOKEN"] = "file:" + f
			t.Setenv("SKILLBOX_TEST_TOKEN", "plain")
			_, _, err := Effective(m, a, manifest.Limits{})
			want := "secret GH_TOKEN: the value contains a line break or NUL byte; a brokered secret is sent in an HTTP header and must be one line"
			if err == nil || err.Error() != want {
				t.Fatalf("got %v, want %q", err, want)
			}
			if strings.Contains(err.Error(), "abc") {
				t.Fatal("the error quotes the value")
			}
		})
	}
	a := goodApproval(t)
	a.Grant.Secrets["GH_TOKEN"] = "env:SKILLBOX_TEST_GH"
	t.Setenv("SKILLBOX_TEST_TOKEN", "plain")
	t.Setenv("SKILLBOX_TEST_GH", "")
	if _, _, err := Effective(m, a, manifest.Limits{}); err == nil || err.Error() != "secret GH_TOKEN: the value is empty" {
		t.Fatalf("empty: %v", err)
	}
}
