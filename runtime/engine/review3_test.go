package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
	"github.com/skillbox-dev/skillbox/runtime/store"
)

// A copy of an installed package whose code was changed, pulled from another
// reference, is refused, and the store keeps the origin of the package it holds:
// other replicas pull the installed package by that reference, and would get the
// changed copy, and refuse it, if the refused install had recorded its own.
func TestRefusedReinstallKeepsOrigin(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	dir := f.home.Build(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody})
	const good = "oci://registry.test/echo@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const bad = "oci://registry.test/other@sha256:2222222222222222222222222222222222222222222222222222222222222222"
	first, err := f.eng.InstallFrom(ctx, dir, "t", engine.Origin{Source: good, Ref: good})
	if err != nil {
		t.Fatal(err)
	}
	module := filepath.Join(dir, "module.wasm")
	code, err := os.ReadFile(module)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(module, append(code, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.InstallFrom(ctx, dir, "t", engine.Origin{Source: bad, Ref: bad}); err == nil {
		t.Fatal("install of a changed copy: no error")
	}
	got, err := store.Origin(f.home.Dir, first.Entry.ManifestDigest)
	if err != nil || got != good {
		t.Fatalf("origin after a refused install from %s: %q %v; want %s", bad, got, err, good)
	}
}
