package approval

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/manifest"
)

// A read-only host directory reached through a link into a read-write one of the same
// grant is inside it, as CheckHome compares: links resolved.
func TestReadOnlyHostLinkedInsideReadWriteIsRefused(t *testing.T) {
	m := testManifest(t) // /data read, /scratch read-write
	base := t.TempDir()
	ws := filepath.Join(base, "ws")
	if err := os.MkdirAll(filepath.Join(ws, "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "config")
	if err := os.Symlink(filepath.Join(ws, "config"), link); err != nil {
		t.Fatal(err)
	}
	g := Grant{Files: []File{
		{Path: "/data", Host: link, Access: manifest.AccessRead},
		{Path: "/scratch", Host: ws, Access: manifest.AccessReadWrite},
	}}
	err := CheckGrant(m, g, "grant")
	if err == nil || !strings.Contains(err.Error(), "grant.files[0].host") {
		t.Fatalf("read-only %s (a link to %s/config) beside read-write %s: %v", link, ws, ws, err)
	}
}
