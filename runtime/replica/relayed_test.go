package replica_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
	"github.com/skillbox-dev/skillbox/runtime/replica"
)

// probeBody asks for a plain secret and a read-write mount: what a relayed approval
// must not point at the server's token, env or home.
const probeBody = `input: {type: object}
output: {type: object}
capabilities:
  secrets: [TOKEN]
  files:
    - {path: /data, access: read-write}
limits: {timeout: 30s, memory: 256MiB}
`

// relayedFixture is one replica running the probe guest (it reports its env and reads
// a file), with what its logger said.
type relayedFixture struct {
	c      client.Client
	ns     string
	r      *replicaOf
	digest string
	signer string
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// buildProbe compiles isolation/wasm's probe guest for wasip1.
func buildProbe(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "probe.wasm")
	cmd := exec.Command("go", "build", "-o", out, "../../isolation/wasm/testdata/guests/probe")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the probe guest: %v\n%s", err, b)
	}
	return out
}

func newRelayedFixture(t *testing.T, rel replica.Relayed) *relayedFixture {
	t.Helper()
	c := needCluster(t)
	f := &relayedFixture{c: c, ns: namespace(t, c), logs: &syncBuffer{}}
	first := testkit.NewHome(t)
	pkg := first.Build(t, testkit.Package{Name: "probe", Version: "1.0.0", Module: buildProbe(t), Body: probeBody})
	f.r = newReplica(t, testCfg, first, f.ns, "r", pkg, replica.WithRelayed(rel),
		replica.WithLogger(slog.New(slog.NewTextHandler(f.logs, nil))))
	cand, err := f.r.eng.Candidate(context.Background(), "probe", "")
	if err != nil {
		t.Fatal(err)
	}
	f.digest, f.signer = cand.Entry.ManifestDigest, cand.Signer.Signer
	return f
}

// put writes the probe's approval into the cluster as kubectl apply would.
func (f *relayedFixture) put(t *testing.T, g approval.Grant, by string) string {
	t.Helper()
	data, err := yaml.Marshal(&approval.Approval{Skill: "probe", ManifestDigest: f.digest, Signer: f.signer,
		ApprovedBy: by, ApprovedAt: time.Now().UTC().Truncate(time.Second), Grant: g})
	if err != nil {
		t.Fatal(err)
	}
	f.putRaw(t, string(data))
	return string(data)
}

