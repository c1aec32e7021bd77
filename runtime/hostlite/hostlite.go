// Package hostlite is the part of a skillbox host that running a wasm skill
// directory needs: where the skill home is and its compile cache, the wasm sandbox
// over that cache, and the author's unverified path over that sandbox. Package host
// builds on it; the lean `skillbox` front (cmd/skillbox) uses it alone, so that the
// author's loop links neither Docker, Kubernetes, the store, the audit log nor the
// metrics library, and starts fast (issue 18, docs/rationale.md).
package hostlite

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/runner"
)

// EnvHome is the environment variable that names the skill home.
const EnvHome = "SKILLBOX_HOME"

// DefaultHomeDir is the skill home's directory inside the user's home directory when
// $SKILLBOX_HOME is not set.
const DefaultHomeDir = ".skillbox"

// ResolveHome is the skill home's root: dir (a --home flag), or else $SKILLBOX_HOME,
// or else ~/.skillbox, made absolute. Nothing is created.
func ResolveHome(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv(EnvHome)
	}
	if dir == "" {
		user, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no %s and no home directory: %w", EnvHome, err)
		}
		return filepath.Join(user, DefaultHomeDir), nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("skill home %s: %w", dir, err)
	}
	return abs, nil
}

// CacheDir is the home's cache/: compiled code, shared by the server, run and install.
func CacheDir(root string) string { return filepath.Join(root, "cache") }

// SchemaChecks is manifest.SchemaChecks kept in the home's cache (cache/schemas/, one
// empty file per schema that passed its metaschema check), beside the compiled code
// the cache already holds, which is trusted more: it runs. A file that cannot be
// read or written only costs the check again.
type SchemaChecks struct{ dir string }

// NewSchemaChecks keeps schema checks in the cache of the home at root.
func NewSchemaChecks(root string) SchemaChecks {
	return SchemaChecks{dir: filepath.Join(CacheDir(root), "schemas")}
}

// Known reports whether a schema with this sum passed before.
func (s SchemaChecks) Known(sum [32]byte) bool {
	_, err := os.Stat(s.path(sum))
	return err == nil
}

// Passed records a schema that passed.
func (s SchemaChecks) Passed(sum [32]byte) {
	if os.MkdirAll(s.dir, 0o700) == nil {
		_ = os.WriteFile(s.path(sum), nil, 0o600)
	}
}

func (s SchemaChecks) path(sum [32]byte) string {
	return filepath.Join(s.dir, hex.EncodeToString(sum[:]))
}

// OpenWasm opens the wasm sandbox with the home's compile cache, so that the server,
// run and install share compiled code and a restart does not recompile.
func OpenWasm(ctx context.Context, root string) (*wasm.Sandbox, error) {
	if err := os.MkdirAll(CacheDir(root), 0o700); err != nil {
		return nil, fmt.Errorf("wasm sandbox: cache: %w", err)
	}
	ws, err := wasm.New(ctx, wasm.WithCacheDir(CacheDir(root)))
	if err != nil {
		return nil, fmt.Errorf("wasm sandbox: %w", err)
	}
	return ws, nil
}

// Author runs `skillbox run DIR`'s unverified calls over one sandbox.
type Author struct {
	*runner.Author
	close func(context.Context) error
}

// NewAuthor is an Author over sb, closed by closer.
func NewAuthor(a *runner.Author, closer func(context.Context) error) *Author {
	return &Author{Author: a, close: closer}
}

// Close closes the author's sandbox.
func (a *Author) Close() error { return a.close(context.Background()) }

// OpenWasmAuthor opens the author's path over the wasm sandbox of the home at root.
func OpenWasmAuthor(ctx context.Context, root string) (*Author, error) {
	ws, err := OpenWasm(ctx, root)
	if err != nil {
		return nil, err
	}
	r := runner.New(map[string]isolation.Sandbox{manifest.KindWasm: ws}, nil, nil)
	return NewAuthor(runner.NewAuthor(r), ws.Close), nil
}
