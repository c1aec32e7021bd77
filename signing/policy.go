package signing

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/skillbox-dev/skillbox/internal/strictyaml"
)

// Policy is the operator's answer to "whose signatures do I accept": named public keys
// for key-based bundles, named Fulcio identities for keyless ones, and the trusted root
// (Fulcio CAs, Rekor keys, TSAs) that keyless bundles are checked against, read from a
// file so that verification never needs the network.
type Policy struct {
	keys        []trustedKey
	keyless     []trustedIdentity
	trustedRoot root.TrustedMaterial
	oneKey      bool // PolicyFromKey: no trust file is involved
}

type trustedKey struct {
	name string
	pub  *ecdsa.PublicKey
	hint string
}

type trustedIdentity struct {
	name    string
	issuer  string
	pattern string         // as written in trust.yaml
	san     *regexp.Regexp // always anchored: ^(?:pattern)$
}

// trustFile is trust.yaml (spec section 4).
type trustFile struct {
	Signers     []trustFileSigner `yaml:"signers"`
	TrustedRoot string            `yaml:"trustedRoot"`
}

type trustFileSigner struct {
	Name    string `yaml:"name"`
	Key     string `yaml:"key"`
	Keyless *struct {
		Issuer        string `yaml:"issuer"`
		SubjectRegexp string `yaml:"subjectRegexp"`
	} `yaml:"keyless"`
}

// LoadPolicy reads trust.yaml. Unknown fields are errors; key and trustedRoot paths are
// relative to the trust file. An error names the file, then each problem with its line
// and field path ("trust.yaml: line 3: signers[0]: unknown field "nmae" (allowed: name,
// key, keyless)").
func LoadPolicy(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &keyError{kind: ErrNoPolicy, msg: fmt.Sprintf("no usable trust policy at %s: the file does not exist", path), cause: err}
	}
	if err != nil {
		return nil, &keyError{msg: fmt.Sprintf("trust policy %s cannot be read: %v", path, pathErr(err)), cause: err}
	}
	p, err := ParsePolicy(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ParsePolicy parses trust.yaml bytes; relative paths resolve against baseDir.
func ParsePolicy(data []byte, baseDir string) (*Policy, error) {
	var tf trustFile
	if err := strictyaml.Decode(data, &tf); err != nil {
		return nil, err
	}
	resolve := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(baseDir, p)
	}
	var (
		p    Policy
		errs []error
	)
	seen := map[string]bool{}
	for i, s := range tf.Signers {
		at := fmt.Sprintf("signers[%d]", i)
		if s.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: required", at))
		} else if seen[s.Name] {
			errs = append(errs, fmt.Errorf("%s.name: %q appears twice", at, s.Name))
		}
		seen[s.Name] = true
		switch {
		case s.Key != "" && s.Keyless != nil:
			errs = append(errs, fmt.Errorf("%s: set key or keyless, not both", at))
		case s.Key != "":
			pem, err := os.ReadFile(resolve(s.Key))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.key: %w", at, fileProblem(s.Key, baseDir, err)))
				continue
			}
			k, err := newTrustedKey(s.Name, pem)
			if errors.Is(err, ErrPrivateKeyGiven) {
				err = &keyError{kind: ErrPrivateKeyGiven, msg: fmt.Sprintf("%s is a private key; list the public key (%s)", s.Key, pubName(s.Key))}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.key: %w", at, prefixed(s.Key, err)))
				continue
			}
			p.keys = append(p.keys, k)
		case s.Keyless != nil:
			id, err := newTrustedIdentity(s.Name, s.Keyless.Issuer, s.Keyless.SubjectRegexp)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.keyless.%w", at, err))
				continue
			}
			p.keyless = append(p.keyless, id)
		default:
			errs = append(errs, fmt.Errorf("%s: needs key or keyless", at))
		}
	}
	if len(tf.Signers) == 0 {
		errs = append(errs, errors.New("signers: at least one signer is required"))
	}
	if tf.TrustedRoot != "" {
		tr, err := loadTrustedRoot(tf.TrustedRoot, baseDir, resolve(tf.TrustedRoot))
		if err != nil {
			errs = append(errs, fmt.Errorf("trustedRoot: %w", err))
		} else {
			p.trustedRoot = tr
		}
	} else if len(p.keyless) > 0 {
		errs = append(errs, errors.New("trustedRoot: required when a keyless signer is listed"))
	}
	if len(errs) > 0 {
		return nil, policyErrors(errs)
	}
	return &p, nil
}

// policyErrors is every problem found in trust.yaml, on one line.
type policyErrors []error

func (e policyErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = strings.ReplaceAll(err.Error(), "\n", " ")
	}
	return strings.Join(msgs, "; ")
}

func (e policyErrors) Unwrap() []error { return e }

// PolicyFromKey is a policy that trusts exactly one public key (verify --key); name
// (the key file) is how refusals name it.
func PolicyFromKey(name string, pubPEM []byte) (*Policy, error) {
	k, err := newTrustedKey(name, pubPEM)
	if err != nil {
		return nil, err
	}
	return &Policy{keys: []trustedKey{k}, oneKey: true}, nil
}

func newTrustedKey(name string, pubPEM []byte) (trustedKey, error) {
	pub, err := ParsePublicKey(pubPEM)
	if err != nil {
		return trustedKey{}, err
	}
	hint, err := KeyHint(pub)
	if err != nil {
		return trustedKey{}, err
	}
	return trustedKey{name: name, pub: pub, hint: hint}, nil
}

