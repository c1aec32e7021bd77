package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/host"
	"github.com/skillbox-dev/skillbox/signing"
	"github.com/skillbox-dev/skillbox/skillpkg"
	"github.com/skillbox-dev/skillbox/skillpkg/oci"
)

// Environment variables the signing commands read.
const (
	envKeyPassword    = "SKILLBOX_KEY_PASSWORD"
	envCosignPassword = "COSIGN_PASSWORD" // fallback, for keys made by cosign
	envIDToken        = "SIGSTORE_ID_TOKEN"
)

func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:      "keygen",
		Usage:     "write a new ECDSA P-256 signing key pair: PREFIX.key and PREFIX.pub",
		UsageText: "skillbox keygen --out PREFIX\n\nexample: SKILLBOX_KEY_PASSWORD=… skillbox keygen --out keys/acme",
		Description: "PREFIX.key is PKCS#8 PEM, encrypted (scrypt + AES-256-CBC) when " + envKeyPassword +
			" is set; PREFIX.pub is the public key to list in trust.yaml. Existing files are never overwritten.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "path prefix of the key files (required)"},
		},
		Action: func(c *cli.Context) error {
			if _, err := signArgs(c, 0); err != nil {
				return err
			}
			prefix := c.String("out")
			if prefix == "" {
				return usagef("keygen: --out PREFIX is required")
			}
			password := os.Getenv(envKeyPassword)
			priv, pub, err := signing.GenerateKey([]byte(password))
			if err != nil {
				return fmt.Errorf("keygen: %w", err)
			}
			// The directory and both files are checked first, so a refusal writes neither.
			if dir := filepath.Dir(prefix); dir != "." {
				if fi, err := os.Stat(dir); err != nil {
					return fmt.Errorf("keygen: the directory %s does not exist; create it first (mkdir -p %s)", dir, dir)
				} else if !fi.IsDir() {
					return fmt.Errorf("keygen: %s is not a directory; --out is a path prefix such as keys/acme", dir)
				}
			}
			for _, f := range []string{prefix + ".key", prefix + ".pub"} {
				if _, err := os.Lstat(f); err == nil {
					return fmt.Errorf("keygen: %s already exists, and keygen never overwrites a key: choose another --out, or move it away first", f)
				}
			}
			if err := writeNew(prefix+".key", priv, 0o600); err != nil {
				return fmt.Errorf("keygen: %w", fileWords(prefix+".key", err))
			}
			if err := writeNew(prefix+".pub", pub, 0o644); err != nil {
				return fmt.Errorf("keygen: %w", fileWords(prefix+".pub", err))
			}
			how := "encrypted with " + envKeyPassword
			if password == "" {
				how = "NOT encrypted: set " + envKeyPassword + " to encrypt it"
			}
			fmt.Fprintf(c.App.Writer, "wrote %s.key (%s) and %s.pub\n", prefix, how, prefix)
			return nil
		},
	}
}

