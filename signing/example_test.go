package signing_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/skillbox-dev/skillbox/signing"
)

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Sign a skill's manifest and module with a key, then verify them as an operator
// would: the signer must be trusted and both digests must be the files in hand.
func Example() {
	ctx := context.Background()
	privPEM, pubPEM, _ := signing.GenerateKey(nil)
	priv, _ := signing.ParsePrivateKey(privPEM, nil)

	manifest := signing.Subject{Name: "skill.yaml", SHA256: digest([]byte("apiVersion: skillbox/v1\n"))}
	code := signing.Subject{Name: "module.wasm", SHA256: digest([]byte("\x00asm\x01\x00\x00\x00"))}
	bundle, err := signing.SignSkill(ctx, manifest, code, signing.KeySigner(priv))
	if err != nil {
		fmt.Println(err)
		return
	}

	policy, _ := signing.PolicyFromKey("acme-release", pubPEM)
	id, err := signing.VerifySkill(ctx, bundle, manifest, code, policy)
	fmt.Println(id.Signer, err)

	edited := signing.Subject{Name: "module.wasm", SHA256: digest([]byte("\x00asm\x01\x00\x00\x01"))}
	_, err = signing.VerifySkill(ctx, bundle, manifest, edited, policy)
	fmt.Println(signing.CheckOf(err))
	// Output:
	// acme-release <nil>
	// code-digest
}
