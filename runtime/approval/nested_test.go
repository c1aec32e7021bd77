package approval

import (
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
