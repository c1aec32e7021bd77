package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cliGoTexts are Go's and the libraries' words that must not reach a user of the key
// and review commands.
var cliGoTexts = []string{
	"open ", "no such file", "file exists", "not a directory", "pkcs8", "x509",
	"unsupported PEM block", "PEM block found", "trust policy does not list", "*",
}

func wantLine(t *testing.T, what string, r signCLIResult, want string) {
	t.Helper()
	line := strings.TrimRight(r.stderr, "\n")
	if r.code == 0 || strings.Contains(line, "\n") || !strings.Contains(line, want) {
		t.Errorf("%s: exit %d, stderr %q, want one line with %q", what, r.code, r.stderr, want)
		return
	}
	for _, bad := range cliGoTexts {
		if strings.Contains(line, bad) {
			t.Errorf("%s: %q holds %q", what, line, bad)
		}
	}
}

// UX review A and B: keygen, sign, verify and review refuse in the user's words,
// naming the file and what to do instead.
func TestKeyCommandsSpeakPlainly(t *testing.T) {
	bin := signBuildCLI(t)
	work := t.TempDir()
	pkg := filepath.Join(work, "upper")
	signWriteSkill(t, pkg, "upper")
	pw := []string{"SKILLBOX_KEY_PASSWORD=s3cret"}
	rel := filepath.Join(work, "rel")
	if r := signRunCLI(t, bin, pw, "keygen", "--out", rel); r.code != 0 {
		t.Fatalf("keygen: %s", r.stderr)
	}
	if r := signRunCLI(t, bin, nil, "keygen", "--out", filepath.Join(work, "other")); r.code != 0 {
		t.Fatalf("keygen: %s", r.stderr)
	}
	wantLine(t, "keygen over an existing key", signRunCLI(t, bin, pw, "keygen", "--out", rel),
		"keygen: "+rel+".key already exists, and keygen never overwrites a key")
	wantLine(t, "sign with a wrong password", signRunCLI(t, bin, []string{"SKILLBOX_KEY_PASSWORD=nope"}, "sign", pkg, "--key", rel+".key"),
		"sign: "+rel+".key: wrong password for this key (SKILLBOX_KEY_PASSWORD), or the key file is damaged")
	wantLine(t, "sign with the public key", signRunCLI(t, bin, pw, "sign", pkg, "--key", rel+".pub"),
		"sign: "+rel+".pub is a public key; sign with the private key ("+rel+".key)")
	wantLine(t, "sign with a missing key", signRunCLI(t, bin, pw, "sign", pkg, "--key", filepath.Join(work, "missing.key")),
		"sign: --key "+filepath.Join(work, "missing.key")+" does not exist")
	if r := signRunCLI(t, bin, pw, "sign", pkg, "--key", rel+".key"); r.code != 0 {
		t.Fatalf("sign: %s", r.stderr)
	}

	// verify --key with another key: no trust policy is involved; the check keeps its name.
	r := signRunCLI(t, bin, nil, "verify", pkg, "--key", filepath.Join(work, "other.pub"))
	signWantRefusal(t, r, "untrusted-key")
	wantLine(t, "verify --key other.pub", r, "untrusted-key check failed: not signed by "+filepath.Join(work, "other.pub")+" (signed by key ")
	wantLine(t, "verify --key a private key", signRunCLI(t, bin, nil, "verify", pkg, "--key", rel+".key"),
		"verify: "+rel+".key is a private key; verify with the public key ("+rel+".pub)")

	// No trust.yaml: the words install uses, and the ways forward.
	home := filepath.Join(work, "home")
	wantLine(t, "verify without trust.yaml", signRunCLI(t, bin, []string{"SKILLBOX_HOME=" + home}, "verify", pkg),
		"verify: no usable trust policy at "+filepath.Join(home, "trust.yaml")+": the file does not exist (write one listing your signers, or give --trust FILE or --key PUB)")
	// A private key listed in trust.yaml.
	trust := filepath.Join(work, "trust.yaml")
	os.WriteFile(trust, []byte("signers:\n  - name: rel\n    key: rel.key\n"), 0o600)
	wantLine(t, "trust.yaml lists a private key", signRunCLI(t, bin, nil, "verify", pkg, "--trust", trust),
		"signers[0].key: rel.key is a private key; list the public key (rel.pub)")

	// review of a packed file: reviewed from a private copy; another file is named.
	tgz := filepath.Join(work, "upper.tar.gz")
	if r := signRunCLI(t, bin, nil, "pack", pkg, "-o", tgz); r.code != 0 {
		t.Fatalf("pack: %s", r.stderr)
	}
	r = signRunCLI(t, bin, []string{"SKILLBOX_HOME=" + home}, "review", tgz)
	if r.code != 0 || !strings.Contains(r.stdout, "https://api.example.com") {
		t.Errorf("review upper.tar.gz: %d %q %q", r.code, r.stdout, r.stderr)
	}
	wantLine(t, "review a file", signRunCLI(t, bin, []string{"SKILLBOX_HOME=" + home}, "review", filepath.Join(pkg, "skill.yaml")),
		"review: "+filepath.Join(pkg, "skill.yaml")+" is a file; review takes a package directory, a packed FILE.tar.gz or an installed skill's name")

	// pack with a module outside the package: the field is named, no I/O error.
	esc := filepath.Join(work, "escape")
	signWriteSkill(t, esc, "escape")
	raw, _ := os.ReadFile(filepath.Join(esc, "skill.yaml"))
	os.WriteFile(filepath.Join(esc, "skill.yaml"), []byte(strings.Replace(string(raw), "module: module.wasm", "module: ../../etc/passwd", 1)), 0o644)
	r = signRunCLI(t, bin, nil, "pack", esc)
	wantLine(t, "pack with module: ../../etc/passwd", r, `sandbox.wasm.module: "../../etc/passwd": must be a clean relative path inside the package`)
	if strings.Contains(r.stderr, "escapes") || strings.Contains(r.stderr, "openat") {
		t.Errorf("pack: %q", r.stderr)
	}
}
