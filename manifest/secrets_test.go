package manifest

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// brokered returns goodWasm with its secrets list replaced by list.
func brokered(t *testing.T, list string) string {
	t.Helper()
	return with(t, "  secrets: [API_TOKEN]\n", "  secrets:\n"+list)
}

func TestBrokeredSecretParses(t *testing.T) {
	doc := brokered(t, `    - API_TOKEN
    - name: GITHUB_TOKEN
      origins: [https://api.example.com]
      header: x-api-key
      format: "token {}"
    - name: OTHER
      origins: ["https://*.wikipedia.org", "HTTPS://API.EXAMPLE.COM:443"]
`)
	m, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	c := m.Capabilities
	if !reflect.DeepEqual(c.Secrets, []string{"API_TOKEN"}) {
		t.Errorf("plain secrets = %v", c.Secrets)
	}
	api := Origin{Scheme: "https", Host: "api.example.com", Port: 443}
	wiki := Origin{Scheme: "https", Host: "wikipedia.org", Port: 443, Wildcard: true}
	want := []BrokeredSecret{
		{Name: "GITHUB_TOKEN", Origins: []Origin{api}, Header: "X-Api-Key", Format: "token {}"},
		{Name: "OTHER", Origins: []Origin{wiki, api}, Header: "Authorization", Format: "{}"},
	}
	if !reflect.DeepEqual(c.Brokered, want) {
		t.Errorf("brokered = %+v\nwant %+v", c.Brokered, want)
	}
	if got := c.SecretNames(); !reflect.DeepEqual(got, []string{"API_TOKEN", "GITHUB_TOKEN", "OTHER"}) {
		t.Errorf("SecretNames = %v", got)
	}
	if v := want[0].HeaderValue("abc{}"); v != "token abc{}" {
		t.Errorf("HeaderValue = %q", v)
	}
	// A manifest written back reads as the same capabilities.
	out, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Parse(out)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(m.Capabilities, m2.Capabilities) {
		t.Errorf("round trip changed capabilities:\n%+v\n%+v", m.Capabilities, m2.Capabilities)
	}
}

// The plain form is what it was: the same names, nothing brokered. (Digests are of
// the bytes, which parsing never changes.)
func TestPlainSecretUnchanged(t *testing.T) {
	m, err := Parse([]byte(goodWasm))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.Capabilities.Secrets, []string{"API_TOKEN"}) || m.Capabilities.Brokered != nil {
		t.Fatalf("capabilities = %+v", m.Capabilities)
	}
}

