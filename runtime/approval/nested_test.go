package approval

import (
	"errors"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/manifest"
)

// A read-only host directory that is, or is inside, a read-write one of the same grant
// is writable through the read-write mount: the manifest may not ask for nested guest
// paths ("grant one or the other"), and the grant may not nest host directories that
// way either (security review). A read-write directory inside a read-only one gives
// nothing more and is allowed, as are directories beside each other.
func TestReadOnlyHostInsideReadWriteIsRefused(t *testing.T) {
	m := testManifest(t) // /data read, /scratch read-write
	files := func(data, scratch string) Grant {
		return Grant{Files: []File{
			{Path: "/data", Host: data, Access: manifest.AccessRead},
			{Path: "/scratch", Host: scratch, Access: manifest.AccessReadWrite},
		}}
	}
	for _, c := range []struct{ data, scratch string }{
		{"/srv/ws/config", "/srv/ws"},
		{"/srv/ws", "/srv/ws"},
		{"/srv/ws/a/b", "/srv"},
	} {
		err := CheckGrant(m, files(c.data, c.scratch), "grant")
		if err == nil || !strings.Contains(err.Error(), "grant.files[0].host") || !strings.Contains(err.Error(), "/scratch") {
			t.Errorf("read-only %s under read-write %s: %v", c.data, c.scratch, err)
		}
	}
	for _, c := range []struct{ data, scratch string }{
		{"/srv/ws", "/srv/ws/out"},
		{"/srv/ws", "/srv/ws2"},
		{"/srv/a", "/srv/b"},
	} {
		if err := CheckGrant(m, files(c.data, c.scratch), "grant"); err != nil {
			t.Errorf("read-only %s beside read-write %s: %v", c.data, c.scratch, err)
		}
	}
}

// A caller the approval does not list is refused in one sentence that says where the
// list is (not who is on it), and the refusal is still ErrCallerNotAllowed.
func TestCheckCallerWords(t *testing.T) {
	a := &Approval{Skill: "hello", Grant: Grant{Callers: []string{"token:agent"}}}
	err := CheckCaller(a, "unix:uid=0")
	if !errors.Is(err, ErrCallerNotAllowed) {
		t.Fatalf("%v is not ErrCallerNotAllowed", err)
	}
	if want := "unix:uid=0 may not call hello: the approval's callers do not list it"; err.Error() != want {
		t.Fatalf("got %q, want %q", err, want)
	}
	if err := CheckCaller(a, "token:agent"); err != nil {
		t.Fatal(err)
	}
}
