package review

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/manifest"
)

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func parse(t *testing.T, caps, limits string) *manifest.Manifest {
	t.Helper()
	doc := "apiVersion: skillbox/v1\nname: fetch\nversion: 1.1.0\ndescription: |\n  Fetch a page\n  and return text.\n" +
		"sandbox: {wasm: {module: module.wasm, sha256: " + hex64 + "}}\n"
	if caps != "" {
		doc += "capabilities:\n" + caps
	}
	if limits != "" {
		doc += "limits:\n" + limits
	}
	m, err := manifest.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	return m
}

const risky = `  network:
    - https://api.example.com
    - https://*.wikipedia.org
    - http://127.0.0.1:8080
    - https://10.1.2.3
    - http://[fe80::1]
  files:
    - {path: /data, access: read}
    - {path: /out, access: read-write}
  env: [LANG]
  secrets: [API_TOKEN]
`

func TestDescribe(t *testing.T) {
	m := parse(t, risky, "  timeout: 5m\n  memory: 1GiB\n  requests: 500\n")
	r := Describe(m)
	wantRisks := []string{
		"https://*.wikipedia.org: wildcard: any host under wikipedia.org",
		"http://127.0.0.1:8080: plain http: traffic can be read and changed on the way",
		"http://127.0.0.1:8080: loopback address: reaches services on the host itself",
		"https://10.1.2.3: private network address",
		"http://[fe80::1]: plain http: traffic can be read and changed on the way",
		"http://[fe80::1]: link-local address (cloud metadata services live here)",
		"/out: read-write: can change and delete files there",
		"secrets: receives API_TOKEN: the skill can read this value and send it anywhere it can reach",
		"limit timeout 5m: over 1m",
		"limit memory 1GiB: over 512MiB",
		"limit requests 500: over 100 requests a call",
	}
	if !reflect.DeepEqual(r.Risks, wantRisks) {
		t.Errorf("risks:\n%s", strings.Join(r.Risks, "\n"))
	}
	text := r.Text()
	for _, want := range []string{
		"fetch 1.1.0: Fetch a page and return text.\n",
		"  signer:   unsigned\n",
		"  code:     wasm module module.wasm\n",
		"  connect to https://*.wikipedia.org\n",
		"  read files under /data\n",
		"  read and write files under /out\n",
		"  see environment variables LANG\n",
		"  receive secrets API_TOKEN (the skill can read this value and send it anywhere it can reach)\n",
		"Limits per call: timeout 5m, memory 1GiB, output 1MiB, requests 500\n",
		"  ! /out: read-write: can change and delete files there\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "Changes since") {
		t.Error("changes shown without an approved version")
	}
	r.Signer, r.ManifestDigest, r.CodeDigest = "acme-release", "sha256:aa", "sha256:bb"
	text = r.Text()
	if !strings.Contains(text, "  signer:   acme-release\n  manifest: sha256:aa\n  code:     wasm module module.wasm sha256:bb\n") {
		t.Errorf("signed header:\n%s", text)
	}
	j, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(j, &back); err != nil || !reflect.DeepEqual(back, r) {
		t.Errorf("json round trip: %v\n%s", err, j)
	}
	if !strings.Contains(string(j), `"origin": "https://*.wikipedia.org"`) || !strings.Contains(string(j), `"access": "read-write"`) {
		t.Errorf("json:\n%s", j)
	}
}

func TestDescribeNothing(t *testing.T) {
	r := Describe(parse(t, "", ""))
	if len(r.Risks) != 0 {
		t.Errorf("risks for a skill that asks nothing: %v", r.Risks)
	}
	text := r.Text()
	if !strings.Contains(text, "nothing but compute on its input") || !strings.Contains(text, "Limits per call: timeout 10s, memory 64MiB, output 1MiB\n") {
		t.Errorf("text:\n%s", text)
	}
	j, _ := r.JSON()
	if !strings.Contains(string(j), `"network": []`) || !strings.Contains(string(j), `"signer": "unsigned"`) {
		t.Errorf("json should list empty capabilities explicitly:\n%s", j)
	}
}

func TestDiff(t *testing.T) {
	approved := parse(t, "  network: [https://api.example.com, https://old.example.com]\n  files: [{path: /data, access: read}, {path: /tmp/x, access: read-write}, {path: /gone, access: read}]\n  env: [LANG]\n  secrets: [OLD]\n",
		"  timeout: 10s\n  memory: 64MiB\n  requests: 20\n")
	proposed := parse(t, "  network: [https://api.example.com, https://*.example.com]\n  files: [{path: /data, access: read-write}, {path: /tmp/x, access: read}, {path: /new, access: read}]\n  env: [LANG, TZ]\n  secrets: [API_TOKEN]\n",
		"  timeout: 30s\n  memory: 32MiB\n  requests: 20\n")
	c := Diff(approved, proposed)
	want := Changes{
		FromVersion: "1.1.0", ToVersion: "1.1.0",
		AddedOrigins: []string{"https://*.example.com"}, RemovedOrigins: []string{"https://old.example.com"},
		AddedFiles:    []FileItem{{Path: "/new", Access: "read"}},
		WidenedFiles:  []Change{{Name: "/data", From: "read", To: "read-write"}},
		NarrowedFiles: []Change{{Name: "/tmp/x", From: "read-write", To: "read"}},
		RemovedFiles:  []FileItem{{Path: "/gone", Access: "read"}},
		AddedEnv:      []string{"TZ"},
		AddedSecrets:  []string{"API_TOKEN"}, RemovedSecrets: []string{"OLD"},
		RaisedLimits:  []LimitChange{{"timeout", "10s", "30s"}},
		LoweredLimits: []LimitChange{{"memory", "64MiB", "32MiB"}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	if !c.AsksMore() || c.Empty() {
		t.Error("AsksMore/Empty")
	}
	r := Describe(proposed)
	r.Changes = &c
	text := r.Text()
	changes := `Changes since the approved version 1.1.0:
  + connect to https://*.example.com
  + files /new (read)
  ^ files /data: read -> read-write
  + env TZ
  + secret API_TOKEN
  ^ limit timeout: 10s -> 30s
  - connect to https://old.example.com
  - files /gone (read)
  v files /tmp/x: read-write -> read
  - secret OLD
  v limit memory: 64MiB -> 32MiB
`
	if !strings.Contains(text, changes) {
		t.Errorf("text:\n%s", text)
	}
	if strings.Index(text, "Changes since") > strings.Index(text, "It can:") {
		t.Error("changes must come before the description")
	}

	same := Diff(approved, approved)
	if !same.Empty() || same.AsksMore() {
		t.Errorf("self diff: %+v", same)
	}
	// Only removals: nothing more asked, but not empty.
	less := Diff(approved, parse(t, "", "  timeout: 10s\n  memory: 64MiB\n"))
	if less.AsksMore() || less.Empty() {
		t.Errorf("removals only: %+v", less)
	}
}
