// Package testkit builds what the runtime's tests need from real parts: a skill home
// with a signing key in trust.yaml, and signed wasm packages made from a module and a
// manifest. It is used by tests only.
package testkit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/signing"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

// Home is a skill home whose trust.yaml trusts one freshly generated key.
type Home struct {
	Dir    string
	Signer signing.Signer
	PubPEM []byte
}

// SignerName is the trust.yaml name of the Home's key.
const SignerName = "test-release"

// NewHome makes a skill home in a temp dir with a trusted key.
func NewHome(t testing.TB) *Home {
	t.Helper()
	dir := t.TempDir()
	privPEM, pubPEM, err := signing.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := signing.ParsePrivateKey(privPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keys", "release.pub"), pubPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	trust := fmt.Sprintf("signers:\n  - name: %s\n    key: keys/release.pub\n", SignerName)
	if err := os.WriteFile(filepath.Join(dir, "trust.yaml"), []byte(trust), 0o600); err != nil {
		t.Fatal(err)
	}
	return &Home{Dir: dir, Signer: signing.KeySigner(priv), PubPEM: pubPEM}
}

// Package describes a wasm skill to build.
type Package struct {
	Name, Version string
	Module        string // path of the .wasm file
	// Body is the manifest after the sandbox section: input, output, capabilities,
	// limits (YAML, unindented top-level keys).
	Body string
}

// Build writes a signed package directory for p and returns it.
func (h *Home) Build(t testing.TB, p Package) string {
	t.Helper()
	dir := t.TempDir()
	code, err := os.ReadFile(p.Module)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "module.wasm"), code, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(code)
	m := fmt.Sprintf(`apiVersion: skillbox/v1
name: %s
version: %s
description: A test skill.
sandbox:
  wasm:
    module: module.wasm
    sha256: %s
%s`, p.Name, p.Version, hex.EncodeToString(sum[:]), strings.TrimLeft(p.Body, "\n"))
	if err := os.WriteFile(filepath.Join(dir, skillpkg.ManifestFile), []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	h.Sign(t, dir)
	return dir
}

// Sign (re)signs the package in dir as it is now.
func (h *Home) Sign(t testing.TB, dir string) {
	t.Helper()
	pkg, err := skillpkg.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	manifestSubj, code := pkg.Subjects()
	bundle, err := signing.SignSkill(context.Background(), manifestSubj, code, h.Signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, skillpkg.BundleFile), bundle, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Engine opens an engine on the home with a real wasm sandbox (unless cfg.Sandboxes
// is set); both are closed when the test ends.
func (h *Home) Engine(t testing.TB, cfg engine.Config) *engine.Engine {
	t.Helper()
	ctx := context.Background()
	if cfg.Sandboxes == nil {
		ws, err := wasm.New(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close(ctx) })
		cfg.Sandboxes = map[string]isolation.Sandbox{manifest.KindWasm: ws}
	}
	cfg.Home = h.Dir
	eng, err := engine.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}
