package signing

import (
	"errors"
	"fmt"
	"strings"
)

// The checks a verification can fail, as VerifyError.Check.
const (
	CheckMissingBundle  = "missing-bundle"  // no skill.sigstore.json
	CheckBundle         = "bundle"          // not a well-formed Sigstore bundle of the expected kind
	CheckUntrustedKey   = "untrusted-key"   // signed by a key the policy does not list
	CheckSignature      = "signature"       // the signature does not verify
	CheckCertificate    = "certificate"     // the certificate chain or its validity at signing time
	CheckTlog           = "tlog"            // transparency log entry, proof or promise
	CheckTimestamp      = "timestamp"       // signed or observer timestamps
	CheckIdentity       = "identity"        // certificate identity not allowed by the policy
	CheckPredicate      = "predicate"       // statement or predicate type
	CheckSubjects       = "subjects"        // not exactly the two expected subject names
	CheckManifestDigest = "manifest-digest" // skill.yaml differs from what was signed
	CheckCodeDigest     = "code-digest"     // the module or image differs from what was signed
	CheckArtifact       = "artifact"        // verify-bundle: the artifact does not match
	CheckPolicy         = "policy"          // the trust policy cannot be used
)

// Checks lists every check a verification can fail, the values of VerifyError.Check.
func Checks() []string {
	return []string{CheckMissingBundle, CheckBundle, CheckUntrustedKey, CheckSignature,
		CheckCertificate, CheckTlog, CheckTimestamp, CheckIdentity, CheckPredicate,
		CheckSubjects, CheckManifestDigest, CheckCodeDigest, CheckArtifact, CheckPolicy}
}

// VerifyError says which check refused a bundle. Callers branch on Check; Error() is one
// line naming the check.
type VerifyError struct {
	Check string
	Err   error
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("%s check failed: %v", e.Check, e.Err)
}

func (e *VerifyError) Unwrap() error { return e.Err }

// CheckOf returns the failed check of err, or "" if err is not a *VerifyError.
func CheckOf(err error) string {
	var ve *VerifyError
	if errors.As(err, &ve) {
		return ve.Check
	}
	return ""
}

// classify maps a sigstore-go verification error to the check that failed. sigstore-go
// does not type these errors, so this matches the fixed prefixes its Verify uses
// (pkg/verify/signed_entity.go, v1.3.0); anything unknown is reported as "signature".
func classify(err error) *VerifyError {
	msg := err.Error()
	check := CheckSignature
	switch {
	case strings.Contains(msg, "outside certificate validity"),
		strings.Contains(msg, "outside of certificate validity"):
		// A witnessed signing time the certificate was not valid at, whichever of the
		// log or the timestamp check noticed it first.
		check = CheckCertificate
	case strings.Contains(msg, "failed to verify log inclusion"):
		check = CheckTlog
	case strings.Contains(msg, "failed to verify timestamps"),
		strings.Contains(msg, "threshold not met for verified"),
		strings.Contains(msg, "no valid observer timestamps"):
		check = CheckTimestamp
	case strings.Contains(msg, "failed to verify leaf certificate"),
		strings.Contains(msg, "signed certificate timestamp"),
		strings.Contains(msg, "public key validity window"):
		check = CheckCertificate
	case strings.Contains(msg, "certificate identit"):
		check = CheckIdentity
	case strings.Contains(msg, "failed to verify signature"),
		strings.Contains(msg, "failed to get signature verifier"):
		check = CheckSignature
	case strings.Contains(msg, "artifact"):
		check = CheckArtifact
	}
	return &VerifyError{Check: check, Err: err}
}
