package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/skillbox-dev/skillbox/internal/cli/base"
	"github.com/skillbox-dev/skillbox/signing"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

func packCommand() *cli.Command {
	return &cli.Command{
		Name:      "pack",
		Usage:     "compute the code digest into skill.yaml, validate, optionally archive",
		ArgsUsage: "DIR",
		UsageText: "skillbox pack DIR [-o FILE.tar.gz]\n\nExample:\n  skillbox pack ./hello -o hello-0.1.0.tar.gz",
		Description: "Writes the sha256 of the wasm module (or the image ID of image.tar, computed without\n" +
			"Docker) into skill.yaml, keeping its comments, validates the manifest and prints both\n" +
			"digests (for a container, the image ID, which is not the sha256 of image.tar). With -o\n" +
			"it also writes a deterministic archive of the package.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "also write the package to `FILE.tar.gz`"},
		},
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) != 1 {
				return usagef("pack: want exactly one DIR (see skillbox pack --help)")
			}
			// review knows an archive by its name (.tar.gz, .tgz), and so do people:
			// one called out.zip would be a gzipped tar that says it is something else.
			if out := c.String("output"); out != "" && !strings.HasSuffix(out, ".tar.gz") && !strings.HasSuffix(out, ".tgz") {
				return usagef("pack: -o %q: want FILE.tar.gz or FILE.tgz (the archive is a gzipped tar)", out)
			}
			dir := args[0]
			if err := notAFile(dir); err != nil {
				return fmt.Errorf("pack: %w", err)
			}
			p, err := skillpkg.Fill(dir)
			if err != nil {
				return fmt.Errorf("pack: %s", authorError(err))
			}
			w := c.App.Writer
			fmt.Fprintf(w, "%s %s\n", skillpkg.ManifestFile, skillpkg.ManifestDigest(p.ManifestBytes))
			if p.Manifest.Sandbox.Container != nil {
				// The image ID, not the tarball's sha256: say so, or sha256sum image.tar
				// reads as a mismatch.
				fmt.Fprintf(w, "%s image ID sha256:%s\n", p.Code.Name, p.Code.SHA256)
			} else {
				fmt.Fprintf(w, "%s sha256:%s\n", p.Code.Name, p.Code.SHA256)
			}
			// A bundle signed before the last edit would only be refused at install:
			// say so now, and do not ship it.
			var stale error
			if p.HasBundle {
				bundle, err := os.ReadFile(filepath.Join(dir, skillpkg.BundleFile))
				if err != nil {
					return fmt.Errorf("pack: %w", err)
				}
				manifestSubj, code := p.Subjects()
				stale = signing.StaleBundle(bundle, manifestSubj, code)
			}
			if out := c.String("output"); out != "" && stale != nil {
				return fmt.Errorf("pack: %s does not match the package any more (%v): sign it again before archiving", skillpkg.BundleFile, oneLine(stale))
			} else if stale != nil {
				fmt.Fprintf(c.App.ErrWriter, "skillbox: warning: %s does not match the package any more: sign it again\n", skillpkg.BundleFile)
			}
			if out := c.String("output"); out != "" {
				if err := skillpkg.Archive(dir, out); err != nil {
					return fmt.Errorf("pack: %s", authorError(err))
				}
				fmt.Fprintf(w, "wrote %s\n", out)
			}
			return nil
		},
	}
}

// notAFile refuses a file where pack wants the package directory (skill.yaml, the
// module): Fill's "open hello/skill.yaml/skill.yaml: not a directory" said it badly.
// The package directory is named when the file is in one.
func notAFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() {
		return nil // Fill says what is wrong with it
	}
	parent := filepath.Dir(path)
	if _, err := os.Stat(filepath.Join(parent, skillpkg.ManifestFile)); err == nil {
		return fmt.Errorf("%s is a file; pack takes the package directory (%s)", path, parent)
	}
	return fmt.Errorf("%s is a file; pack takes the package directory", path)
}

// authorError renders an error as one line (base.AuthorError).
func authorError(err error) string { return base.AuthorError(err) }
