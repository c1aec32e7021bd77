package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// signBuildCLI builds the CLI as users install it (buildCLI).
func signBuildCLI(t *testing.T) string { return buildCLI(t) }

// buildCLI builds the two binaries users install, skillbox (the lean front,
// cmd/skillbox) and skillbox-full (this package), side by side, and returns
// skillbox's path: tests drive the CLI as users do, through the front, which hands
// what it does not run itself to skillbox-full. They are built once per test run
// (linking skillbox-full takes seconds) and removed by TestMain.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin, err := builtCLI()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// cliDir holds the binaries buildCLI builds; TestMain removes it.
var cliDir = filepath.Join(os.TempDir(), fmt.Sprintf("skillbox-cli-test-%d", os.Getpid()))

var builtCLI = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "build", "-o", cliDir+string(filepath.Separator), "../../cmd/skillbox", "../../cmd/skillbox-full").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return filepath.Join(cliDir, "skillbox"), nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	os.RemoveAll(cliDir)
	os.Exit(code)
}

type signCLIResult struct {
	code           int
	stdout, stderr string
}

func signRunCLI(t *testing.T, bin string, env []string, args ...string) signCLIResult {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return signCLIResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// signWriteSkill writes a minimal wasm skill package: a spec section 3 manifest and a
// module (any bytes do for signing).
func signWriteSkill(t *testing.T, dir, name string) {
	t.Helper()
	module := []byte("\x00asm\x01\x00\x00\x00 " + name)
	s := sha256.Sum256(module)
	manifest := `apiVersion: skillbox/v1
name: ` + name + `
version: 1.2.0
description: Fetch a web page and return its readable text.
sandbox:
  wasm:
    module: module.wasm
    sha256: ` + hex.EncodeToString(s[:]) + `
input:
  type: object
  properties:
    url: {type: string}
  required: [url]
output:
  type: object
capabilities:
  network:
    - https://api.example.com
limits:
  timeout: 10s
  memory: 64MiB
  output: 1MiB
`
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "skill.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "module.wasm"), module, 0o644); err != nil {
		t.Fatal(err)
	}
}

func signWantRefusal(t *testing.T, r signCLIResult, check string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("exit 0, want refusal naming %q; stdout %q", check, r.stdout)
	}
	line := strings.TrimRight(r.stderr, "\n")
	if strings.Contains(line, "\n") || !strings.Contains(line, check+" check failed") {
		t.Fatalf("stderr %q: want one line naming the %q check", r.stderr, check)
	}
}