// newTrustedIdentity anchors the subject pattern itself: an unanchored pattern
// ("github.com/acme/") would otherwise match any identity that merely contains it.
func newTrustedIdentity(name, issuer, pattern string) (trustedIdentity, error) {
	if issuer == "" {
		return trustedIdentity{}, errors.New("issuer: required")
	}
	if pattern == "" {
		return trustedIdentity{}, errors.New("subjectRegexp: required")
	}
	// The pattern alone first, so a mistake is named in what the operator wrote, not
	// in the anchored form.
	if _, err := regexp.Compile(pattern); err != nil {
		return trustedIdentity{}, &keyError{msg: fmt.Sprintf("subjectRegexp: %q is not a valid regular expression: %s", cut(pattern, 64), regexpProblem(err)), cause: err}
	}
	re, err := regexp.Compile(anchor(pattern))
	if err != nil {
		return trustedIdentity{}, &keyError{msg: fmt.Sprintf("subjectRegexp: %q cannot be anchored as a whole-string match", cut(pattern, 64)), cause: err}
	}
	return trustedIdentity{name: name, issuer: issuer, pattern: pattern, san: re}, nil
}

// fileProblem words a file that cannot be read, relative paths said as written with
// the directory they are read from.
func fileProblem(name, baseDir string, err error) error {
	where := ""
	if !filepath.IsAbs(name) {
		where = fmt.Sprintf(" (relative paths are read from %s, the trust file's directory)", baseDir)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &keyError{msg: fmt.Sprintf("%s does not exist%s", name, where), cause: err}
	case errors.Is(err, fs.ErrPermission):
		return &keyError{msg: fmt.Sprintf("%s cannot be read: permission denied%s", name, where), cause: err}
	}
	return &keyError{msg: fmt.Sprintf("%s cannot be read: %v%s", name, pathErr(err), where), cause: err}
}

// pathErr is an I/O error without the "open /path:" the file's name already says.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// prefixed puts the file name before a key problem ("keys/acme.pub: only ECDSA ...").
func prefixed(name string, err error) error {
	var ke *keyError
	if errors.As(err, &ke) && strings.HasPrefix(ke.Error(), name) {
		return err
	}
	return &keyError{msg: name + ": " + err.Error(), cause: err}
}

// pubName guesses the public key beside a private key file: acme.key → acme.pub.
func pubName(priv string) string {
	return strings.TrimSuffix(priv, filepath.Ext(priv)) + ".pub"
}

// loadTrustedRoot reads a Sigstore trusted root (trusted_root.json) and says in plain
// words what is wrong with a file that is missing or of another kind.
func loadTrustedRoot(name, baseDir, path string) (root.TrustedMaterial, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fileProblem(name, baseDir, err)
	}
	const want = "want a Sigstore trusted root in JSON (trusted_root.json, as `cosign trusted-root create` writes or sigstore/root-signing publishes)"
	trimmed := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		return nil, &keyError{msg: fmt.Sprintf("%s is a PEM file; %s", name, want)}
	case !json.Valid(trimmed):
		return nil, &keyError{msg: fmt.Sprintf("%s is not JSON; %s", name, want)}
	}
	tr, err := root.NewTrustedRootFromJSON(trimmed)
	if err != nil {
		return nil, &keyError{msg: fmt.Sprintf("%s is JSON but not a Sigstore trusted root; %s", name, want), cause: err}
	}
	return tr, nil
}

// regexpProblem says what is wrong with a regular expression without the regexp
// package's prefix.
func regexpProblem(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		if se.Expr != "" && len(se.Expr) <= 64 {
			return fmt.Sprintf("%s at %q", se.Code, se.Expr)
		}
		return string(se.Code)
	}
	return "not a valid regular expression"
}

// cut shortens s to at most n bytes on a rune boundary, marking the cut.
func cut(s string, n int) string { return strictyaml.Cut(s, n) }

// anchor makes a pattern match whole strings only.
func anchor(pattern string) string {
	return "^(?:" + pattern + ")$"
}

// WithTrustedRoot returns a copy of p that checks keyless bundles against tr instead of
// the file named in trust.yaml.
func (p *Policy) WithTrustedRoot(tr root.TrustedMaterial) *Policy {
	c := *p
	c.trustedRoot = tr
	return &c
}

// AddKeyless returns a copy of p that also trusts a Fulcio identity: the issuer exactly
// and the subject (SAN) by the anchored subjectRegexp.
func (p *Policy) AddKeyless(name, issuer, subjectRegexp string) (*Policy, error) {
	id, err := newTrustedIdentity(name, issuer, subjectRegexp)
	if err != nil {
		return nil, err
	}
	c := *p
	c.keyless = append(append([]trustedIdentity(nil), p.keyless...), id)
	return &c, nil
}

// Signers lists the policy's signer names, keys first.
func (p *Policy) Signers() []string {
	var out []string
	for _, k := range p.keys {
		out = append(out, k.name)
	}
	for _, k := range p.keyless {
		out = append(out, k.name)
	}
	return out
}

func (i trustedIdentity) matches(issuer, san string) bool {
	return i.issuer == issuer && i.san.MatchString(san)
}

func (i trustedIdentity) String() string {
	return fmt.Sprintf("%s (issuer %s, subject %s)", i.name, i.issuer, strings.TrimSpace(i.pattern))
}
