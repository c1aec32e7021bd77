package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
	"github.com/skillbox-dev/skillbox/runtime/server"
)

const listBody = "input: {type: object}\noutput: {type: object}\n"

// installFour installs open (any caller), mine (this test's caller), theirs (another
// caller only) and pending (not approved).
func installFour(t *testing.T, f *fixture) {
	t.Helper()
	pkg := func(name string) testkit.Package {
		return testkit.Package{Name: name, Version: "1.0.0", Module: echoWasm, Body: listBody}
	}
	f.installApprove(t, pkg("open"), nil)
	f.installApprove(t, pkg("mine"), &approval.Grant{Callers: []string{server.LocalAdmin()}})
	f.installApprove(t, pkg("theirs"), &approval.Grant{Callers: []string{"token:someone-else"}})
	f.install(t, pkg("pending"))
}

func listNames(t *testing.T, f *fixture, callable bool) string {
	t.Helper()
	res, err := f.skills.List(context.Background(), &pb.ListSkillsRequest{Callable: callable})
	if err != nil {
		t.Fatal(err)
	}
	var n []string
	for _, s := range res.GetSkills() {
		n = append(n, s.GetName())
	}
	return strings.Join(n, ",")
}

// TestListByCaller: List with callable set is what the caller may call now (the MCP
// door's tools); without it a skill whose approval names other callers is hidden from
// a caller who is not an admin, and shown to an admin.
func TestListByCaller(t *testing.T) {
	t.Run("not an admin", func(t *testing.T) {
		f := newFixture(t, server.WithAdmins("cert:ops")) // this test's uid is not an admin
		installFour(t, f)
		if got := listNames(t, f, false); got != "mine,open,pending" {
			t.Errorf("List: %s, want mine,open,pending (theirs names another caller)", got)
		}
		if got := listNames(t, f, true); got != "mine,open" {
			t.Errorf("List callable: %s, want mine,open", got)
		}
	})
	t.Run("admin", func(t *testing.T) {
		f := newFixture(t)
		installFour(t, f)
		if got := listNames(t, f, false); got != "mine,open,pending,theirs" {
			t.Errorf("List: %s, want every skill for an admin", got)
		}
		if got := listNames(t, f, true); got != "mine,open" {
			t.Errorf("List callable: %s, want mine,open (an admin may not call theirs either)", got)
		}
		if _, err := f.admin.Disable(context.Background(), &pb.DisableRequest{Name: "open", Reason: "test"}); err != nil {
			t.Fatal(err)
		}
		if got := listNames(t, f, true); got != "mine" {
			t.Errorf("List callable after disabling open: %s, want mine", got)
		}
	})
}

// TestWatch: one message at once, one after a change, and the stream ends when the
// server shuts down (a graceful stop is not held open by watchers).
func TestWatch(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := f.skills.Watch(ctx, &pb.WatchSkillsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("first message: %v", err)
	}
	f.installApprove(t, testkit.Package{Name: "fresh", Version: "1.0.0", Module: echoWasm, Body: listBody}, nil)
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("message after an approve: %v", err)
	}
	f.srv.Shutdown()
	for {
		if _, err := stream.Recv(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("after Shutdown: %v, want the stream ended (EOF)", err)
			}
			return
		}
	}
}

// TestListShowsBrokeredSecrets: a brokered secret is listed by name, header and the
// origins it is really sent to (the manifest's, narrowed by the grant's secretOrigins);
// a plain secret is a name only; the value is nowhere in the answer.
func TestListShowsBrokeredSecrets(t *testing.T) {
	f := newFixture(t)
	const a, b = "https://api.example.test", "https://uploads.example.test"
	body := listBody + `capabilities:
  network: ["` + a + `", "` + b + `"]
  secrets:
    - PLAIN_KEY
    - name: API_TOKEN
      origins: ["` + a + `", "` + b + `"]
      header: X-Api-Key
`
	t.Setenv("SKILLBOX_TEST_LIST_TOKEN", "list-value-0123456789")
	oa, _ := manifest.ParseOrigin(a)
	ob, _ := manifest.ParseOrigin(b)
	f.installApprove(t, testkit.Package{Name: "api", Version: "1.0.0", Module: echoWasm, Body: body}, &approval.Grant{
		Network:       []manifest.Origin{oa, ob},
		Secrets:       map[string]string{"API_TOKEN": "env:SKILLBOX_TEST_LIST_TOKEN", "PLAIN_KEY": "env:SKILLBOX_TEST_LIST_TOKEN"},
		SecretOrigins: map[string][]manifest.Origin{"API_TOKEN": {ob}},
	})
	for _, callable := range []bool{false, true} {
		res, err := f.skills.List(context.Background(), &pb.ListSkillsRequest{Callable: callable})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.GetSkills()) != 1 {
			t.Fatalf("List(callable %v): %d skills", callable, len(res.GetSkills()))
		}
		caps := res.GetSkills()[0].GetCapabilities()
		names := slices.Sorted(slices.Values(caps.GetSecrets()))
		bs := caps.GetBrokeredSecrets()
		if !slices.Equal(names, []string{"API_TOKEN", "PLAIN_KEY"}) || len(bs) != 1 || bs[0].GetName() != "API_TOKEN" ||
			bs[0].GetHeader() != "X-Api-Key" || !slices.Equal(bs[0].GetOrigins(), []string{b}) {
			t.Fatalf("List(callable %v): secrets %v, brokered %v; want API_TOKEN brokered as X-Api-Key to %s only", callable, names, bs, b)
		}
		if wire, _ := proto.Marshal(res); bytes.Contains(wire, []byte("list-value-0123456789")) {
			t.Fatal("the listing holds the secret's value")
		}
	}
}
