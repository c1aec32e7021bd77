// Package signing builds and checks the Sigstore bundles that bind a skill's manifest
// and code: a DSSE envelope over an in-toto Statement v1 with exactly two subjects
// (skill.yaml and the module or image), signed with a long-lived key or keyless through
// Fulcio. It also holds the keys (PKCS#8 and cosign formats) and the operator's trust
// policy (trust.yaml). It is a leaf: it works on digests and bytes, and imports nothing
// else of skillbox's.
package signing

import (
	"bytes"
	"io"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
