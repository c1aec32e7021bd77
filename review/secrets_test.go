package review

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestDescribeSecrets(t *testing.T) {
	m := parse(t, `  network: [https://api.github.com, "http://127.0.0.1:8080", "https://*.example.com"]
  secrets:
    - PLAIN_KEY
    - {name: GITHUB_TOKEN, origins: [https://api.github.com], format: "Bearer {}"}
    - {name: LOCAL, origins: ["http://127.0.0.1:8080", "https://*.example.com"], header: X-Api-Key}
`, "")
	r := Describe(m)
	if !reflect.DeepEqual(r.Secrets, []string{"PLAIN_KEY"}) {
		t.Fatalf("plain secrets %v", r.Secrets)
	}
	want := []BrokeredItem{
		{Name: "GITHUB_TOKEN", Origins: []string{"https://api.github.com"}, Header: "Authorization", Format: "Bearer {}"},
		{Name: "LOCAL", Origins: []string{"http://127.0.0.1:8080", "https://*.example.com"}, Header: "X-Api-Key", Format: "{}"},
	}
	if !reflect.DeepEqual(r.Brokered, want) {
		t.Fatalf("brokered %+v", r.Brokered)
	}
	text := r.Text()
	for _, line := range []string{
		"  receive secrets PLAIN_KEY (the skill can read this value and send it anywhere it can reach)\n",
		"  use secret GITHUB_TOKEN: sent only to https://api.github.com as Authorization, never visible to the skill\n",
		"  use secret LOCAL: sent only to http://127.0.0.1:8080, https://*.example.com as X-Api-Key, never visible to the skill\n",
		"  ! secrets: receives PLAIN_KEY: the skill can read this value and send it anywhere it can reach\n",
		"  ! secret LOCAL: sent over plain http to http://127.0.0.1:8080, where it can be read on the way\n",
		"  ! secret LOCAL: sent to any host under example.com\n",
	} {
		if !strings.Contains(text, line) {
			t.Errorf("text lacks %q:\n%s", line, text)
		}
	}
	if strings.Contains(text, "GITHUB_TOKEN (the skill can read") {
		t.Error("a brokered secret is described as readable")
	}
}

func TestDiffSecrets(t *testing.T) {
	approved := parse(t, `  network: [https://a.example, https://b.example]
  secrets:
    - WAS_PLAIN
    - {name: WAS_BROKERED, origins: [https://a.example], header: X-B}
    - {name: MOVES, origins: [https://a.example], header: X-M}
    - {name: SHRINKS, origins: [https://a.example, https://b.example]}
`, "")
	proposed := parse(t, `  network: [https://a.example, https://b.example]
  secrets:
    - WAS_BROKERED
    - {name: WAS_PLAIN, origins: [https://a.example], header: X-P}
    - {name: MOVES, origins: [https://b.example], header: X-Key}
    - {name: SHRINKS, origins: [https://a.example]}
`, "")
	c := Diff(approved, proposed)
	if !reflect.DeepEqual(c.NowPlain, []string{"WAS_BROKERED"}) || !reflect.DeepEqual(c.NowBrokered, []string{"WAS_PLAIN"}) {
		t.Fatalf("now plain %v, now brokered %v", c.NowPlain, c.NowBrokered)
	}
	want := []SecretOriginsChange{
		{Name: "MOVES", Added: []string{"https://b.example"}, Removed: []string{"https://a.example"}, Header: &Change{From: "X-M", To: "X-Key"}},
		{Name: "SHRINKS", Removed: []string{"https://b.example"}},
	}
	if !reflect.DeepEqual(c.SecretOrigins, want) {
		t.Fatalf("secret origins %+v", c.SecretOrigins)
	}
	if !c.AsksMore() {
		t.Fatal("a secret sent to a new origin, or now handed to the skill, asks more")
	}
	text := c.Text()
	for _, line := range []string{
		"  ^ secret WAS_BROKERED: now handed to the skill (was brokered): the skill can read this value and send it anywhere it can reach\n",
		"  + secret MOVES sent to https://b.example\n",
		"  ^ secret MOVES sent as X-Key (was X-M)\n",
		"  v secret WAS_PLAIN: now brokered (was handed to the skill)\n",
		"  - secret MOVES sent to https://a.example\n",
		"  - secret SHRINKS sent to https://b.example\n",
	} {
		if !strings.Contains(text, line) {
			t.Errorf("diff lacks %q:\n%s", line, text)
		}
	}
	same := Diff(approved, approved)
	if !same.Empty() {
		t.Fatalf("no change reads as %+v", same)
	}
	onlyNarrower := Diff(approved, parse(t, `  network: [https://a.example, https://b.example]
  secrets:
    - WAS_PLAIN
    - {name: WAS_BROKERED, origins: [https://a.example], header: X-B}
    - {name: MOVES, origins: [https://a.example], header: X-M}
    - {name: SHRINKS, origins: [https://a.example]}
`, ""))
	if onlyNarrower.AsksMore() || onlyNarrower.Empty() {
		t.Fatalf("a narrowed secret: asks more %v, empty %v", onlyNarrower.AsksMore(), onlyNarrower.Empty())
	}
}

// A brokered secret whose format changes (where in the header's value the secret goes)
// asks more: a new version could move it from "Bearer {}" to "{}" or "Basic {}"
// unseen (security review secrev3 F4).
func TestDiffSecretFormat(t *testing.T) {
	approved := parse(t, `  network: [https://a.example]
  secrets:
    - {name: TOKEN, origins: [https://a.example], format: "Bearer {}"}
    - {name: KEY, origins: [https://a.example], header: X-Key, format: "key={}"}
`, "")
	proposed := parse(t, `  network: [https://a.example]
  secrets:
    - {name: TOKEN, origins: [https://a.example]}
    - {name: KEY, origins: [https://a.example], header: X-Api, format: "{}"}
`, "")
	c := Diff(approved, proposed)
	if !c.AsksMore() || c.Empty() {
		t.Fatalf("a changed secret format: asks more %v, empty %v", c.AsksMore(), c.Empty())
	}
	text := c.Text()
	for _, line := range []string{
		"  ^ secret TOKEN sent as Authorization: \"Bearer {}\" -> \"{}\"\n",
		"  ^ secret KEY sent as X-Api (was X-Key)\n",
		"  ^ secret KEY sent as X-Api: \"key={}\" -> \"{}\"\n",
	} {
		if !strings.Contains(text, line) {
			t.Errorf("diff lacks %q:\n%s", line, text)
		}
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"name":"TOKEN","format":{"name":"Authorization","from":"Bearer {}","to":"{}"}}`; !strings.Contains(string(j), want) {
		t.Errorf("JSON lacks %s:\n%s", want, j)
	}
	if same := Diff(approved, approved); !same.Empty() {
		t.Fatalf("no change reads as %+v", same)
	}
	onlyFormat := Diff(parse(t, `  network: [https://a.example]
  secrets:
    - {name: TOKEN, origins: [https://a.example], format: "Bearer {}"}
`, ""), parse(t, `  network: [https://a.example]
  secrets:
    - {name: TOKEN, origins: [https://a.example], format: "Basic {}"}
`, ""))
	if !onlyFormat.AsksMore() {
		t.Fatalf("only the format changed: does not ask more:\n%s", onlyFormat.Text())
	}
}
