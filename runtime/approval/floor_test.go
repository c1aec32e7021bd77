package approval

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/manifest"
)

// Finding 4: a CPU budget below Docker's floor became no CFS quota at all. No layer
// (the operator's grant, the caller's request) may lower a budget to something a
// sandbox reads as "no limit".
func TestNoLimitLowersToUnlimited(t *testing.T) {
	m := testManifest(t)
	t.Setenv("SKILLBOX_TEST_TOKEN", "s3cret")

	// The grant: sub-floor, not-a-number and negative values are refused, by field.
	for _, tc := range []struct {
		l    manifest.Limits
		want string
	}{
		{manifest.Limits{CPU: 1e-6}, "grant.limits.cpu: 1e-06: want at least 0.01 cores"},
		{manifest.Limits{CPU: 0.009}, "grant.limits.cpu: 0.009: want at least 0.01 cores"},
		{manifest.Limits{CPU: math.NaN()}, "grant.limits.cpu: want a number of cores"},
		{manifest.Limits{CPU: math.Inf(-1)}, "grant.limits.cpu: want a number of cores"},
		{manifest.Limits{CPU: -1}, "grant.limits.cpu: must not be negative"},
		{manifest.Limits{Memory: 1}, "grant.limits.memory: 1: want at least 1MiB"},
		{manifest.Limits{Timeout: 1}, "grant.limits.timeout: 1ns: want at least 1ms"},
		{manifest.Limits{Timeout: -1}, "grant.limits.timeout: must not be negative"},
		{manifest.Limits{Output: -1}, "grant.limits.output: must not be negative"},
		{manifest.Limits{Requests: -1}, "grant.limits.requests: must not be negative"},
	} {
		a := goodApproval(t)
		a.Grant.Limits = tc.l
		err := Check(m, digest, a)
		var ge *GrantError
		if !errors.As(err, &ge) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("grant limits %+v: %v, want %q", tc.l, err, tc.want)
		}
	}
	a := goodApproval(t)
	a.Grant.Limits = manifest.Limits{CPU: manifest.MinCPU, Memory: manifest.MinMemory, Timeout: manifest.Duration(time.Millisecond)}
	if err := Check(m, digest, a); err != nil {
		t.Errorf("limits at the floors refused: %v", err)
	}

	// The same in a grant file written by hand.
	p := filepath.Join(t.TempDir(), "grant.yaml")
	os.WriteFile(p, []byte("limits: {cpu: 0.000001}\n"), 0o600)
	if _, err := LoadGrant(p); err == nil || !strings.Contains(err.Error(), "limits.cpu: 1e-06: want at least 0.01 cores") {
		t.Errorf("grant file with cpu 1e-6: %v", err)
	}

	// The caller: refused with a *LimitsError naming the field, before anything runs.
	a = goodApproval(t)
	for _, tc := range []struct {
		l    manifest.Limits
		want string
	}{
		{manifest.Limits{CPU: 1e-6}, "limits.cpu: 1e-06: want at least 0.01 cores"},
		{manifest.Limits{CPU: math.NaN()}, "limits.cpu: want a number of cores"},
		{manifest.Limits{Memory: 1}, "limits.memory: 1: want at least 1MiB"},
		{manifest.Limits{Timeout: -5}, "limits.timeout: must not be negative"},
	} {
		_, _, err := Effective(m, a, tc.l)
		var le *LimitsError
		if !errors.As(err, &le) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("caller limits %+v: %v, want %q", tc.l, err, tc.want)
		}
	}
	lim, _, err := Effective(m, a, manifest.Limits{CPU: 0.25})
	if err != nil || lim.CPU != 0.25 {
		t.Errorf("caller cpu 0.25: %v %v", lim.CPU, err)
	}

	// Container skills: Docker's memory floor, which a wasm skill does not have.
	cm, err := manifest.Parse([]byte(strings.Replace(strings.Replace(skillYAML, "  wasm:\n    module: module.wasm\n    sha256: 9f2c000000000000000000000000000000000000000000000000000000000000\n",
		"  container:\n    image: image.tar\n    id: sha256:9f2c000000000000000000000000000000000000000000000000000000000000\n", 1), "name: http-fetch", "name: http-fetch", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Effective(cm, a, manifest.Limits{Memory: 2 << 20}); err == nil || !strings.Contains(err.Error(), "limits.memory: 2MiB: want at least 6MiB") {
		t.Errorf("container caller memory 2MiB: %v", err)
	}
	a.Grant.Limits = manifest.Limits{Memory: 2 << 20}
	if err := Check(cm, digest, a); err == nil || !strings.Contains(err.Error(), "grant.limits.memory: 2MiB: want at least 6MiB for a container skill") {
		t.Errorf("container grant memory 2MiB: %v", err)
	}

	// The last guard: whatever reaches EffectiveLimits, the CPU budget stays at or
	// above the floor.
	if l := EffectiveLimits(m.Limits, manifest.Limits{CPU: 1e-9}, manifest.Limits{CPU: 1e-12}); l.CPU != manifest.MinCPU {
		t.Errorf("EffectiveLimits cpu = %g, want %g", l.CPU, manifest.MinCPU)
	}
}

// Finding 14: approval and grant files are refused in the operator's words: the file,
// the line, the field path and what is allowed, never a Go type name.
func TestFileErrorsNameNoGoTypes(t *testing.T) {
	head := "skill: http-fetch\nmanifestDigest: " + digest + "\nsigner: acme-release\napprovedBy: ops\napprovedAt: 2026-11-25T04:00:00Z\n"
	dir := t.TempDir()
	for _, tc := range []struct {
		grant bool
		doc   string
		want  string
	}{
		{false, head + "grant:\n  netwrok: [https://api.example.com]\n", `line 7: grant: unknown field "netwrok" (allowed: network, files, env, secrets, secretOrigins, limits, callers, oversight)`},
		{false, head + "grant:\n  files:\n    - {path: /data, hots: /srv, access: read}\n", `line 8: grant.files[0]: unknown field "hots" (allowed: path, host, access)`},
		{false, head + "grant:\n  callers: agent-1\n", "line 7: grant.callers: want a list, got a string"},
		{false, head + "grant:\n  env: [LANG]\n", "line 7: grant.env: want a mapping, got a list"},
		{false, head + "grant:\n  limits: {cpu: lots}\n", "line 7: grant.limits.cpu: want a number, got a string"},
		{false, head + "grant:\n  limits: {timeout: [1s]}\n", "line 7: grant.limits.timeout: want a single value, got a list"},
		{false, head + "grant:\n  limits: {memory: 64 MiB}\n", `line 7: grant.limits.memory: "64 MiB": want a whole number with an optional unit`},
		{false, head + "grant:\n  network: [{host: x}]\n", "line 7: grant.network[0]: want a single value, got a mapping"},
		{false, strings.Replace(head, "2026-11-25T04:00:00Z", "[yesterday]", 1) + "grant: {}\n", "line 5: approvedAt: want a timestamp such as 2025-01-02T15:04:05Z, got a list"},
		{false, "- skill\n", "want a mapping, got a list"},
		{true, "netwrok: []\n", `line 1: unknown field "netwrok" (allowed: network, files, env, secrets, secretOrigins, limits, callers, oversight)`},
		{true, "limits: {cpus: 1}\n", `line 1: limits: unknown field "cpus" (allowed: timeout, memory, output, cpu, requests)`},
		{true, "secrets: {API_TOKEN: [x]}\n", "line 1: secrets.API_TOKEN: want a string, got a list"},
	} {
		p := filepath.Join(dir, "f.yaml")
		os.WriteFile(p, []byte(tc.doc), 0o600)
		var err error
		if tc.grant {
			_, err = LoadGrant(p)
		} else {
			_, err = Load(p)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p+": ") {
			t.Errorf("%q: %v, want it to name the file and say %q", tc.doc, err, tc.want)
			continue
		}
		for _, bad := range []string{"approval.", "manifest.", "struct", "[]", "map[", "float64", "int64", "time.Time", "!!", "unmarshal"} {
			if strings.Contains(strings.TrimPrefix(err.Error(), "approval "+p), bad) {
				t.Errorf("%q: %v holds %q", tc.doc, err, bad)
			}
		}
	}
}