func TestBrokeredSecretBad(t *testing.T) {
	for _, tc := range []struct {
		name, list string
		want       []string
	}{
		{"origin not in network", "    - {name: T, origins: [https://evil.example]}\n",
			[]string{`capabilities.secrets[0].origins[0]: "https://evil.example": not among capabilities.network (allowed: https://api.example.com, https://*.wikipedia.org)`}},
		{"origin covered by a wildcard is not listed", "    - {name: T, origins: [https://en.wikipedia.org]}\n",
			[]string{`capabilities.secrets[0].origins[0]: "https://en.wikipedia.org": not among capabilities.network (allowed: https://api.example.com, https://*.wikipedia.org)`}},
		{"no origins", "    - {name: T}\n",
			[]string{"capabilities.secrets[0].origins: required: the origins this secret may be sent to, among capabilities.network; for a secret handed to the skill write just its name"}},
		{"empty origins", "    - {name: T, origins: []}\n",
			[]string{"capabilities.secrets[0].origins: required: the origins this secret may be sent to, among capabilities.network; for a secret handed to the skill write just its name"}},
		{"origins not a list", "    - {name: T, origins: https://api.example.com}\n",
			[]string{"capabilities.secrets[0].origins: want a list, got a string"}},
		{"bad origin", "    - {name: T, origins: ['ftp://x']}\n",
			[]string{`capabilities.secrets[0].origins[0]: "ftp://x": scheme must be http or https`}},
		{"origin twice", "    - {name: T, origins: [https://api.example.com, 'https://API.example.com']}\n",
			[]string{`capabilities.secrets[0].origins[1]: "https://API.example.com": listed twice`}},
		{"header not a token", "    - {name: T, origins: [https://api.example.com], header: 'X Key'}\n",
			[]string{`capabilities.secrets[0].header: "X Key": must be an HTTP header name (letters, digits and !#$%&'*+-.^_` + "`" + `|~)`}},
		{"header with a newline", "    - {name: T, origins: [https://api.example.com], header: \"X-A\\r\\nX-B\"}\n",
			[]string{`capabilities.secrets[0].header: "X-A\r\nX-B": must be an HTTP header name (letters, digits and !#$%&'*+-.^_` + "`" + `|~)`}},
		{"header hop-by-hop", "    - {name: T, origins: [https://api.example.com], header: connection}\n",
			[]string{`capabilities.secrets[0].header: "connection": Connection belongs to the connection or the message framing; choose a request header such as Authorization`}},
		{"header host", "    - {name: T, origins: [https://api.example.com], header: Host}\n",
			[]string{`capabilities.secrets[0].header: "Host": Host belongs to the connection or the message framing; choose a request header such as Authorization`}},
		{"header proxy", "    - {name: T, origins: [https://api.example.com], header: Proxy-Authorization}\n",
			[]string{`capabilities.secrets[0].header: "Proxy-Authorization": Proxy-* headers go to a proxy, not the origin`}},
		{"header empty", "    - {name: T, origins: [https://api.example.com], header: ''}\n",
			[]string{`capabilities.secrets[0].header: "": must not be empty`}},
		{"format without a place", "    - {name: T, origins: [https://api.example.com], format: Bearer}\n",
			[]string{`capabilities.secrets[0].format: "Bearer": must contain {} (where the value goes) exactly once, found 0`}},
		{"format twice", "    - {name: T, origins: [https://api.example.com], format: '{}:{}'}\n",
			[]string{`capabilities.secrets[0].format: "{}:{}": must contain {} (where the value goes) exactly once, found 2`}},
		{"format with a line break", "    - {name: T, origins: [https://api.example.com], format: \"Bearer {}\\r\\nX-Evil: 1\"}\n",
			[]string{`capabilities.secrets[0].format: "Bearer {}\r\nX-Evil: 1": must not contain line breaks or control characters`}},
		{"unknown field", "    - {name: T, origins: [https://api.example.com], prefix: x}\n",
			[]string{"capabilities.secrets[0].prefix: unknown field (allowed: name, origins, header, format)"}},
		{"bad name", "    - {name: t, origins: [https://api.example.com]}\n",
			[]string{`capabilities.secrets[0].name: "t": must match ^[A-Z_][A-Z0-9_]*$`}},
		{"name also env", "    - {name: LANG, origins: [https://api.example.com]}\n",
			[]string{`capabilities.secrets[0].name: "LANG": already listed at capabilities.env[0]`}},
		{"name plain and brokered", "    - T\n    - {name: T, origins: [https://api.example.com]}\n",
			[]string{`capabilities.secrets[1].name: "T": already listed at capabilities.secrets[0]`}},
		{"two set one header for an origin", "    - {name: A, origins: [https://api.example.com]}\n    - {name: B, origins: [https://api.example.com]}\n",
			[]string{"capabilities.secrets[1].header: Authorization for https://api.example.com is already set by capabilities.secrets[0]"}},
		{"not a name or mapping", "    - [a]\n",
			[]string{"capabilities.secrets[0]: want a string, got a list"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse([]byte(brokered(t, tc.list)))
			var me *Error
			if !errors.As(err, &me) {
				t.Fatalf("got %v, %+v; want a *manifest.Error", err, m)
			}
			if got := me.Lines(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
	// A manifest without network cannot broker.
	doc := strings.Replace(goodWasm, "  network:\n    - https://api.example.com\n    - https://*.wikipedia.org\n", "", 1)
	doc = strings.Replace(doc, "  secrets: [API_TOKEN]\n", "  secrets: [{name: T, origins: [https://api.example.com]}]\n", 1)
	doc = strings.Replace(doc, "  requests: 20\n", "", 1)
	_, err := Parse([]byte(doc))
	if err == nil || !strings.Contains(err.Error(), `capabilities.secrets[0].origins[0]: "https://api.example.com": not among capabilities.network, which grants no origin`) {
		t.Fatalf("got %v", err)
	}
}
