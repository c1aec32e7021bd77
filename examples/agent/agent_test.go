package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/server"
	"github.com/skillbox-dev/skillbox/runtime/transport"
	"github.com/skillbox-dev/skillbox/signing"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

// serve starts a real in-process server (engine, wasm sandbox, gRPC on a unix socket)
// on a fresh home with one trusted key and two skills installed, signed and approved:
// the WAT skill `upper`, and `errecho`, which always fails. It returns the server's address and the engine.
func serve(t *testing.T) (string, *engine.Engine) {
	t.Helper()
	ctx := context.Background()
	home := t.TempDir()

	priv, pub, err := signing.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := signing.ParsePrivateKey(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(home, "release.pub"), pub)
	write(t, filepath.Join(home, "trust.yaml"), []byte("signers:\n  - name: example-release\n    key: release.pub\n"))

	ws, err := wasm.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close(ctx) })
	eng, err := engine.Open(ctx, engine.Config{Home: home, Sandboxes: map[string]isolation.Sandbox{manifest.KindWasm: ws}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })

	// The packages: a copy of examples/wat-skill/upper, and errecho (a module that
	// writes its input to stderr and exits 1), each signed, installed and approved.
	read := func(path string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	errecho := read(filepath.Join("..", "..", "runtime", "engine", "testdata", "stdinerr.wasm"))
	sum := sha256.Sum256(errecho)
	for _, p := range []struct {
		name           string
		manifest, code []byte
	}{
		{"upper", read(filepath.Join("..", "wat-skill", "upper", "skill.yaml")), read(filepath.Join("..", "wat-skill", "upper", "module.wasm"))},
		{"errecho", []byte("apiVersion: skillbox/v1\nname: errecho\nversion: 1.0.0\ndescription: Writes its input to stderr and fails.\n" +
			"sandbox:\n  wasm:\n    module: module.wasm\n    sha256: \"" + hex.EncodeToString(sum[:]) + "\"\n" +
			"input: {type: object}\noutput: {type: object}\nlimits: {timeout: 2s, memory: 16MiB}\n"), errecho},
	} {
		pkgDir := t.TempDir()
		write(t, filepath.Join(pkgDir, "skill.yaml"), p.manifest)
		write(t, filepath.Join(pkgDir, "module.wasm"), p.code)
		pkg, err := skillpkg.Load(pkgDir)
		if err != nil {
			t.Fatal(err)
		}
		manifestSubj, code := pkg.Subjects()
		bundle, err := signing.SignSkill(ctx, manifestSubj, code, signing.KeySigner(key))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(pkgDir, skillpkg.BundleFile), bundle)
		if _, err := eng.Install(ctx, pkgDir, "test"); err != nil {
			t.Fatal(err)
		}
		cand, err := eng.Candidate(ctx, p.name, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eng.Approve(ctx, cand, nil, "test"); err != nil {
			t.Fatal(err)
		}
	}

	lis, opts, err := transport.Listen(ctx, transport.ServerConfig{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(opts...)
	server.New(eng, transport.Caller).Register(g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return transport.DefaultSocket(home), eng
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAgentListsAndCalls(t *testing.T) {
	addr, eng := serve(t)
	ctx := context.Background()

	var out, errOut bytes.Buffer
	code := run(ctx, []string{"--server", addr, "--call", `upper={"text":"hello, agent"}`}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q\n%s", code, errOut.String(), out.String())
	}
	for _, want := range []string{
		"upper 0.1.0 (enabled, signed by example-release)",
		`input:  {"$schema":`,
		"grant:  nothing (no network, files, env or secrets)",
		"limits: timeout 2s, memory 16MiB, output 8MiB\n",
		`✓ {"text":"HELLO, AGENT"}`,
		"1 call(s): 1 ok, 0 failed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	// Refusals, as an agent sees them: the ErrorDetail's reason, then the message.
	refused := func(call, want string) {
		t.Helper()
		out.Reset()
		if code := run(ctx, []string{"--server", addr, "--list=false", call}, &out, &errOut); code != 1 {
			t.Errorf("%s: exit %d, want 1 (a call failed, as skillbox exits)\n%s", call, code, out.String())
		}
		if !strings.Contains(out.String(), want) {
			t.Errorf("%s: output lacks %q:\n%s", call, want, out.String())
		}
	}
	refused(`upper={"text":1}`, "✗ INVALID_INPUT: ")
	refused(`nosuch={}`, "✗ NOT_FOUND: ")
	// A call that ran and failed: what it left, from the ErrorDetail.
	refused(`errecho={"in":"bad input: no name"}`, "✗ SKILL_FAILED: ")
	if !strings.Contains(out.String(), "    it ran ") || !strings.Contains(out.String(), `last log line: {"in":"bad input: no name"}`) {
		t.Errorf("a failed call that ran: output lacks its usage and last log line:\n%s", out.String())
	}
	if _, err := eng.Disable(ctx, "upper", "test", "testing the kill switch"); err != nil {
		t.Fatal(err)
	}
	refused(`upper={"text":"x"}`, "✗ DISABLED: upper is disabled by the operator: testing the kill switch [FAILED_PRECONDITION, audit ")
}

func TestAgentBadUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	// Exit statuses as skillbox's: 2 for a command line that is wrong, 1 for an agent
	// that could not work.
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--server", "unix:///nonexistent/skillbox.sock", "not-a-call"}, 2},
		{[]string{"--server", "unix:///nonexistent/skillbox.sock", `x={bad json`}, 2},
		{[]string{"--server", "unix:///nonexistent/skillbox.sock", "--call", "not-a-call"}, 2},
		{[]string{"--no-such-flag"}, 2},
		{[]string{"--server", "unix-abstract:skillbox"}, 1},            // refused by transport.Dial: no file mode guards it
		{[]string{"--server", "unix:///nonexistent/skillbox.sock"}, 1}, // no server: List fails with one line
	} {
		args := tc.args
		errOut.Reset()
		if code := run(context.Background(), args, &out, &errOut); code != tc.code {
			t.Errorf("%v: exit %d, want %d", args, code, tc.code)
		}
		if slices.Contains(args, "--call") || args[0] == "--no-such-flag" {
			continue // refused by the flag package, which prints its usage after the line
		}
		if msg := strings.TrimSpace(errOut.String()); msg == "" || strings.Contains(msg, "\n") {
			t.Errorf("%v: stderr %q, want one line", args, msg)
		}
	}
}
