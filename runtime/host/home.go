// Package host is the $SKILLBOX_HOME layout and the assembly of a running skillbox:
// which file and directory of a skill home holds what (Home), and the sandboxes by
// kind, the engine and the doors in to it, reload and drain (Open, Host.Serve). The
// command line parses flags, calls one function here and prints what it reports.
//
// The packages below keep the name of the part of the home they own (store:
// skills/ and disabled/, approval: approvals/, audit: audit/, engine: trust.yaml,
// transport: the socket), beside the code that depends on its format; Home is the
// one place that knows the whole layout, and the only place $SKILLBOX_HOME is read.
package host

import (
	"errors"
	"path/filepath"

	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/hostlite"
	"github.com/skillbox-dev/skillbox/runtime/store"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

// EnvHome is the environment variable that names the skill home.
const EnvHome = hostlite.EnvHome

// DefaultHomeDir is the skill home's directory inside the user's home directory when
// $SKILLBOX_HOME is not set.
const DefaultHomeDir = hostlite.DefaultHomeDir

// Home is one skill home: the operator's trust policy, installed packages, approvals,
// kill-switch state, audit log, compile cache and default socket. Its zero value is
// no home; ResolveHome makes one.
type Home struct{ root string }

// ResolveHome is the skill home dir (a --home flag), or else $SKILLBOX_HOME, or else
// ~/.skillbox, made absolute. Nothing is created.
func ResolveHome(dir string) (Home, error) {
	root, err := hostlite.ResolveHome(dir)
	if err != nil {
		return Home{}, err
	}
	return Home{root: root}, nil
}

// errNoHome is the zero Home used where a home is needed.
var errNoHome = errors.New("no skill home")

// Dir is the home's root directory.
func (h Home) Dir() string { return h.root }

// Trust is trust.yaml, which signers are trusted.
func (h Home) Trust() string { return engine.TrustFile(h.root) }

// Keys is keys/, where trust.yaml's relative key paths conventionally point
// ("key: keys/acme.pub"); skillbox itself reads only what trust.yaml names.
func (h Home) Keys() string { return filepath.Join(h.root, "keys") }

// Skills is skills/, the installed packages (content-addressed, read-only).
func (h Home) Skills() string { return store.SkillsDir(h.root) }

// Disabled is disabled/, the kill-switch state that survives restarts.
func (h Home) Disabled() string { return store.DisabledDir(h.root) }

// Approvals is approvals/, one NAME.yaml per approved skill.
func (h Home) Approvals() string { return approval.Dir(h.root) }

// Approval is the approval file of the skill name.
func (h Home) Approval(name string) string { return approval.Path(h.root, name) }

// AuditDir is audit/, the audit log and its lock and side files.
func (h Home) AuditDir() string { return audit.Dir(h.root) }

// AuditLog is the audit log file.
func (h Home) AuditLog() string { return filepath.Join(h.AuditDir(), audit.FileName) }

// Cache is cache/, compiled wasm code kept across restarts.
func (h Home) Cache() string { return hostlite.CacheDir(h.root) }

// Socket is the server's default address, a unix socket in the home, in the form
// --listen and --server take ("unix:///abs/home/skillbox.sock").
func (h Home) Socket() string { return transport.DefaultSocket(h.root) }

// String is the home's directory.
func (h Home) String() string { return h.root }
