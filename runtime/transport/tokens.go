package transport

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// MinTokenLength is the shortest token a token file may hold; shorter ones are guessable.
const MinTokenLength = 16

var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]*$`)

// TokenSet holds the SHA-256 of each token by name. Hashing first gives every comparison
// the same length, so ConstantTimeCompare leaks neither contents nor length.
type TokenSet struct {
	names  []string
	hashes [][sha256.Size]byte
}

// LoadTokens reads a token file: one "NAME TOKEN" per line, blank lines and lines starting
// with "#" ignored. The file must not be readable or writable by group or others (like an
// ssh key), names and tokens must be unique, tokens at least MinTokenLength bytes.
// Errors name the line, never the token.
func LoadTokens(path string) (*TokenSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("token file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("token file %s: mode %04o lets group or others read it; chmod 600 %s", path, perm, path)
	}
	ts := &TokenSet{}
	seenName := map[string]bool{}
	seenTok := map[[sha256.Size]byte]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("token file %s:%d: want \"NAME TOKEN\"", path, n)
		}
		name, tok := fields[0], fields[1]
		switch {
		case !tokenNameRE.MatchString(name):
			return nil, fmt.Errorf("token file %s:%d: name %q: use letters, digits, . _ @ -", path, n, name)
		case seenName[name]:
			return nil, fmt.Errorf("token file %s:%d: name %q appears twice", path, n, name)
		case len(tok) < MinTokenLength:
			return nil, fmt.Errorf("token file %s:%d: token for %q is shorter than %d bytes", path, n, name, MinTokenLength)
		}
		h := sha256.Sum256([]byte(tok))
		if seenTok[h] {
			return nil, fmt.Errorf("token file %s:%d: token for %q is also another name's token", path, n, name)
		}
		seenName[name], seenTok[h] = true, true
		ts.names = append(ts.names, name)
		ts.hashes = append(ts.hashes, h)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	if len(ts.names) == 0 {
		return nil, fmt.Errorf("token file %s: no tokens", path)
	}
	return ts, nil
}

// lookup returns the name of a token, comparing against every entry so the time taken does
// not depend on which one (if any) matched.
func (ts *TokenSet) lookup(tok string) (string, bool) {
	h := sha256.Sum256([]byte(tok))
	found := -1
	for i := range ts.hashes {
		if subtle.ConstantTimeCompare(h[:], ts.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return ts.names[found], true
}

// bearer extracts the token from an "authorization: Bearer TOKEN" value.
func bearer(v string) (string, bool) {
	const prefix = "bearer "
	if len(v) <= len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(v[len(prefix):])
	return tok, tok != "" && !strings.ContainsAny(tok, " \t")
}
