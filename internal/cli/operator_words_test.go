package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// jsonError is the error object a client command prints on stdout with --json.
type jsonError struct {
	Error struct {
		Reason, Message, AuditID string
	}
}

// UX review B5: with --json, pending, skills and calls answer on stdout when they fail,
// with the error object invoke --json prints, not nothing.
func TestClientJSONFailures(t *testing.T) {
	bin := buildCLI(t)
	work := t.TempDir()
	env := []string{"SKILLBOX_HOME=" + filepath.Join(work, "home"), "SKILLBOX_SERVER=", "SKILLBOX_TOKEN="}
	nosock := "unix://" + filepath.Join(work, "no.sock")
	for _, cmd := range []string{"pending", "skills", "calls"} {
		r := signRunCLI(t, bin, env, cmd, "--json", "--server", nosock)
		var got jsonError
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 1 || strings.Count(r.stdout, "\n") != 1 ||
			got.Error.Reason != "UNAVAILABLE" || !strings.HasPrefix(got.Error.Message, "no server answers") {
			t.Errorf("%s --json with no server: exit %d, stdout %q (%v), stderr %q", cmd, r.code, r.stdout, err, r.stderr)
		}
		if want := "skillbox: " + cmd + ": " + got.Error.Message + "\n"; r.stderr != want {
			t.Errorf("%s --json with no server: stderr %q, want %q", cmd, r.stderr, want)
		}
		if r := signRunCLI(t, bin, env, cmd, "--server", nosock); r.stdout != "" {
			t.Errorf("%s without --json prints %q on stdout", cmd, r.stdout)
		}
	}
}
