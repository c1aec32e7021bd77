package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/skillbox-dev/skillbox/internal/cli/base"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/review"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/host"
	"github.com/skillbox-dev/skillbox/runtime/store"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

func reviewCommand() *cli.Command {
	return &cli.Command{
		Name:      "review",
		Usage:     "say in plain words what a skill can do, its limits, signer and digests",
		ArgsUsage: "DIR|NAME",
		UsageText: "skillbox review DIR|NAME [--json] [--pin VERSION|DIGEST]\n\nExample:\n  skillbox review ./hello\n  skillbox review ./hello --json | jq .risks\n  skillbox review fetch          # an installed skill: what is new since the approved version comes first",
		Description: "DIR: loads and validates a package directory (the code must match the digest in\n" +
			"skill.yaml) and prints each origin, file path and mode, env and secret name and limit,\n" +
			"with risk notes. Signatures are not checked for a directory (use skillbox verify).\n" +
			"NAME: the newest installed version (or --pin), verified against trust.yaml, its signer,\n" +
			"and first what it asks beyond the approved version (new origins, widened files, raised limits).",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the review as JSON"},
			&cli.StringFlag{Name: "pin", Usage: "installed skills: review this version or manifest digest (default: the newest)"},
			homeFlag(),
		},
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) != 1 {
				return usagef("review: want exactly one DIR, FILE.tar.gz or NAME (see skillbox review --help)")
			}
			dir := args[0]
			if st, err := os.Stat(dir); err == nil && !st.IsDir() {
				// A file: a packed .tar.gz is reviewed from a private copy; anything
				// else is said to be the wrong kind of argument.
				if !strings.HasSuffix(dir, ".tar.gz") && !strings.HasSuffix(dir, ".tgz") {
					return fmt.Errorf("review: %s is a file; review takes a package directory, a packed FILE.tar.gz or an installed skill's name", dir)
				}
				tmp, err := os.MkdirTemp("", "skillbox-review-")
				if err != nil {
					return fmt.Errorf("review: %w", err)
				}
				defer os.RemoveAll(tmp)
				if err := skillpkg.Extract(dir, tmp); err != nil {
					return fmt.Errorf("review %s: %w", dir, err)
				}
				return reviewDir(c, tmp, "unpack "+dir+" and run skillbox verify on it, or skillbox install it")
			}
			isDir, err := isPackageDir(c, dir)
			if err != nil {
				return fmt.Errorf("review: %w", err)
			}
			if !isDir {
				return reviewInstalled(c, dir)
			}
			return reviewDir(c, dir, "skillbox verify "+dir)
		},
	}
}

// reviewDir reviews the package directory dir; verifyHint says how to check its
// signature.
func reviewDir(c *cli.Context, dir, verifyHint string) error {
	p, err := skillpkg.Load(dir)
	if err != nil {
		return fmt.Errorf("review: %s", authorError(err))
	}
	r := review.Describe(p.Manifest)
	moduleKind(&r, p.Manifest, dir)
	r.ManifestDigest = skillpkg.ManifestDigest(p.ManifestBytes)
	r.CodeDigest = p.CodeDigest().String()
	if p.HasBundle {
		r.Signer = "bundle present, not verified here (" + verifyHint + ")"
	}
	if c.Bool("json") {
		b, err := r.JSON()
		if err != nil {
			return fmt.Errorf("review: %w", err)
		}
		_, err = fmt.Fprintf(c.App.Writer, "%s\n", b)
		return err
	}
	return r.WriteText(c.App.Writer)
}

// reviewInstalled reviews the newest installed version of name (or --pin): verified
// against trust.yaml, with what it asks beyond the approved version shown first.
func reviewInstalled(c *cli.Context, name string) error {
	h, err := openHost(c, host.Options{NoSandboxes: true})
	if err != nil {
		return fmt.Errorf("review: %w", err)
	}
	defer h.Close()
	eng := h.Engine()
	cand, err := eng.Candidate(c.Context, name, c.String("pin"))
	if engine.ReasonOf(err) == engine.ReasonNotFound && c.String("pin") == "" {
		return fmt.Errorf("review: %s: no such package directory, and no installed skill by that name", name)
	}
	if err != nil {
		return fmt.Errorf("review: %w", notInstalledWords(c, name, err))
	}
	return writeCandidateReview(c.App.Writer, cand, c.Bool("json"), false)
}

// moduleKind sets r's wasm kind, when the manifest of the package in dir does not
// declare it, from what its module exports: the same `kind:` line for a directory and
// an installed skill.
func moduleKind(r *review.Report, m *manifest.Manifest, dir string) {
	if w := m.Sandbox.Wasm; w != nil && r.WasmKind == "" {
		if code, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(w.Module))); err == nil {
			r.WasmKind, _ = wasm.KindOf(code)
		}
	}
}

// notInstalledWords says what is installed when review or approve finds nothing under
// name (and --pin): the versions of name that are, or that none is and where to look.
// Any other error is returned as it is.
func notInstalledWords(c *cli.Context, name string, err error) error {
	if engine.ReasonOf(err) != engine.ReasonNotFound {
		return err
	}
	pin := c.String("pin")
	var versions []string
	if root, herr := base.HomeRoot(c); herr == nil {
		if st, serr := store.Open(root); serr == nil {
			entries, _ := st.Versions(name)
			for _, e := range entries {
				versions = append(versions, e.Version)
			}
		}
	}
	switch {
	case len(versions) == 0:
		return fmt.Errorf("no skill named %s is installed (skillbox skills lists them; skillbox install PACKAGE adds one)", name)
	case pin != "":
		return fmt.Errorf("%s@%s is not installed; installed versions of %s: %s (--pin takes one, or a sha256: manifest digest)", name, pin, name, strings.Join(versions, ", "))
	}
	return err
}
