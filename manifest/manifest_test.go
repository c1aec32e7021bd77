package manifest

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const goodHex = "9f2c1d0e9f2c1d0e9f2c1d0e9f2c1d0e9f2c1d0e9f2c1d0e9f2c1d0e9f2c1d0e"

const goodWasm = `apiVersion: skillbox/v1
name: http-fetch
version: 1.2.0
description: Fetch a web page and return its readable text.
sandbox:
  wasm:
    module: module.wasm
    sha256: ` + goodHex + `
input:
  type: object
  required: [url]
  properties:
    url: {type: string}
    count: {type: integer}
output:
  type: object
capabilities:
  network:
    - https://api.example.com
    - https://*.wikipedia.org
  files:
    - path: /data
      access: read
  env: [LANG]
  secrets: [API_TOKEN]
limits:
  timeout: 10s
  memory: 64MiB
  output: 1MiB
  cpu: 1
  requests: 20
`

const goodContainer = `apiVersion: skillbox/v1
name: shell-tool
version: 0.1.0-rc.1+build.5
description: Runs in a container.
sandbox:
  container:
    image: image.tar
    id: sha256:` + goodHex + `
    command: ["/skill", "--quiet"]
`

// with returns goodWasm with old replaced by new; old must occur exactly once.
func with(t *testing.T, old, new string) string {
	t.Helper()
	if strings.Count(goodWasm, old) != 1 {
		t.Fatalf("test bug: %q occurs %d times in goodWasm", old, strings.Count(goodWasm, old))
	}
	return strings.Replace(goodWasm, old, new, 1)
}

func TestParseGood(t *testing.T) {
	m, err := Parse([]byte(goodWasm))
	if err != nil {
		t.Fatal(err)
	}
	want := Manifest{
		APIVersion: "skillbox/v1", Name: "http-fetch", Version: "1.2.0",
		Description: "Fetch a web page and return its readable text.",
		Sandbox:     Sandbox{Wasm: &WasmSandbox{Module: "module.wasm", SHA256: goodHex}},
		Capabilities: Capabilities{
			Network: []Origin{{"https", "api.example.com", 443, false}, {"https", "wikipedia.org", 443, true}},
			Files:   []FileGrant{{"/data", AccessRead}},
			Env:     []string{"LANG"}, Secrets: []string{"API_TOKEN"},
		},
		Limits: Limits{Timeout: Duration(10 * time.Second), Memory: 64 << 20, Output: 1 << 20, CPU: 1, Requests: 20},
	}
	got := *m
	got.Input, got.Output, got.schemas = nil, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if m.Input["type"] != "object" {
		t.Errorf("input schema not kept: %v", m.Input)
	}

	c, err := Parse([]byte(goodContainer))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sandbox.Container == nil || c.Sandbox.Container.Image != "image.tar" || len(c.Sandbox.Container.Command) != 2 {
		t.Errorf("container sandbox: %+v", c.Sandbox.Container)
	}
	// Defaults: no network means no requests.
	if c.Limits != (Limits{Duration(10 * time.Second), 64 << 20, 1 << 20, 1, 0}) {
		t.Errorf("defaults: %+v", c.Limits)
	}
	if c.Input != nil || c.Output != nil {
		t.Errorf("absent schemas should stay nil")
	}
}

func TestParseGoodVariants(t *testing.T) {
	for _, doc := range []string{
		strings.Replace(goodContainer, "image: image.tar", "image: registry.example.com:5000/acme/tool@sha256:"+goodHex, 1),
		strings.Replace(goodContainer, "image: image.tar", "image: images/tool.tar", 1),
		goodContainer + "limits:\n  cpu: 0.5\n  memory: 1GB\n  timeout: 15m\n",
		goodContainer + "capabilities:\n  network: ['http://127.0.0.1:8080/']\n  files:\n    - {path: /a, access: read}\n    - {path: /ab, access: read-write}\n",
		goodContainer + "input: &s {type: object}\noutput: *s\n",
		goodContainer + "input: {$schema: 'http://json-schema.org/draft-07/schema#', type: object}\n",
		goodContainer + "input: {$defs: {n: {type: integer}}, properties: {a: {$ref: '#/$defs/n'}}}\n",
		strings.Replace(goodContainer, "version: 0.1.0-rc.1+build.5", "version: 10.20.30", 1),
		"# comment\n" + goodContainer,
	} {
		if _, err := Parse([]byte(doc)); err != nil {
			t.Errorf("%v\n---\n%s", err, doc)
		}
	}
}

