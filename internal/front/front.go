// Package front is skillbox, the command users type. It runs the author's loop
// (`run DIR` of a wasm skill directory) and `version` itself, and hands every other
// command, help and every typo to skillbox-full, the whole CLI (package cli), found
// next to this binary or else on PATH, by exec: the same process id, signals, stdio
// and exit code, so nothing can tell the two apart but the time it takes to start.
//
// Why two binaries: in Go every linked package's init runs before main, and the
// whole CLI links Kubernetes, Docker, sigstore, OCI, Prometheus and gRPC, which cost
// tens of milliseconds before the first line of any command. This package links
// none of them (TestFrontLinksNoHeavyPackage), so `skillbox run DIR` starts about as
// fast as `wazero run` (docs/rationale.md, issue 18). The flags, help text and output
// of what it runs come from package base, which the whole CLI uses too.
package front

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/skillbox-dev/skillbox/internal/cli/base"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/hostlite"
)

// FullName is the whole CLI's binary, installed beside skillbox.
const FullName = "skillbox-full"

// Main runs the command in args (args[0] the program) and returns the exit code;
// a command it hands to skillbox-full does not return.
func Main(args []string, stdout, stderr *os.File) int {
	if !runsHere(args) {
		return base.Fail(stderr, handOff(args).Error())
	}
	elsewhere := func(*cli.Context) error { return handOff(args) }
	app := &cli.App{
		Name:            base.Name,
		Usage:           base.Usage,
		HideHelpCommand: true,
		Commands: []*cli.Command{
			base.RunCommand(base.RunAction(base.RunOptions{
				Installed:  func(c *cli.Context, _ base.RunFlags) error { return elsewhere(c) },
				Runs:       func(kind string) bool { return kind == manifest.KindWasm },
				Elsewhere:  elsewhere,
				OpenAuthor: openAuthor,
			})),
			base.VersionCommand(),
		},
		Version: base.VersionLine(),
	}
	base.Prepare(app, stdout, stderr)
	return base.Run(app, args)
}

// runsHere reports whether args is a command this binary may run itself: `version`,
// `--version`, and `run` (which still hands an installed skill or a container
// directory over). Anything asking for help goes over, so that help is written by
// one binary only.
func runsHere(args []string) bool {
	if len(args) < 2 {
		return false
	}
	switch args[1] {
	case "--version", "-v":
		return len(args) == 2
	case "run", "version":
	default:
		return false
	}
	for _, a := range args[2:] {
		switch a {
		case "--":
			return true
		case "-h", "-help", "--help", "--generate-bash-completion":
			return false
		}
	}
	return true
}

func openAuthor(ctx context.Context, root, kind string) (base.Author, error) {
	if kind != manifest.KindWasm {
		return nil, fmt.Errorf("no %s sandbox in %s", kind, base.Name) // Runs keeps it out
	}
	return hostlite.OpenWasmAuthor(ctx, root)
}

// fullPath is skillbox-full next to this binary (symbolic links resolved), else on
// PATH.
func fullPath() (string, error) {
	var here string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		here = filepath.Dir(exe)
		p := filepath.Join(here, FullName)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath(FullName); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("help and every command but run DIR of a wasm skill and version are in %s, which is neither next to this skillbox (%s) nor on PATH: put it beside skillbox (make build, or go install ./cmd/skillbox ./cmd/skillbox-full in a checkout of the same version)", FullName, here)
}