func TestSignCLI(t *testing.T) {
	bin := signBuildCLI(t)
	work := t.TempDir()
	pkg := filepath.Join(work, "http-fetch")
	signWriteSkill(t, pkg, "http-fetch")
	pw := []string{"SKILLBOX_KEY_PASSWORD=s3cret"}

	// keygen: encrypted key because the password is set; never overwrites.
	r := signRunCLI(t, bin, pw, "keygen", "--out", filepath.Join(work, "acme"))
	if r.code != 0 {
		t.Fatalf("keygen: %d %s", r.code, r.stderr)
	}
	key, err := os.ReadFile(filepath.Join(work, "acme.key"))
	if err != nil || !bytes.Contains(key, []byte("ENCRYPTED PRIVATE KEY")) {
		t.Fatalf("acme.key: %v %q", err, key)
	}
	if r := signRunCLI(t, bin, pw, "keygen", "--out", filepath.Join(work, "acme")); r.code == 0 {
		t.Fatal("keygen overwrote an existing key")
	}
	if r := signRunCLI(t, bin, nil, "keygen", "--out", filepath.Join(work, "other")); r.code != 0 {
		t.Fatalf("keygen other: %s", r.stderr)
	}

	// sign: flags after DIR, as the spec writes it; a wrong password is refused.
	if r := signRunCLI(t, bin, []string{"SKILLBOX_KEY_PASSWORD=nope"}, "sign", pkg, "--key", filepath.Join(work, "acme.key")); r.code == 0 {
		t.Fatal("signed with a wrong password")
	}
	r = signRunCLI(t, bin, pw, "sign", pkg, "--key", filepath.Join(work, "acme.key"))
	if r.code != 0 {
		t.Fatalf("sign: %s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(pkg, "skill.sigstore.json")); err != nil {
		t.Fatalf("no bundle written: %v", err)
	}

	// verify with the key, and with a trust.yaml listing it.
	r = signRunCLI(t, bin, nil, "verify", pkg, "--key", filepath.Join(work, "acme.pub"))
	if r.code != 0 || !strings.Contains(r.stdout, "signed by") {
		t.Fatalf("verify --key: %d %q %q", r.code, r.stdout, r.stderr)
	}
	trust := filepath.Join(work, "trust.yaml")
	if err := os.WriteFile(trust, []byte("signers:\n  - name: acme-release\n    key: acme.pub\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = signRunCLI(t, bin, nil, "verify", pkg, "--trust", trust)
	if r.code != 0 || !strings.Contains(r.stdout, "signed by acme-release") {
		t.Fatalf("verify --trust: %d %q %q", r.code, r.stdout, r.stderr)
	}
	// The default trust file is $SKILLBOX_HOME/trust.yaml.
	r = signRunCLI(t, bin, []string{"SKILLBOX_HOME=" + work}, "verify", pkg)
	if r.code != 0 || !strings.Contains(r.stdout, "signed by acme-release") {
		t.Fatalf("verify (SKILLBOX_HOME): %d %q %q", r.code, r.stdout, r.stderr)
	}

	t.Run("cosign verify-blob-attestation", func(t *testing.T) { signCosignInterop(t, pkg, filepath.Join(work, "acme.pub")) })

	// Refusals, each naming its check on one line.
	signWantRefusal(t, signRunCLI(t, bin, nil, "verify", pkg, "--key", filepath.Join(work, "other.pub")), "untrusted-key")

	module := filepath.Join(pkg, "module.wasm")
	orig, _ := os.ReadFile(module)
	flipped := append([]byte(nil), orig...)
	flipped[len(flipped)-1] ^= 1
	if err := os.WriteFile(module, flipped, 0o644); err != nil {
		t.Fatal(err)
	}
	signWantRefusal(t, signRunCLI(t, bin, nil, "verify", pkg, "--trust", trust), "code-digest")
	if err := os.WriteFile(module, orig, 0o644); err != nil {
		t.Fatal(err)
	}

	manifest := filepath.Join(pkg, "skill.yaml")
	origManifest, _ := os.ReadFile(manifest)
	if err := os.WriteFile(manifest, bytes.Replace(origManifest, []byte("https://api.example.com"), []byte("https://evil.example.com"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	signWantRefusal(t, signRunCLI(t, bin, nil, "verify", pkg, "--trust", trust), "manifest-digest")
	if err := os.WriteFile(manifest, origManifest, 0o644); err != nil {
		t.Fatal(err)
	}

	if err := os.Remove(filepath.Join(pkg, "skill.sigstore.json")); err != nil {
		t.Fatal(err)
	}
	signWantRefusal(t, signRunCLI(t, bin, nil, "verify", pkg, "--trust", trust), "missing-bundle")

	if r := signRunCLI(t, bin, nil, "sign", pkg); r.code == 0 || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("sign without --key/--keyless: %d %q", r.code, r.stderr)
	}
}

// TestVerifyBundleCLI drives the built verify-bundle command as the sigstore-conformance
// harness does, over every bundle-verify vector (a folder ending in _fail must exit
// non-zero, every other one zero), plus the sha256:HEX artifact form.
func TestVerifyBundleCLI(t *testing.T) {
	vectors, err := filepath.Abs(filepath.Join("..", "..", "signing", "testdata", "sigstore-conformance", "bundle-verify"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(vectors); err != nil {
		t.Fatalf("sigstore-conformance vectors missing at %s: %v", vectors, err)
	}
	bin := signBuildCLI(t)
	defaultArtifact := filepath.Join(vectors, "a.txt")
	optional := func(path, def string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			return def
		}
		return strings.TrimSpace(string(b))
	}
	const (
		defaultIdentity = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
		defaultIssuer   = "https://token.actions.githubusercontent.com"
	)
	// args builds the harness's command line for one vector folder.
	args := func(dir, artifact string) []string {
		a := []string{"verify-bundle", "--bundle", filepath.Join(dir, "bundle.sigstore.json")}
		if _, err := os.Stat(filepath.Join(dir, "key.pub")); err == nil {
			a = append(a, "--key", filepath.Join(dir, "key.pub"))
		} else {
			a = append(a, "--certificate-identity", optional(filepath.Join(dir, "identity"), defaultIdentity),
				"--certificate-oidc-issuer", optional(filepath.Join(dir, "issuer"), defaultIssuer))
		}
		if _, err := os.Stat(filepath.Join(dir, "trusted_root.json")); err == nil {
			a = append(a, "--trusted-root", filepath.Join(dir, "trusted_root.json"))
		}
		return append(a, artifact)
	}
	entries, err := os.ReadDir(vectors)
	if err != nil {
		t.Fatal(err)
	}
	total, good := 0, 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		total++
		dir := filepath.Join(vectors, e.Name())
		artifact := defaultArtifact
		if _, err := os.Stat(filepath.Join(dir, "artifact")); err == nil {
			artifact = filepath.Join(dir, "artifact")
		}
		if t.Run(e.Name(), func(t *testing.T) {
			r := signRunCLI(t, bin, nil, args(dir, artifact)...)
			wantFail := strings.HasSuffix(e.Name(), "_fail")
			if wantFail == (r.code == 0) {
				t.Fatalf("exit %d, want failure=%v: %s", r.code, wantFail, r.stderr)
			}
			if wantFail && strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("want one stderr line, got %q", r.stderr)
			}
		}) {
			good++
		}
	}
	t.Logf("verify-bundle CLI: %d/%d sigstore-conformance cases gave the expected answer", good, total)

	data, err := os.ReadFile(defaultArtifact)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(data)
	happy := filepath.Join(vectors, "happy-path-v0.3")
	if r := signRunCLI(t, bin, nil, args(happy, "sha256:"+hex.EncodeToString(s[:]))...); r.code != 0 {
		t.Errorf("digest artifact refused: %s", r.stderr)
	}
	if r := signRunCLI(t, bin, nil, args(happy, "sha256:"+strings.Repeat("00", 32))...); r.code == 0 {
		t.Error("wrong digest accepted")
	}
}

// signCosignInterop checks that standard tooling accepts our bundle, when cosign is
// installed. All network use is pinned to a closed loopback port.
func signCosignInterop(t *testing.T, pkg, pub string) {
	cosign, err := exec.LookPath("cosign")
	if err != nil {
		t.Skip("cosign not on PATH: skipping the cosign verify-blob-attestation interop check")
	}
	home := t.TempDir()
	run := func(manifest string) ([]byte, error) {
		cmd := exec.Command(cosign, "verify-blob-attestation", "--key", pub,
			"--bundle", filepath.Join(pkg, "skill.sigstore.json"),
			"--type", "https://skillbox.dev/skill/v1", "--insecure-ignore-tlog", manifest)
		cmd.Env = append(os.Environ(), "HOME="+home, "TUF_ROOT="+filepath.Join(home, "tuf"),
			"HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY=")
		return cmd.CombinedOutput()
	}
	out, err := run(filepath.Join(pkg, "skill.yaml"))
	if err != nil {
		t.Fatalf("cosign verify-blob-attestation refused our bundle: %v\n%s", err, out)
	}
	t.Logf("cosign: %s", bytes.TrimSpace(out))
	// And cosign refuses the same bundle for an edited manifest.
	orig, err := os.ReadFile(filepath.Join(pkg, "skill.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	edited := filepath.Join(t.TempDir(), "skill.yaml")
	if err := os.WriteFile(edited, append(orig, []byte("# edited\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(edited); err == nil {
		t.Fatalf("cosign accepted an edited skill.yaml:\n%s", out)
	}
}

// TestSignCLICosignKey signs with a key cosign generated (its own encrypted format) and
// checks the result with both skillbox and cosign, when cosign is installed.
func TestSignCLICosignKey(t *testing.T) {
	cosign, err := exec.LookPath("cosign")
	if err != nil {
		t.Skip("cosign not on PATH: skipping the cosign key interop check")
	}
	work := t.TempDir()
	gen := exec.Command(cosign, "generate-key-pair", "--output-key-prefix", filepath.Join(work, "cosign"))
	gen.Dir = work
	gen.Env = append(os.Environ(), "COSIGN_PASSWORD=pw", "HOME="+work)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	bin := signBuildCLI(t)
	pkg := filepath.Join(work, "pkg")
	signWriteSkill(t, pkg, "cosign-keyed")
	// COSIGN_PASSWORD is the fallback when SKILLBOX_KEY_PASSWORD is unset.
	if r := signRunCLI(t, bin, []string{"SKILLBOX_KEY_PASSWORD=", "COSIGN_PASSWORD=pw"}, "sign", pkg, "--key", filepath.Join(work, "cosign.key")); r.code != 0 {
		t.Fatalf("sign with a cosign key: %s", r.stderr)
	}
	if r := signRunCLI(t, bin, nil, "verify", pkg, "--key", filepath.Join(work, "cosign.pub")); r.code != 0 {
		t.Fatalf("verify: %s", r.stderr)
	}
	signCosignInterop(t, pkg, filepath.Join(work, "cosign.pub"))
}