func (f *relayedFixture) putRaw(t *testing.T, data string) {
	t.Helper()
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: replica.ConfigMapName(replica.StateApproval, "probe"), Namespace: f.ns,
		Labels: map[string]string{replica.LabelState: replica.StateApproval, replica.LabelSkill: "probe"}},
		Data: map[string]string{replica.KeyApproval: data}}
	err := f.c.Create(ctx, cm)
	if apierrors.IsAlreadyExists(err) {
		var have corev1.ConfigMap
		if err = f.c.Get(ctx, client.ObjectKeyFromObject(cm), &have); err == nil {
			have.Data = cm.Data
			err = f.c.Update(ctx, &have)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

// disk is the replica's approvals/probe.yaml ("" when there is none).
func (f *relayedFixture) disk(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(approval.Path(f.r.home.Dir, "probe"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(data)
}

// call runs the probe through the engine, reading /data/f: the TOKEN it was given
// and what it read.
func (f *relayedFixture) call(t *testing.T) (token, data string) {
	t.Helper()
	res, err := f.r.eng.Invoke(context.Background(), engine.Request{Skill: "probe", Input: []byte(`{"op":"read","path":"/data/f"}`), Caller: "t"})
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	var out struct {
		Env  []string
		Data string
	}
	if err := json.Unmarshal(res.Output, &out); err != nil {
		t.Fatalf("probe output %s: %v", res.Output, err)
	}
	for _, kv := range out.Env {
		if v, ok := strings.CutPrefix(kv, "TOKEN="); ok {
			token = v
		}
	}
	return token, out.Data
}

// refused writes g into the cluster and checks it is not applied: the replica says
// why (want), its approval on disk is what it was, and a call still gets what that
// approval gives.
func (f *relayedFixture) refused(t *testing.T, g approval.Grant, want, token, data string) {
	t.Helper()
	before := f.disk(t)
	f.put(t, g, "someone with ConfigMap write")
	waitFor(t, "the replica to refuse or apply the approval", func() bool {
		return strings.Contains(f.r.mirror.Refused()["probe"], want) || f.disk(t) != before
	})
	if got := f.disk(t); got != before {
		t.Fatalf("the replica applied an approval naming %s:\n%s", want, got)
	}
	if gotToken, gotData := f.call(t); gotToken != token || gotData != data {
		t.Errorf("the call got TOKEN %q and read %q; want what the replica's own approval gives, %q and %q", gotToken, gotData, token, data)
	}
	if n := strings.Count(f.logs.String(), strings.ReplaceAll(want, `"`, `\"`)); n != 1 { // as slog's text quotes it
		t.Errorf("the refusal of %s logged %d times, want once:\n%s", want, n, f.logs.String())
	}
}

// applied writes g into the cluster and waits for the engine to hold it.
func (f *relayedFixture) applied(t *testing.T, g approval.Grant, by string) {
	t.Helper()
	data := f.put(t, g, by)
	waitFor(t, "the replica to apply the approval by "+by, func() bool {
		info, err := f.r.eng.Get(context.Background(), "probe", "")
		return err == nil && info.Approved && info.Approval.ApprovedBy == by
	})
	if got := f.disk(t); got != data {
		t.Fatalf("on disk:\n%s\nwant the cluster's:\n%s", got, data)
	}
	if why := f.r.mirror.Refused()["probe"]; why != "" {
		t.Errorf("applied, yet reported refused: %s", why)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRelayedApprovalRefused: by default a replica takes from the cluster no approval
// that reads a secret from another file or env var than its own approval does, or
// mounts another host directory (M1: a ConfigMap writer pointing a skill at the
// server pod's service-account token, its env, its home). Each is refused, the
// replica's approval and its calls stay as they were, and the refusal is logged once.
// The replica's own approval echoed back, or pushed again with the same secrets and
// mounts (another approvedBy, lower limits), still applies.
func TestRelayedApprovalRefused(t *testing.T) {
	f := newRelayedFixture(t, replica.Relayed{})
	ctx := context.Background()
	tmp := t.TempDir()
	ownToken := filepath.Join(tmp, "own", "token")
	ownData := filepath.Join(tmp, "own-data")
	saToken := filepath.Join(tmp, "var/run/secrets/kubernetes.io/serviceaccount/token")
	writeFile(t, ownToken, "own-secret\n")
	writeFile(t, filepath.Join(ownData, "f"), "own-data")
	writeFile(t, saToken, "the-pod-token")
	writeFile(t, filepath.Join(f.r.home.Dir, "f"), "the-server-home")
	t.Setenv("SKILLBOX_TEST_SERVER_ENV", "server-env")

	// The operator approves on this replica: it goes to the cluster and comes back.
	own := approval.Grant{Secrets: map[string]string{"TOKEN": "file:" + ownToken},
		Files: []approval.File{{Path: "/data", Host: ownData, Access: manifest.AccessReadWrite}}}
	cand, err := f.r.eng.Candidate(ctx, "probe", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.eng.Approve(ctx, cand, &own, "ops"); err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	waitFor(t, "the replica's approval in the cluster", func() bool {
		err := f.c.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: replica.ConfigMapName(replica.StateApproval, "probe")}, &cm)
		return err == nil && cm.Data[replica.KeyApproval] == f.disk(t)
	})
	if tok, data := f.call(t); tok != "own-secret" || data != "own-data" {
		t.Fatalf("the replica's own approval: TOKEN %q, read %q", tok, data)
	}
	// It tells its operator that replicas with its flags will not take it from there.
	if !strings.Contains(f.logs.String(), "replicas with the same flags will not apply it") ||
		!strings.Contains(f.logs.String(), "grant.secrets.TOKEN: source file:"+ownToken) {
		t.Errorf("no warning that the other replicas will refuse it:\n%s", f.logs.String())
	}
	mine := f.disk(t)

	// The pod's service-account token, an env var of the server, the server's home.
	f.refused(t, approval.Grant{Secrets: map[string]string{"TOKEN": "file:" + saToken}, Files: own.Files},
		"grant.secrets.TOKEN: source file:"+saToken+" is not allowed (--kube-relayed-secret-sources: none)", "own-secret", "own-data")
	f.refused(t, approval.Grant{Secrets: map[string]string{"TOKEN": "env:SKILLBOX_TEST_SERVER_ENV"}, Files: own.Files},
		"grant.secrets.TOKEN: source env:SKILLBOX_TEST_SERVER_ENV is not allowed (--kube-relayed-secret-sources: none)", "own-secret", "own-data")
	f.refused(t, approval.Grant{Secrets: own.Secrets, Files: []approval.File{{Path: "/data", Host: f.r.home.Dir, Access: manifest.AccessReadWrite}}},
		"grant.files[0].host: "+f.r.home.Dir+" (for /data) is not allowed (--kube-relayed-host-dirs: none)", "own-secret", "own-data")
	if !strings.Contains(f.r.mirror.Refused()["probe"], "keeps what it had") {
		t.Errorf("Refused: %q", f.r.mirror.Refused()["probe"])
	}

	// The replica's own approval echoed back as it is: nothing is refused any more.
	f.putRaw(t, mine)
	waitFor(t, "the echo to be taken", func() bool { return f.r.mirror.Refused()["probe"] == "" })
	if got := f.disk(t); got != mine {
		t.Fatalf("after the echo, on disk:\n%s", got)
	}
	// The same secrets and mounts pushed again from git, with another approvedBy and a
	// lower timeout: applied.
	f.applied(t, approval.Grant{Secrets: own.Secrets, Files: own.Files, Limits: manifest.Limits{Timeout: manifest.Duration(20 * time.Second)}}, "git")
	if tok, data := f.call(t); tok != "own-secret" || data != "own-data" {
		t.Errorf("after the re-push: TOKEN %q, read %q", tok, data)
	}
	// Narrower: read-only on the same directory, no secret.
	f.applied(t, approval.Grant{Files: []approval.File{{Path: "/data", Host: ownData, Access: manifest.AccessRead}}}, "git, narrowed")
	if tok, data := f.call(t); tok != "" || data != "own-data" {
		t.Errorf("after narrowing: TOKEN %q, read %q", tok, data)
	}
}

// TestRelayedApprovalAllowed: sources and directories the replica's operator allows
// are taken from the cluster (a file under an allowed directory, an env var with an
// allowed prefix, a mount under an allowed directory); a path that only looks as if
// it were under one (.., a sibling with the same prefix) or a variable outside the
// prefix is refused, and the replica keeps the approval it took.
func TestRelayedApprovalAllowed(t *testing.T) {
	base := t.TempDir()
	f := newRelayedFixture(t, replica.Relayed{
		SecretSources: []string{"file:" + base + "/secrets/", "env:SKILLBOX_TEST_RELAYED_*"},
		HostDirs:      []string{base + "/skills"},
	})
	writeFile(t, base+"/secrets/app/token", "allowed-secret")
	writeFile(t, base+"/secrets-old/token", "sibling-secret")
	writeFile(t, base+"/outside/token", "outside-secret")
	writeFile(t, base+"/skills/data/f", "allowed-data")
	writeFile(t, base+"/skills-old/f", "sibling-data")
	writeFile(t, base+"/outside/f", "outside-data")
	t.Setenv("SKILLBOX_TEST_RELAYED_TOKEN", "allowed-env")
	t.Setenv("SKILLBOX_TEST_OTHER", "other-env")
	mount := []approval.File{{Path: "/data", Host: base + "/skills/data", Access: manifest.AccessReadWrite}}

	f.applied(t, approval.Grant{Secrets: map[string]string{"TOKEN": "file:" + base + "/secrets/app/token"}, Files: mount}, "git 1")
	if tok, data := f.call(t); tok != "allowed-secret" || data != "allowed-data" {
		t.Fatalf("allowed file and directory: TOKEN %q, read %q", tok, data)
	}
	f.applied(t, approval.Grant{Secrets: map[string]string{"TOKEN": "env:SKILLBOX_TEST_RELAYED_TOKEN"}, Files: mount}, "git 2")
	if tok, data := f.call(t); tok != "allowed-env" || data != "allowed-data" {
		t.Fatalf("allowed env prefix: TOKEN %q, read %q", tok, data)
	}

	// .. out of the allowed directory: such a path does not even load.
	f.refused(t, approval.Grant{Secrets: map[string]string{"TOKEN": "file:" + base + "/secrets/../outside/token"}, Files: mount},
		`grant.secrets.TOKEN: "file:`+base+`/secrets/../outside/token": the file must be an absolute, clean path`, "allowed-env", "allowed-data")
	f.refused(t, approval.Grant{Secrets: map[string]string{"TOKEN": "file:" + base + "/secrets-old/token"}, Files: mount},
		"grant.secrets.TOKEN: source file:"+base+"/secrets-old/token is not allowed (--kube-relayed-secret-sources: file:"+base+"/secrets/,env:SKILLBOX_TEST_RELAYED_*)",
		"allowed-env", "allowed-data")
	f.refused(t, approval.Grant{Secrets: map[string]string{"TOKEN": "env:SKILLBOX_TEST_OTHER"}, Files: mount},
		"grant.secrets.TOKEN: source env:SKILLBOX_TEST_OTHER is not allowed", "allowed-env", "allowed-data")
	f.refused(t, approval.Grant{Secrets: map[string]string{"TOKEN": "env:SKILLBOX_TEST_RELAYED_TOKEN"},
		Files: []approval.File{{Path: "/data", Host: base + "/skills-old", Access: manifest.AccessReadWrite}}},
		"grant.files[0].host: "+base+"/skills-old (for /data) is not allowed (--kube-relayed-host-dirs: "+base+"/skills)", "allowed-env", "allowed-data")
	f.refused(t, approval.Grant{Secrets: map[string]string{"TOKEN": "env:SKILLBOX_TEST_RELAYED_TOKEN"},
		Files: []approval.File{{Path: "/data", Host: base + "/skills/../outside", Access: manifest.AccessReadWrite}}},
		`grant.files[0].host: "`+base+`/skills/../outside": must be an absolute, clean path`, "allowed-env", "allowed-data")
	f.refused(t, approval.Grant{Secrets: map[string]string{"TOKEN": "env:SKILLBOX_TEST_RELAYED_TOKEN"},
		Files: []approval.File{{Path: "/data", Host: base, Access: manifest.AccessReadWrite}}},
		"grant.files[0].host: "+base+" (for /data) is not allowed", "allowed-env", "allowed-data")
}