func signCommand() *cli.Command {
	return &cli.Command{
		Name:  "sign",
		Usage: "sign a skill package: write DIR/" + signing.BundleFile,
		UsageText: "skillbox sign DIR --key KEY\nskillbox sign DIR --keyless [--identity-token T] [--fulcio-url URL] [--rekor-url URL] [--tsa-url URL]\n\n" +
			"example: skillbox sign ./http-fetch --key keys/acme.key",
		Description: "Signs an in-toto statement whose two subjects are skill.yaml and the code (module.wasm, or the " +
			"container image by its ID) into a Sigstore bundle. A key's password comes from " + envKeyPassword +
			" (or " + envCosignPassword + "). Keyless signing gets a Fulcio certificate for the OIDC token in " +
			"--identity-token or " + envIDToken + " and records the signature in Rekor (and/or a timestamp authority).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "private key file (PKCS#8 PEM or cosign key)"},
			&cli.BoolFlag{Name: "keyless", Usage: "sign with a Fulcio certificate for an OIDC identity"},
			&cli.StringFlag{Name: "identity-token", Usage: "OIDC identity token (default $" + envIDToken + ")"},
			&cli.StringFlag{Name: "fulcio-url", Value: signing.DefaultFulcioURL, Usage: "Fulcio URL"},
			&cli.StringFlag{Name: "rekor-url", Value: signing.DefaultRekorURL, Usage: "Rekor URL (\"\" for none; then --tsa-url is needed)"},
			&cli.StringFlag{Name: "tsa-url", Usage: "RFC 3161 timestamp authority URL (optional)"},
		},
		Action: func(c *cli.Context) error {
			args, err := signArgs(c, 1)
			if err != nil {
				return err
			}
			dir := args[0]
			var signer signing.Signer
			switch {
			case c.String("key") != "" && c.Bool("keyless"):
				return usagef("sign: give --key or --keyless, not both")
			case c.String("key") != "":
				keyFile := c.String("key")
				pemBytes, err := os.ReadFile(keyFile)
				if err != nil {
					return fmt.Errorf("sign: --key %w", fileWords(keyFile, err))
				}
				password := os.Getenv(envKeyPassword)
				if password == "" {
					password = os.Getenv(envCosignPassword)
				}
				priv, err := signing.ParsePrivateKey(pemBytes, []byte(password))
				if errors.Is(err, signing.ErrPublicKeyGiven) {
					return fmt.Errorf("sign: %s is a public key; sign with the private key (%s)", keyFile, sibling(keyFile, ".key"))
				}
				if err != nil {
					return fmt.Errorf("sign: %s: %w", keyFile, err)
				}
				signer = signing.KeySigner(priv)
			case c.Bool("keyless"):
				token := c.String("identity-token")
				if token == "" {
					token = os.Getenv(envIDToken)
				}
				if token == "" {
					return usagef("sign: --keyless needs an OIDC token: --identity-token or %s", envIDToken)
				}
				signer = signing.KeylessSigner(token,
					signing.WithFulcio(c.String("fulcio-url")),
					signing.WithRekor(c.String("rekor-url")),
					signing.WithTimestampAuthority(c.String("tsa-url")))
			default:
				return usagef("sign: give --key KEY or --keyless")
			}
			pkg, err := skillpkg.Load(dir)
			if err != nil {
				return fmt.Errorf("sign %s: %s", dir, authorError(err))
			}
			mSubj, code := pkg.Subjects()
			bundle, err := signing.SignSkill(c.Context, mSubj, code, signer)
			if err != nil {
				return fmt.Errorf("sign %s: %w", dir, err)
			}
			out := filepath.Join(dir, signing.BundleFile)
			if err := os.WriteFile(out, bundle, 0o644); err != nil {
				return fmt.Errorf("sign %s: %w", dir, err)
			}
			codeWord := "sha256" // a container's code is its image ID, not image.tar's sha256 (as pack says)
			if pkg.Manifest.Sandbox.Container != nil {
				codeWord = "image ID sha256"
			}
			fmt.Fprintf(c.App.Writer, "wrote %s: %s sha256:%s, %s %s:%s\n", out, mSubj.Name, mSubj.SHA256, code.Name, codeWord, code.SHA256)
			return nil
		},
	}
}

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "check a package's signature, digests and signer against the trust policy",
		UsageText: "skillbox verify DIR|FILE.tar.gz|oci://REF [--trust FILE | --key PUB]\n\n" +
			"example: skillbox verify ./http-fetch --key keys/acme.pub\n" +
			"         skillbox verify http-fetch-1.0.0.tar.gz\n" +
			"         skillbox verify oci://registry.example.com/skills/http-fetch@sha256:…",
		Description: "Checks DIR/" + signing.BundleFile + " (or the one in a package archive, unpacked as install would): the signature, the exact two subjects and predicate type, " +
			"and the digests recomputed from skill.yaml and the code in DIR. The signer must be in trust.yaml " +
			"(default: the skill home's, --home, else $" + host.EnvHome + ", else ~/.skillbox) or be the --key given. " +
			"Prints the signer; on refusal exits non-zero naming the failed check.",
		Flags: append([]cli.Flag{
			homeFlag(),
			&cli.StringFlag{Name: "trust", Usage: "trust policy file (default: trust.yaml in the skill home, --home)"},
			&cli.StringFlag{Name: "key", Usage: "trust exactly this public key instead of a policy"},
		}, registryFlags()...),
		Action: func(c *cli.Context) error {
			args, err := signArgs(c, 1)
			if err != nil {
				return err
			}
			name, dir := args[0], args[0]
			if err := missingSource("verify", name); err != nil {
				return err
			}
			var policy *signing.Policy
			switch {
			case c.String("trust") != "" && c.String("key") != "":
				return usagef("verify: give --trust or --key, not both")
			case c.String("key") != "":
				keyFile := c.String("key")
				pub, err := os.ReadFile(keyFile)
				if err != nil {
					return fmt.Errorf("verify: --key %w", fileWords(keyFile, err))
				}
				policy, err = signing.PolicyFromKey(keyFile, pub)
				if errors.Is(err, signing.ErrPrivateKeyGiven) {
					return fmt.Errorf("verify: %s is a private key; verify with the public key (%s)", keyFile, sibling(keyFile, ".pub"))
				}
				if err != nil {
					return fmt.Errorf("verify: %s: %w", keyFile, err)
				}
			default:
				path := c.String("trust")
				if path == "" {
					if path, err = defaultTrustFile(c); err != nil {
						return fmt.Errorf("verify: %w", err)
					}
				}
				if policy, err = signing.LoadPolicy(path); err != nil {
					if errors.Is(err, signing.ErrNoPolicy) && c.String("trust") == "" {
						// The same words as install, and the two ways forward.
						return fmt.Errorf("verify: %w (write one listing your signers, or give --trust FILE or --key PUB)", err)
					}
					return fmt.Errorf("verify: %w", err)
				}
			}
			var pulledOrigin *oci.Pulled
			// The archive an operator receives is verified as it would be installed:
			// unpacked (with the install's limits) into a directory removed afterwards;
			// a registry artifact is pulled as install pulls it.
			if oci.IsRef(name) {
				p, err := pullPackage(c, name, func(ctx context.Context, raw, bundle []byte) error {
					_, err := signing.VerifyManifest(ctx, bundle, skillpkg.ManifestSubject(raw), policy)
					return err
				})
				if err != nil {
					return fmt.Errorf("verify: %w", err)
				}
				defer p.done()
				fmt.Fprint(c.App.Writer, resolvedLine(p.origin))
				name, dir, pulledOrigin = p.origin.Pinned(), p.dir, p.origin
			} else if fi, err := os.Stat(name); err == nil && fi.Mode().IsRegular() {
				tmp, err := os.MkdirTemp("", "skillbox-verify-")
				if err != nil {
					return fmt.Errorf("verify: %w", err)
				}
				defer os.RemoveAll(tmp)
				if err := skillpkg.Extract(name, tmp); err != nil {
					return fmt.Errorf("verify %s: %w", name, err)
				}
				dir = tmp
			}
			bundle, err := signing.ReadBundle(filepath.Join(dir, signing.BundleFile))
			if err != nil {
				return fmt.Errorf("verify %s: %w", name, err)
			}
			mSubj, code, err := packageSubjects(dir)
			if err != nil {
				return fmt.Errorf("verify %s: %w", name, err)
			}
			id, err := signing.VerifySkill(c.Context, bundle, mSubj, code, policy)
			if err != nil {
				return withRejected(fmt.Errorf("verify %s: %w", name, err), pulledOrigin)
			}
			fmt.Fprintf(c.App.Writer, "verified %s: signed by %s\n", name, id)
			return nil
		},
	}
}

func verifyBundleCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify-bundle",
		Usage: "check any Sigstore bundle against a file or digest (sigstore-conformance client protocol)",
		UsageText: "skillbox verify-bundle --bundle F (--key PEM | --certificate-identity I --certificate-oidc-issuer U) [--trusted-root F] FILE|sha256:HEX\n\n" +
			"example: skillbox verify-bundle --bundle a.txt.sigstore.json --certificate-identity you@example.com --certificate-oidc-issuer https://accounts.google.com a.txt",
		Description: "Offline: without --trusted-root the Sigstore public-good root built into skillbox is used. " +
			"The certificate identity is matched exactly.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "bundle", Usage: "Sigstore bundle (JSON) (required)"},
			&cli.StringFlag{Name: "key", Usage: "public key (PEM) the bundle was signed with"},
			&cli.StringFlag{Name: "certificate-identity", Usage: "expected certificate subject (SAN), exact"},
			&cli.StringFlag{Name: "certificate-oidc-issuer", Usage: "expected OIDC issuer, exact"},
			&cli.StringFlag{Name: "trusted-root", Usage: "Sigstore trusted root JSON (default: public good)"},
		},
		Action: func(c *cli.Context) error {
			args, err := signArgs(c, 1)
			if err != nil {
				return err
			}
			if c.String("bundle") == "" {
				return usagef("verify-bundle: --bundle FILE is required")
			}
			bundle, err := signing.ReadBundle(c.String("bundle"))
			if err != nil {
				return fmt.Errorf("verify-bundle: %w", err)
			}
			p := signing.BundlePolicy{Identity: c.String("certificate-identity"), Issuer: c.String("certificate-oidc-issuer")}
			if k := c.String("key"); k != "" {
				if p.KeyPEM, err = os.ReadFile(k); err != nil {
					return fmt.Errorf("verify-bundle: %w", err)
				}
			}
			if tr := c.String("trusted-root"); tr != "" {
				if p.TrustedRootJSON, err = os.ReadFile(tr); err != nil {
					return fmt.Errorf("verify-bundle: %w", err)
				}
			}
			artifact, err := artifactArg(args[0])
			if err != nil {
				return fmt.Errorf("verify-bundle: %w", err)
			}
			id, err := signing.VerifyBundle(c.Context, bundle, artifact, p)
			if err != nil {
				return fmt.Errorf("verify-bundle: %w", err)
			}
			fmt.Fprintf(c.App.Writer, "verified: signed by %s\n", id)
			return nil
		},
	}
}

