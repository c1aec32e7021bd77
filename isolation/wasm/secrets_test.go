package wasm_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

const (
	thiefValue       = "gh-Xy7/q+Pz=tok3n" // characters that JSON and URLs escape
	thiefPlaceholder = "[skillbox:secret GH_TOKEN]"
)

// received is everything one loopback origin got: per path, the Authorization
// headers, and all bytes (URLs, headers, bodies) for a search for the value.
type received struct {
	mu   sync.Mutex
	auth map[string][]string
	all  []string
	mem  int // bytes of memory dump received
}

func (r *received) record(req *http.Request) []byte {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.auth == nil {
		r.auth = map[string][]string{}
	}
	r.auth[req.URL.Path] = append(r.auth[req.URL.Path], req.Header.Get("Authorization"))
	r.all = append(r.all, req.URL.String(), string(b))
	for k, vs := range req.Header {
		r.all = append(r.all, k+": "+strings.Join(vs, ","))
	}
	if req.URL.Path == "/memory" {
		r.mem += len(b)
	}
	return b
}

// holds reports whether the value, raw or escaped, is in anything r received.
func (r *received) holds(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.all {
		for _, form := range []string{s, url.QueryEscape(s), strings.ReplaceAll(s, "/", `\/`), strings.ReplaceAll(s, "+", `\u002b`)} {
			if strings.Contains(a, form) {
				return true
			}
		}
	}
	return false
}

// thiefOrigins starts the origin the secret is listed for (it echoes the header in
// its reply's headers and body, and redirects on /go) and a granted origin it is not
// listed for, which collects what the thief sends.
func thiefOrigins(t *testing.T) (listed, other *server, listedGot, otherGot *received) {
	listedGot, otherGot = &received{}, &received{}
	listed = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		listedGot.record(r)
		if r.URL.Path == "/go" {
			http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
			return
		}
		auth := r.Header.Get("Authorization")
		w.Header().Set("X-Echo", auth)
		f, _ := w.(http.Flusher)
		io.WriteString(w, "you sent "+auth[:len(auth)/2])
		f.Flush() // the value spans two reads
		io.WriteString(w, auth[len(auth)/2:])
	})
	other = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		otherGot.record(r)
		io.WriteString(w, "thanks")
	})
	return listed, other, listedGot, otherGot
}

// runThief runs the hostile guest with a readable mount holding a file, a plain env
// value, and grant's secrets.
func runThief(t *testing.T, listed, other *server, g isolation.Grant) isolation.Result {
	t.Helper()
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("operator notes"), 0o644))
	g.Network = []manifest.Origin{listed.origin(t, ""), other.origin(t, "")}
	g.Files = []isolation.Mount{{Guest: "/data", Host: dir, Access: manifest.AccessRead}}
	if g.Env == nil {
		g.Env = map[string]string{}
	}
	g.Env["PLAIN"] = "visible-plain"
	in, _ := json.Marshal(map[string]string{"listed": listed.URL, "other": other.URL, "placeholder": thiefPlaceholder, "header": "Authorization"})
	l := limits()
	l.Requests = 64
	l.Memory = 256 << 20
	l.Logs = 4 << 20
	l.Output = 8 << 20
	sb := newSandbox(t)
	res, err := sb.Run(context.Background(), isolation.Call{ID: "thief", Skill: goSkill(t, "thief"), Input: in, Limits: l, Grant: g})
	if err != nil {
		t.Fatalf("thief: %v (logs %.300q)", err, res.Logs)
	}
	return res
}

// A hostile skill that dumps its env, argv, every file it can read and its memory,
// and sends it all to a granted origin the secret is not listed for, never finds the
// value: the listed origin gets the header, the other origin none (also after a
// redirect), the echo comes back as the placeholder, and the records name the secret.
func TestBrokeredSecretNeverReachesHostileSkill(t *testing.T) {
	listed, other, listedGot, otherGot := thiefOrigins(t)
	res := runThief(t, listed, other, isolation.Grant{Brokered: []isolation.BrokeredSecret{{
		Name: "GH_TOKEN", Origins: []manifest.Origin{listed.origin(t, "")}, Header: "Authorization",
		Value: "Bearer " + thiefValue, Secret: thiefValue,
	}}})

	// The thief did its work: its findings and its memory reached the other origin.
	var out struct{ Found string }
	must(t, json.Unmarshal(res.Output, &out))
	for _, want := range []string{"PLAIN=visible-plain", "file /data/notes.txt: operator notes", "echo: "} {
		if !strings.Contains(out.Found, want) {
			t.Fatalf("the thief did not find %q; found:\n%.2000s", want, out.Found)
		}
	}
	if otherGot.mem < 1<<20 {
		t.Fatalf("the thief sent only %d bytes of memory", otherGot.mem)
	}
	if !otherGot.holds(thiefPlaceholder) {
		t.Fatal("the echo (with the placeholder) is not in what the thief sent: the test proves nothing")
	}

	// Nothing it found, sent, printed or logged holds the value.
	if otherGot.holds(thiefValue) {
		t.Fatal("the other origin received the value")
	}
	for name, b := range map[string][]byte{"output": res.Output, "logs": res.Logs} {
		if strings.Contains(string(b), thiefValue) || strings.Contains(string(b), url.QueryEscape(thiefValue)) {
			t.Fatalf("the %s hold the value", name)
		}
	}
	// The host hands the body over in base64.
	echoBody := base64.StdEncoding.EncodeToString([]byte("you sent Bearer " + thiefPlaceholder))
	if !strings.Contains(out.Found, `"X-Echo":["Bearer `+thiefPlaceholder+`"]`) || !strings.Contains(out.Found, echoBody) {
		t.Fatalf("echo not redacted to the placeholder: %.500q", out.Found)
	}

	// The listed origin got the header on both of its hops; the other origin got the
	// skill's own header (the placeholder, never substituted) or none after a redirect.
	bearer := "Bearer " + thiefValue
	if got := listedGot.auth["/echo"]; !slices.Equal(got, []string{bearer}) {
		t.Fatalf("listed /echo got Authorization %q", got)
	}
	if got := listedGot.auth["/go"]; !slices.Equal(got, []string{bearer}) {
		t.Fatalf("listed /go got Authorization %q", got)
	}
	if got := otherGot.auth["/after"]; !slices.Equal(got, []string{""}) {
		t.Fatalf("redirect hop to the other origin got Authorization %q", got)
	}
	if got := otherGot.auth["/collect"]; !slices.Equal(got, []string{thiefPlaceholder}) {
		t.Fatalf("other /collect got Authorization %q", got)
	}

	// Records: which secret went with which request, by name only.
	listedHost := strings.TrimPrefix(listed.URL, "http://")
	for _, r := range res.Egress {
		carried := slices.Equal(r.Secrets, []string{"GH_TOKEN"})
		if strings.Contains(r.URL, listedHost) != carried {
			t.Fatalf("record %s carried %v", r.URL, r.Secrets)
		}
		if strings.Contains(r.URL+r.Reason, thiefValue) {
			t.Fatalf("record holds the value: %+v", r)
		}
	}
}

// The control: handed as a plain secret (env), the same value is what the thief
// finds and sends. This is what the test above would see without brokering.
func TestPlainSecretIsWhatTheThiefFinds(t *testing.T) {
	listed, other, _, otherGot := thiefOrigins(t)
	runThief(t, listed, other, isolation.Grant{Env: map[string]string{"GH_TOKEN": thiefValue}})
	if !otherGot.holds(thiefValue) {
		t.Fatal("the thief did not find a plain secret: it would prove nothing about a brokered one")
	}
}
