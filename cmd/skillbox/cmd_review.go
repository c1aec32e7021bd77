package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/skillbox-dev/skillbox/review"
	"github.com/skillbox-dev/skillbox/skillpkg"
)

func reviewCommand() *cli.Command {
	return &cli.Command{
		Name:      "review",
		Usage:     "say in plain words what a skill can do, its limits, signer and digests",
		ArgsUsage: "DIR",
		UsageText: "skillbox review DIR [--json]\n\nExample:\n  skillbox review ./hello\n  skillbox review ./hello --json | jq .risks",
		Description: "Loads and validates the package (the code must match the digest in skill.yaml) and\n" +
			"prints each origin, file path and mode, env and secret name and limit, with risk notes.\n" +
			"Signatures are not checked here: the signer shows as \"unsigned\".",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the review as JSON"},
		},
		Action: func(c *cli.Context) error {
			args, err := authorArgs(c)
			if err != nil {
				return fmt.Errorf("review: %w", err)
			}
			if len(args) != 1 {
				return errors.New("review: want exactly one DIR (see skillbox review --help)")
			}
			dir := args[0]
			if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("review: %s: no such package directory (reviewing installed skills by name is not available yet)", dir)
			}
			p, err := skillpkg.Load(dir)
			if err != nil {
				return fmt.Errorf("review: %s", authorError(err))
			}
			r := review.Describe(p.Manifest)
			r.ManifestDigest = skillpkg.ManifestDigest(p.ManifestBytes)
			r.CodeDigest = "sha256:" + p.Code.SHA256
			if c.Bool("json") {
				b, err := r.JSON()
				if err != nil {
					return fmt.Errorf("review: %w", err)
				}
				_, err = fmt.Fprintf(c.App.Writer, "%s\n", b)
				return err
			}
			return r.WriteText(c.App.Writer)
		},
	}
}
