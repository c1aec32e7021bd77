package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/skillbox-dev/skillbox/skillpkg"
	"github.com/skillbox-dev/skillbox/skillpkg/oci"
)

// registryFlags are how push, install and verify reach a registry.
func registryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "plain-http-unsafe", Usage: "talk plain HTTP to a registry on loopback (nothing authenticates it; refused for any other host)"},
		&cli.StringFlag{Name: "registry-ca", Usage: "PEM `FILE` of CA certificates trusted for the registry besides the system roots"},
		&cli.StringFlag{Name: "docker-config", Usage: "docker config.json with registry credentials (default $DOCKER_CONFIG or ~/.docker; \"-\" for none)"},
	}
}

func registryOptions(c *cli.Context) oci.Options {
	return oci.Options{
		PlainHTTPUnsafe: c.Bool("plain-http-unsafe"),
		CAFile:          c.String("registry-ca"),
		DockerConfig:    c.String("docker-config"),
	}
}

func pushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "push a signed package to an OCI registry, its bundle attached as a referrer; prints the digest",
		ArgsUsage: "DIR REF",
		UsageText: "skillbox push DIR HOST/REPOSITORY[:TAG] [--registry-ca FILE] [--plain-http-unsafe]\n\n" +
			"Example:\n  skillbox push ./fetch registry.example.com/skills/fetch:1.0.0\n" +
			"  skillbox install oci://registry.example.com/skills/fetch@sha256:…   # what push printed",
		Description: "Stores the package as an OCI artifact of type " + oci.ArtifactType + " (layers: skill.yaml and\n" +
			"module.wasm or image.tar) and attaches " + skillpkg.BundleFile + " as a referrer of type\n" +
			oci.BundleMediaType + ", as cosign stores bundles. The package must be signed and its bundle\n" +
			"must match its files (pack, then sign, then push). The same package always pushes to the\n" +
			"same digest. Install by that digest: a tag can be moved by anyone who can push.",
		Flags: registryFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usagef("push: want DIR and REF (see skillbox push --help)")
			}
			dir, ref := c.Args().Get(0), c.Args().Get(1)
			p, err := oci.Push(c.Context, dir, ref, registryOptions(c))
			if err != nil {
				return fmt.Errorf("push: %s", authorError(err))
			}
			fmt.Fprintf(c.App.Writer, "pushed %s %s to %s\n%s\nbundle %s\nnext: skillbox install %s\n",
				p.Name, p.Version, p.Ref, p.Digest, p.Bundle, p.Pinned())
			return nil
		},
	}
}

// missingSource refuses a local package path that does not exist, in words, before
// anything else reads it; one that looks like a registry reference
// (HOST.NAME/REPO, HOST:PORT/REPO, localhost/REPO) gets the oci:// form as the way
// forward. nil when src is a registry reference or exists.
func missingSource(verb, src string) error {
	if oci.IsRef(src) {
		return nil
	}
	if _, err := os.Stat(src); err == nil || !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if host, _, ok := strings.Cut(src, "/"); ok && (strings.ContainsAny(host, ".:") || host == "localhost") &&
		!strings.HasPrefix(src, ".") {
		return fmt.Errorf("%s: no file or directory %s here; a registry reference is written with oci:// (skillbox %s %s%s)",
			verb, src, verb, oci.Scheme, src)
	}
	return fmt.Errorf("%s: no file or directory %s (want a package directory, a .tar.gz made by skillbox pack -o, or oci://REF)", verb, src)
}

// pulled is a registry package fetched into a temporary directory for install or
// verify: dir holds it; done removes it.
type pulled struct {
	dir    string
	origin *oci.Pulled
	done   func()
}

// pullPackage fetches an oci:// reference into a temporary package directory, with
// the same bounds as an archive install; verify, when set, judges each bundle
// referrer (the first it accepts is kept).
func pullPackage(c *cli.Context, ref string, verify func(ctx context.Context, rawManifest, bundle []byte) error) (*pulled, error) {
	tmp, err := os.MkdirTemp("", "skillbox-oci-")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(tmp, "pkg")
	opts := registryOptions(c)
	opts.VerifyBundle = verify
	p, err := oci.Pull(c.Context, ref, dir, opts)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return &pulled{dir: dir, origin: p, done: func() { os.RemoveAll(tmp) }}, nil
}

// originDetails is what the audit log keeps of where a package came from.
func originDetails(p *oci.Pulled) map[string]any {
	d := map[string]any{"oci": p.Pinned(), "bundleReferrer": p.Bundle}
	if p.Ref.Tag != "" && p.Ref.Digest == "" {
		d["ociTag"] = p.Ref.Tag
	}
	return d
}

// resolvedLine says which digest a tag resolved to, or "" for a reference by digest.
func resolvedLine(p *oci.Pulled) string {
	if p.Ref.Digest != "" {
		return ""
	}
	return fmt.Sprintf("resolved %s to %s\n", p.Ref, p.Pinned())
}

// withRejected adds to a refused registry package that more than one of its bundle
// referrers was tried: the refusal is the first's, and none verified.
func withRejected(err error, p *oci.Pulled) error {
	if p == nil || p.Verified || len(p.Rejected) < 2 {
		return err
	}
	return fmt.Errorf("%w (none of its %d bundle referrers verifies against the trust policy)", err, len(p.Rejected))
}
