package engine_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/signing"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

// exampleSkill writes an unsigned package directory holding testdata/echo.wasm.
func exampleSkill(dir string) error {
	code, err := os.ReadFile("testdata/echo.wasm")
	if err != nil {
		return err
	}
	sum := sha256.Sum256(code)
	yaml := "apiVersion: skillbox/v1\nname: echo\nversion: 1.0.0\ndescription: Echo the input.\n" +
		"sandbox:\n  wasm:\n    module: module.wasm\n    sha256: " + hex.EncodeToString(sum[:]) + "\n" +
		"input: {type: object}\noutput: {type: object}\n"
	if err := os.WriteFile(filepath.Join(dir, "module.wasm"), code, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, skillpkg.ManifestFile), []byte(yaml), 0o644)
}

// The operator's path: a skill home trusting one key, a package signed with it,
// installed, approved as asked, and called.
func ExampleEngine_Invoke() {
	ctx := context.Background()
	home, _ := os.MkdirTemp("", "skillbox-home-")
	defer os.RemoveAll(home)
	pkgDir, _ := os.MkdirTemp("", "skillbox-pkg-")
	defer os.RemoveAll(pkgDir)

	// trust.yaml names the key that signs releases.
	privPEM, pubPEM, err := signing.GenerateKey(nil)
	if err != nil {
		log.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(home, "release.pub"), pubPEM, 0o600)
	_ = os.WriteFile(filepath.Join(home, "trust.yaml"), []byte("signers:\n  - name: release\n    key: release.pub\n"), 0o600)

	// A signed package: the bundle covers skill.yaml and the module.
	if err := exampleSkill(pkgDir); err != nil {
		log.Fatal(err)
	}
	pkg, err := skillpkg.Load(pkgDir)
	if err != nil {
		log.Fatal(err)
	}
	key, _ := signing.ParsePrivateKey(privPEM, nil)
	manifestSubj, code := pkg.Subjects()
	bundle, err := signing.SignSkill(ctx, manifestSubj, code, signing.KeySigner(key))
	if err != nil {
		log.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(pkgDir, skillpkg.BundleFile), bundle, 0o644)

	ws, err := wasm.New(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer ws.Close(ctx)
	eng, err := engine.Open(ctx, engine.Config{Home: home, Sandboxes: map[string]isolation.Sandbox{manifest.KindWasm: ws}})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	if _, err := eng.Install(ctx, pkgDir, "operator"); err != nil {
		log.Fatal(err)
	}
	cand, err := eng.Candidate(ctx, "echo", "")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := eng.Approve(ctx, cand, nil, "operator"); err != nil {
		log.Fatal(err)
	}

	res, err := eng.Invoke(ctx, engine.Request{Skill: "echo", Input: []byte(`{"hello":"world"}`), Caller: "agent"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(res.Output), res.Version, res.AuditID != "")

	// A name that is not installed is refused, and the refusal is recorded too.
	_, err = eng.Invoke(ctx, engine.Request{Skill: "nope", Input: []byte(`{}`), Caller: "agent"})
	fmt.Println(engine.ReasonOf(err))
	// Output:
	// {"hello":"world"} 1.0.0 true
	// NOT_FOUND
}

// The author's inner loop: an unsigned directory, run with exactly what its manifest
// asks, without a skill home.
func ExampleAuthor_InvokeUnverified() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "skillbox-pkg-")
	defer os.RemoveAll(dir)
	if err := exampleSkill(dir); err != nil {
		log.Fatal(err)
	}
	ws, err := wasm.New(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer ws.Close(ctx)
	author := engine.NewAuthor(map[string]isolation.Sandbox{manifest.KindWasm: ws}, nil)
	res, err := author.InvokeUnverified(ctx, engine.UnverifiedRequest{Dir: dir, Input: []byte(`{"n":1}`)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(res.Output))
	// Output:
	// {"n":1}
}