func TestParseBad(t *testing.T) {
	hdr := "apiVersion: skillbox/v1\nname: x\nversion: 1.0.0\ndescription: d\n"
	wasm := "sandbox: {wasm: {module: m.wasm, sha256: " + goodHex + "}}\n"
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"empty", "", []string{"empty document"}},
		{"not a mapping", "- a\n- b\n", []string{"want a mapping, got a list"}},
		{"syntax", "name: [x\n", []string{"line 1: did not find expected ',' or ']'"}},
		{"two documents", goodWasm + "---\n" + goodWasm, []string{"more than one YAML document"}},
		{"unknown top field", goodWasm + "extra: 1\n", []string{"extra: unknown field (allowed: apiVersion, name, version, description, sandbox, input, output, capabilities, limits)"}},
		{"unknown nested field", with(t, "    module: module.wasm\n", "    module: module.wasm\n    entry: main\n"), []string{"sandbox.wasm.entry: unknown field (allowed: module, sha256, kind)"}},
		{"duplicate key", goodWasm + "name: again\n", []string{"name: duplicate key (first at line 2)"}},
		{"missing everything", "{}", []string{"apiVersion: required", "name: required", "version: required", "description: required", "sandbox: required: one of wasm or container"}},
		{"wrong apiVersion", with(t, "apiVersion: skillbox/v1", "apiVersion: skillbox/v2"), []string{`apiVersion: "skillbox/v2": want "skillbox/v1"`}},
		{"bad name", with(t, "name: http-fetch", "name: Http_Fetch"), []string{`name: "Http_Fetch": must match ^[a-z][a-z0-9-]{0,62}$ (lowercase letters, digits and hyphens, starting with a letter)`}},
		{"name too long", with(t, "name: http-fetch", "name: a"+strings.Repeat("b", 63)), []string{`name: "a` + strings.Repeat("b", 63) + `": must match ^[a-z][a-z0-9-]{0,62}$ (lowercase letters, digits and hyphens, starting with a letter)`}},
		{"name wrong type", with(t, "name: http-fetch", "name: [a]"), []string{"name: want a string, got a list"}},
		{"version as number", with(t, "version: 1.2.0", "version: 1.2"), []string{`version: "1.2": not a semantic version (want MAJOR.MINOR.PATCH, e.g. 1.2.0)`}},
		{"version leading zero", with(t, "version: 1.2.0", "version: 01.2.0"), []string{`version: "01.2.0": not a semantic version (want MAJOR.MINOR.PATCH, e.g. 1.2.0)`}},
		{"blank description", with(t, "description: Fetch a web page and return its readable text.", "description: '  '"), []string{"description: must not be empty"}},
		{"both sandboxes", hdr + "sandbox: {wasm: {module: m.wasm, sha256: " + goodHex + "}, container: {image: i.tar, id: x}}\n", []string{"sandbox: want exactly one of wasm or container, got both"}},
		{"no sandbox kind", hdr + "sandbox: {}\n", []string{"sandbox: want exactly one of wasm or container, got neither"}},
		{"module escapes", hdr + "sandbox: {wasm: {module: ../m.wasm, sha256: " + goodHex + "}}\n", []string{`sandbox.wasm.module: "../m.wasm": must be a clean relative path inside the package`}},
		{"module absolute", hdr + "sandbox: {wasm: {module: /m.wasm, sha256: " + goodHex + "}}\n", []string{`sandbox.wasm.module: "/m.wasm": must be a clean relative path inside the package`}},
		{"sha256 uppercase", with(t, "sha256: "+goodHex, "sha256: "+strings.ToUpper(goodHex)), []string{`sandbox.wasm.sha256: "` + strings.ToUpper(goodHex) + `": want 64 lowercase hex digits`}},
		{"sha256 empty", with(t, "sha256: "+goodHex, `sha256: ""`), []string{"sandbox.wasm.sha256: empty (run skillbox pack to fill it in)"}},
		{"container id bad", hdr + "sandbox: {container: {image: i.tar, id: " + goodHex + "}}\n", []string{`sandbox.container.id: "` + goodHex + `": want sha256:<64 lowercase hex digits>`}},
		{"container image unpinned", hdr + "sandbox: {container: {image: 'alpine:3', id: sha256:" + goodHex + "}}\n", []string{`sandbox.container.image: "alpine:3": want a .tar file inside the package (docker save) or repo@sha256:<64 hex digits>`}},
		{"container image bad digest", hdr + "sandbox: {container: {image: 'alpine@sha256:abc', id: sha256:" + goodHex + "}}\n", []string{`sandbox.container.image: "alpine@sha256:abc": a registry image must be pinned as repo@sha256:<64 lowercase hex digits>`}},
		{"container empty command", hdr + "sandbox: {container: {image: i.tar, id: sha256:" + goodHex + ", command: []}}\n", []string{"sandbox.container.command: must not be an empty list (omit it to use the image's entrypoint)"}},
		{"ftp origin", with(t, "    - https://*.wikipedia.org\n", "    - ftp://x\n"), []string{`capabilities.network[1]: "ftp://x": scheme must be http or https`}},
		{"origin with path", with(t, "    - https://*.wikipedia.org\n", "    - https://x.org/api\n"), []string{`capabilities.network[1]: "https://x.org/api": a path is not allowed`}},
		{"origin userinfo", with(t, "    - https://*.wikipedia.org\n", "    - https://u:p@x.org\n"), []string{`capabilities.network[1]: "https://u:p@x.org": userinfo is not allowed`}},
		{"origin double wildcard", with(t, "    - https://*.wikipedia.org\n", "    - https://*.*.x.org\n"), []string{`capabilities.network[1]: "https://*.*.x.org": only one leading "*." label is allowed`}},
		{"origin duplicate", with(t, "    - https://*.wikipedia.org\n", "    - HTTPS://API.example.com:443/\n"), []string{`capabilities.network[1]: "HTTPS://API.example.com:443/": same origin as capabilities.network[0]`}},
		{"origin bad port", with(t, "    - https://*.wikipedia.org\n", "    - https://x.org:99999\n"), []string{`capabilities.network[1]: "https://x.org:99999": bad port "99999"`}},
		{"origin query", with(t, "    - https://*.wikipedia.org\n", "    - https://x.org?a=1\n"), []string{`capabilities.network[1]: "https://x.org?a=1": a query is not allowed`}},
		{"network not a list", with(t, "  network:\n    - https://api.example.com\n    - https://*.wikipedia.org\n", "  network: https://api.example.com\n"), []string{"capabilities.network: want a list, got a string"}},
		{"file relative", with(t, "path: /data", "path: data"), []string{`capabilities.files[0].path: "data": must be an absolute path`}},
		{"file root", with(t, "path: /data", "path: /"), []string{`capabilities.files[0].path: "/": granting the whole filesystem is not allowed`}},
		{"file unclean", with(t, "path: /data", "path: /data/../etc"), []string{`capabilities.files[0].path: "/data/../etc": must be a clean path (want "/etc")`}},
		{"file bad access", with(t, "access: read", "access: write"), []string{`capabilities.files[0].access: "write": want read or read-write`}},
		{"file nested and duplicate", with(t, "      access: read\n", "      access: read\n    - {path: /data/sub, access: read}\n    - {path: /data, access: read-write}\n"), []string{
			`capabilities.files[1].path: "/data/sub": inside capabilities.files[0] ("/data"); grant one or the other`,
			`capabilities.files[2].path: "/data": duplicate of capabilities.files[0]`}},
		{"file missing access", with(t, "      access: read\n", ""), []string{"capabilities.files[0].access: required"}},
		{"env bad and duplicate", with(t, "env: [LANG]", "env: [LANG, lang, LANG]"), []string{`capabilities.env[1]: "lang": must match ^[A-Z_][A-Z0-9_]*$`, `capabilities.env[2]: "LANG": already listed at capabilities.env[0]`}},
		{"env and secret", with(t, "secrets: [API_TOKEN]", "secrets: [API_TOKEN, LANG]"), []string{`capabilities.secrets[1]: "LANG": already listed at capabilities.env[0]`}},
		{"limits bad values", with(t, "  timeout: 10s\n  memory: 64MiB\n  output: 1MiB\n  cpu: 1\n  requests: 20\n", "  timeout: 1h\n  memory: 64 MiB\n  output: 0\n  cpu: many\n  requests: 0\n"), []string{
			`limits.timeout: "1h": at most 15m`,
			`limits.memory: "64 MiB": want a whole number with an optional unit (B, KiB, MiB, GiB, KB, MB, GB)`,
			`limits.output: "0" is below the 1 byte minimum`,
			"limits.cpu: want a number of cores, got a string",
			"limits.requests: 0: want 1 to 10000"}},
		{"wasm memory too high", with(t, "memory: 64MiB", "memory: 8GiB"), []string{`limits.memory: "8GiB" is above the 4GiB maximum`}},
		{"bad duration", with(t, "timeout: 10s", "timeout: 10"), []string{`limits.timeout: "10": want a duration such as 10s, 1m30s or 500ms`}},
		{"unknown limit", with(t, "  requests: 20\n", "  requests: 20\n  disk: 1GiB\n"), []string{"limits.disk: unknown field (allowed: timeout, memory, output, cpu, requests)"}},
		{"requests without network", hdr + wasm + "limits: {requests: 5}\n", []string{"limits.requests: set, but capabilities.network grants no origin"}},
		{"input not a mapping", with(t, "output:\n  type: object\n", "output: [1]\n"), []string{"output: want a mapping (a JSON Schema object), got a list"}},
		{"input bad schema", with(t, "count: {type: integer}", "count: {type: integr}"), []string{`input.properties.count.type: "integr" is not a JSON Schema type (allowed: array, boolean, integer, null, number, object, string)`}},
		{"input remote ref", with(t, "count: {type: integer}", "count: {$ref: 'https://example.com/s.json'}"), []string{`input: external $ref "https://example.com/s.json" is not allowed: a schema must be self-contained`}},
		{"input file ref", with(t, "count: {type: integer}", "count: {$ref: 'file:///etc/passwd'}"), []string{`input: external $ref "file:///etc/passwd" is not allowed: a schema must be self-contained`}},
		{"input relative ref", with(t, "count: {type: integer}", "count: {$ref: 'other.json'}"), []string{`input: external $ref "https://skillbox.invalid/other.json" is not allowed: a schema must be self-contained`}},
		{"schema duplicate key", with(t, "  type: object\ncapabilities", "  type: object\n  type: array\ncapabilities"), []string{`output: line 17: mapping key "type" already defined at line 16`}},
		{"many at once", "apiVersion: v1\nname: 1x\nversion: one\ndescription: d\n" + wasm + "capabilities: {network: ['ftp://a', 'https://ok.org', 'https://ok.org'], env: [a]}\nlimits: {timeout: forever}\n", []string{
			`apiVersion: "v1": want "skillbox/v1"`,
			`name: "1x": must match ^[a-z][a-z0-9-]{0,62}$ (lowercase letters, digits and hyphens, starting with a letter)`,
			`version: "one": not a semantic version (want MAJOR.MINOR.PATCH, e.g. 1.2.0)`,
			`capabilities.network[0]: "ftp://a": scheme must be http or https`,
			`capabilities.network[2]: "https://ok.org": same origin as capabilities.network[1]`,
			`capabilities.env[0]: "a": must match ^[A-Z_][A-Z0-9_]*$`,
			`limits.timeout: "forever": want a duration such as 10s, 1m30s or 500ms`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatalf("parsed: %+v", m)
			}
			var me *Error
			if !errors.As(err, &me) {
				t.Fatalf("error %T, want *manifest.Error: %v", err, err)
			}
			if got := me.Lines(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if me.Error() != strings.Join(tc.want, "\n") {
				t.Errorf("Error() = %q", me.Error())
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, doc := range []string{goodWasm, goodContainer} {
		m, err := Parse([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		out, err := yaml.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(m.Capabilities, m2.Capabilities) || m.Limits != m2.Limits || !reflect.DeepEqual(m.Sandbox, m2.Sandbox) {
			t.Errorf("round trip changed the manifest:\n%s", out)
		}
	}
}

func TestValidateInputOutput(t *testing.T) {
	m, err := Parse([]byte(goodWasm))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ in, want string }{
		{`{"url":"https://x"}`, ""},
		{`{"url":"https://x","count":3}`, ""},
		{`{}`, "input.url: missing property"},
		{`{"url":"x","count":"3"}`, "input.count: want an integer, got a string"},
		{`[1]`, "input: want an object, got an array"},
		{`{"url":"x"} {}`, "input: not valid JSON: invalid character after top-level value"},
		{``, "input: not valid JSON: EOF"},
		// Go's decoder would read these bytes as U+FFFD and the schema would pass them.
		{"{\"url\":\"https://x\xff\"}", "input: not valid JSON (not UTF-8 text)"},
	} {
		err := m.ValidateInput([]byte(tc.in))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.in, err)
			}
			continue
		}
		var se *SchemaError
		if !errors.As(err, &se) || err.Error() != tc.want {
			t.Errorf("%s: got %v, want %s", tc.in, err, tc.want)
		}
	}
	if err := m.ValidateOutput([]byte(`"text"`)); err == nil || err.Error() != "output: want an object, got a string" {
		t.Errorf("output: %v", err)
	}
	if err := m.ValidateOutput([]byte("{\"a\":\"\xc3\"}")); err == nil || err.Error() != "output: not valid JSON (not UTF-8 text)" {
		t.Errorf("output that is not UTF-8: %v", err)
	}
	c, err := Parse([]byte(goodContainer))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateInput([]byte(`"anything"`)); err != nil {
		t.Errorf("no schema, valid JSON: %v", err)
	}
	if err := c.ValidateInput([]byte(`{`)); err == nil {
		t.Errorf("no schema still needs JSON")
	}
	// A Manifest built without Parse compiles its schemas on demand.
	built := &Manifest{Input: map[string]any{"type": "integer"}}
	if err := built.ValidateInput([]byte(`"x"`)); err == nil || err.Error() != "input: want an integer, got a string" {
		t.Errorf("built manifest: %v", err)
	}
}

func TestTestdataManifests(t *testing.T) {
	for _, name := range []string{"testdata/spec-example.yaml", "testdata/container.yaml"} {
		m, data, err := LoadFile(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(data) == 0 || m.Name == "" {
			t.Errorf("%s: %+v", name, m)
		}
	}
	if _, _, err := LoadFile("testdata/none.yaml"); err == nil {
		t.Error("missing file loaded")
	}
}

func TestValidateDeterministic(t *testing.T) {
	m, err := Parse([]byte(goodContainer + "input:\n  type: object\n  required: [z, a, m]\n  properties: {a: {type: string}, b: {type: string}, c: {type: integer}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if err := m.ValidateInput([]byte(`{"b": 1, "c": "x"}`)); err == nil || err.Error() != "input.a: missing property" {
			t.Fatalf("got %v", err)
		}
		if err := m.ValidateInput([]byte(`{"a":"","m":1,"z":1,"b": 1, "c": "x"}`)); err == nil || err.Error() != "input.b: want a string, got a number" {
			t.Fatalf("got %v", err)
		}
	}
}
