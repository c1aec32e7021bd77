// Package subject is what a signature covers, without the signing machinery: loading
// a skill package names its subjects (skillpkg) and must not link sigstore to do so,
// which would slow every command that only runs a package (`skillbox run DIR`).
// signing.Subject is this type.
package subject

// Subject is one signed file: a name and the lowercase hex sha256 of its bytes (for a
// container image, its image ID without the algorithm prefix). The statement carries
// the bare hex ({"sha256": "<hex>"}), so it is kept as a string and no digest type of
// skillbox's is imported.
type Subject struct {
	Name   string
	SHA256 string
}
