package signing

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/skillbox-dev/skillbox/signing/subject"
)

// Names and types of the signed statement (spec section 2).
const (
	// StatementType is the in-toto Statement v1 type.
	StatementType = "https://in-toto.io/Statement/v1"
	// PredicateType marks a skillbox skill statement.
	PredicateType = "https://skillbox.dev/skill/v1"
	// PayloadType is the DSSE payload type of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
	// ManifestName is the name of the manifest subject.
	ManifestName = "skill.yaml"
	// BundleFile is where a package keeps its bundle.
	BundleFile = "skill.sigstore.json"
)

// Subject is one signed file: a name and the lowercase hex sha256 of its bytes (see
// package subject, which holds it so that loading a package does not link signing).
type Subject = subject.Subject

// imageIDPrefix begins an image ID as Docker spells it ("sha256:<hex>"); a subject
// digest given that way is accepted.
const imageIDPrefix = "sha256:"

// normalize lowercases the digest, drops an image ID's prefix and checks the shape.
func normalize(s Subject) (Subject, error) {
	d := strings.ToLower(strings.TrimPrefix(s.SHA256, imageIDPrefix))
	if s.Name == "" {
		return s, fmt.Errorf("subject has no name")
	}
	if b, err := hex.DecodeString(d); err != nil || len(b) != 32 {
		return s, fmt.Errorf("subject %q: digest %q is not 64 hex digits", s.Name, s.SHA256)
	}
	return Subject{Name: s.Name, SHA256: d}, nil
}

// statement is an in-toto Statement v1 as skillbox writes and reads it.
type statement struct {
	Type          string             `json:"_type"`
	Subject       []statementSubject `json:"subject"`
	PredicateType string             `json:"predicateType"`
	Predicate     json.RawMessage    `json:"predicate,omitempty"`
}

type statementSubject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// predicate is deliberately small: it names which subject is the manifest and which is
// the code, so a reader need not guess from the order. Everything else about the skill
// is in skill.yaml, which the signature covers by digest.
type predicate struct {
	Manifest string `json:"manifest"`
	Code     string `json:"code"`
}

// newStatement builds the statement over exactly the two subjects.
func newStatement(manifest, code Subject) ([]byte, error) {
	pred, err := json.Marshal(predicate{Manifest: manifest.Name, Code: code.Name})
	if err != nil {
		return nil, err
	}
	st := statement{
		Type: StatementType,
		Subject: []statementSubject{
			{Name: manifest.Name, Digest: map[string]string{"sha256": manifest.SHA256}},
			{Name: code.Name, Digest: map[string]string{"sha256": code.SHA256}},
		},
		PredicateType: PredicateType,
		Predicate:     pred,
	}
	return json.Marshal(st)
}

// checkStatement checks a verified payload against the two subjects the caller computed
// from the files in hand. It never trusts a digest it did not compute. A nil code checks
// the manifest subject only (VerifyManifest).
func checkStatement(payload []byte, manifest Subject, code *Subject) error {
	var st statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return &VerifyError{Check: CheckPredicate, Err: fmt.Errorf("payload is not an in-toto statement: %w", err)}
	}
	if st.Type != StatementType {
		return &VerifyError{Check: CheckPredicate, Err: fmt.Errorf("statement type is %q, want %q", st.Type, StatementType)}
	}
	if st.PredicateType != PredicateType {
		return &VerifyError{Check: CheckPredicate, Err: fmt.Errorf("predicate type is %q, want %q", st.PredicateType, PredicateType)}
	}
	codeName := "the code"
	if code != nil {
		codeName = code.Name
	}
	if len(st.Subject) != 2 {
		return &VerifyError{Check: CheckSubjects, Err: fmt.Errorf("statement has %d subjects, want exactly 2 (%s, %s)", len(st.Subject), manifest.Name, codeName)}
	}
	got := map[string]map[string]string{}
	for _, s := range st.Subject {
		if _, dup := got[s.Name]; dup {
			return &VerifyError{Check: CheckSubjects, Err: fmt.Errorf("subject %q appears twice", s.Name)}
		}
		got[s.Name] = s.Digest
	}
	wants := []struct {
		s     Subject
		check string
	}{{manifest, CheckManifestDigest}}
	if code != nil {
		wants = append(wants, struct {
			s     Subject
			check string
		}{*code, CheckCodeDigest})
	}
	for _, want := range wants {
		d, ok := got[want.s.Name]
		if !ok {
			return &VerifyError{Check: CheckSubjects, Err: fmt.Errorf("statement has no subject %q (subjects: %s)", want.s.Name, subjectNames(st.Subject))}
		}
		if len(d) != 1 || d["sha256"] == "" {
			return &VerifyError{Check: want.check, Err: fmt.Errorf("subject %q must carry exactly one sha256 digest", want.s.Name)}
		}
		if !strings.EqualFold(d["sha256"], want.s.SHA256) {
			return &VerifyError{Check: want.check, Err: fmt.Errorf("%s has sha256 %s, the bundle signed %s", want.s.Name, want.s.SHA256, d["sha256"])}
		}
	}
	return nil
}

func subjectNames(ss []statementSubject) string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = fmt.Sprintf("%q", s.Name)
	}
	return strings.Join(names, ", ")
}

// StaleBundle reports whether a bundle's statement names other digests than the ones
// given, WITHOUT checking its signature: it lets an author's tool (pack) notice a
// bundle left over from before an edit. It is never a verification.
func StaleBundle(bundleJSON []byte, manifest, code Subject) error {
	c, err := normalize(code)
	if err != nil {
		return err
	}
	return staleStatement(bundleJSON, manifest, &c)
}

// StaleManifestBundle is StaleBundle for skill.yaml's subject alone, WITHOUT checking
// the signature: among bundles found beside a package (an OCI artifact's referrers) it
// picks the ones written for this skill.yaml. It is never a verification.
func StaleManifestBundle(bundleJSON []byte, manifest Subject) error {
	return staleStatement(bundleJSON, manifest, nil)
}

// staleStatement compares the unverified statement of bundleJSON with manifest and,
// when code is not nil, with code.
func staleStatement(bundleJSON []byte, manifest Subject, code *Subject) error {
	m, err := normalize(manifest)
	if err != nil {
		return err
	}
	b, err := parseBundle(bundleJSON)
	if err != nil {
		return err
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return &VerifyError{Check: CheckBundle, Err: errors.New("bundle holds no DSSE statement")}
	}
	return checkStatement(env.GetPayload(), m, code)
}