// artifactArg reads FILE, or parses ALG:HEX when the argument has that shape and no
// such file exists.
func artifactArg(arg string) (signing.Artifact, error) {
	alg, _, found := strings.Cut(arg, ":")
	if found && (alg == "sha256" || alg == "sha384" || alg == "sha512") {
		if _, err := os.Stat(arg); err != nil {
			return signing.ParseArtifactDigest(arg)
		}
	}
	data, err := os.ReadFile(arg)
	if err != nil {
		return signing.Artifact{}, err
	}
	return signing.ArtifactBytes(data), nil
}

// defaultTrustFile is trust.yaml in the skill home (--home, else $SKILLBOX_HOME, else
// ~/.skillbox).
func defaultTrustFile(c *cli.Context) (string, error) {
	home, err := skillboxHome(c)
	if err != nil {
		return "", fmt.Errorf("no --trust: %w", err)
	}
	return home.Trust(), nil
}

// signArgs returns exactly n positional arguments (flags written after them were moved
// in front by interspersed in main.go). No flag here is marked Required, so that the
// actions can say which one is missing in their own words.
func signArgs(c *cli.Context, n int) ([]string, error) {
	positional := c.Args().Slice()
	if len(positional) != n {
		want := "no arguments"
		if n == 1 {
			want = "exactly one argument"
		}
		return nil, usagef("%s: want %s, got %d (see skillbox %s --help)", c.Command.Name, want, len(positional), c.Command.Name)
	}
	return positional, nil
}

// packageSubjects computes the two signed subjects of the package in dir from the files
// themselves, through skillpkg, the one reader of packages: skill.yaml's bytes, and the
// module's sha256 or the image ID computed from image.tar (a registry image's recorded
// ID), for verify: a recorded code digest that does not match the code is left for
// signing.VerifySkill to name as a failed digest check. (sign loads the package whole
// instead: one whose recorded digest does not match would never run, so it is not
// signed.)
func packageSubjects(dir string) (manifestSubj, codeSubj signing.Subject, err error) {
	mpath := filepath.Join(dir, skillpkg.ManifestFile)
	raw, err := os.ReadFile(mpath)
	if err != nil {
		return manifestSubj, codeSubj, err
	}
	m, err := manifest.Parse(raw)
	if err != nil {
		return manifestSubj, codeSubj, errors.New(authorError(&skillpkg.ManifestError{File: mpath, Err: err}))
	}
	return skillpkg.Subjects(dir, m)
}

// fileWords says why a file named on the command line cannot be used, without Go's
// "open PATH:" prefix ("keys/acme.key does not exist").
func fileWords(name string, err error) error {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &worded{name + " does not exist", err}
	case errors.Is(err, fs.ErrExist):
		return &worded{name + " already exists and is never overwritten", err}
	case errors.Is(err, fs.ErrPermission):
		return &worded{name + ": permission denied", err}
	case errors.As(err, &pe):
		return &worded{name + ": " + pe.Err.Error(), err}
	}
	return err
}

// worded is an error said in the user's words that keeps its cause in the chain.
type worded struct {
	msg string
	err error
}

func (e *worded) Error() string { return e.msg }
func (e *worded) Unwrap() error { return e.err }

// sibling is the key file beside name with another extension: acme.pub → acme.key.
func sibling(name, ext string) string {
	return strings.TrimSuffix(name, filepath.Ext(name)) + ext
}

// writeNew creates path with data, refusing to replace an existing file.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
