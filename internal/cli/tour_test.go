package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A new skill goes from init to a signed, shippable package in the five commands the
// README's tour shows, and the scaffold's Makefile rebuilds when a .go file is added.
func TestInitToSignedPackageInFiveCommands(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is needed: the scaffold's Makefile is part of the tour")
	}
	bin := signBuildCLI(t)
	work := t.TempDir()
	env := append(os.Environ(),
		"PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"SKILLBOX_HOME="+filepath.Join(work, "home"), "SKILLBOX_KEY_PASSWORD=",
		"GOPROXY=off", "GOFLAGS=-buildvcs=false")
	sh := func(args ...string) string {
		t.Helper()
		name := args[0]
		if name == "skillbox" { // the one the Makefile finds on PATH, too
			name = bin
		}
		cmd := exec.Command(name, args[1:]...)
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	// The tour, word for word.
	out := sh("skillbox", "init", "hello")
	if !strings.Contains(out, "next: make -C hello") {
		t.Fatalf("init does not name the next step: %q", out)
	}
	sh("make", "-C", "hello")
	sh("skillbox", "keygen", "--out", "release")
	sh("skillbox", "sign", "hello", "--key", "release.key")
	sh("skillbox", "pack", "hello", "-o", "hello.tar.gz")

	if out := sh("skillbox", "verify", "hello.tar.gz", "--key", "release.pub"); !strings.Contains(out, "verified hello.tar.gz") {
		t.Fatalf("verify: %q", out)
	}

	// A .go file added later is part of the module: make rebuilds it.
	module := filepath.Join(work, "hello", "module.wasm")
	before, err := os.Stat(module)
	if err != nil {
		t.Fatal(err)
	}
	// Everything is made older than the module, so only the new file can be newer.
	old := before.ModTime().Add(-time.Minute)
	ents, err := os.ReadDir(filepath.Join(work, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		at := old.Add(-time.Minute)
		if e.Name() == "module.wasm" {
			at = old
		}
		if err := os.Chtimes(filepath.Join(work, "hello", e.Name()), at, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(work, "hello", "extra.go"), []byte("package main\n\nfunc extra() int { return 1 }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sh("make", "-C", "hello")
	after, err := os.Stat(module)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().After(old) {
		t.Fatal("make did not rebuild module.wasm after a .go file was added")
	}
}
