package approval

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The oversight section of a grant: each mistake names its field and what is allowed.
func TestOversightGrantMistakesNameTheField(t *testing.T) {
	dir := t.TempDir()
	load := func(doc string) error {
		path := filepath.Join(dir, "grant.yaml")
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadGrant(path)
		return err
	}
	for _, c := range []struct{ doc, want string }{
		{"oversight: {}\n", "oversight.approvers: at least one approver is required"},
		{"oversight: {approvers: [bob]}\n", `oversight.approvers[0]: "bob" is not a person's identity; write unix:uid=N, cert:NAME or token:NAME`},
		{"oversight: {approvers: [\"tls:anonymous\"]}\n", `oversight.approvers[0]: "tls:anonymous" is not a person's identity`},
		{"oversight: {approvers: [\"token:a\", \"token:a\"]}\n", `oversight.approvers[1]: "token:a" is listed twice`},
		{"oversight: {approvers: [\"token:a\"], wait: 2h}\n", "oversight.wait: 2h: want between 1s and 1h (default 5m)"},
		{"oversight: {approvers: [\"token:a\"], wait: 10ms}\n", "oversight.wait: 10ms: want between 1s"},
		{"oversight: {approvers: [\"token:a\"], reason: \"a\\nb\"}\n", "oversight.reason: one line of text"},
		{"oversight: {approvers: [\"token:a\"], reason: " + strings.Repeat("x", MaxOversightReasonBytes+1) + "}\n", "oversight.reason: 513 bytes; at most 512"},
		{"callers: [\"token:a\"]\noversight: {approvers: [\"token:a\"]}\n", "oversight.approvers: every caller would be its own only approver"},
		{"oversight: {approvers: [\"token:a\"], wiat: 5m}\n", "wiat"},
	} {
		err := load(c.doc)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.doc, err, c.want)
		}
	}
	if err := load("callers: [\"token:agent\"]\noversight: {approvers: [\"token:alice\", \"cert:bob\"], wait: 2m, reason: payments leave the company}\n"); err != nil {
		t.Fatalf("a good oversight section: %v", err)
	}
}

// Oversight is part of the approval file: it round-trips, and an approval whose
// oversight is broken is refused at load, naming grant.oversight.
func TestOversightRoundTripsInTheApproval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "http-fetch.yaml")
	a := &Approval{Skill: "http-fetch", ManifestDigest: digest, Signer: "s", ApprovedBy: "ops", ApprovedAt: time.Now().UTC().Truncate(time.Second),
		Grant: Grant{Oversight: &Oversight{Approvers: []string{"token:alice"}, Wait: 90_000_000_000, Reason: "money"}}}
	if err := Save(path, a); err != nil {
		t.Fatal(err)
	}
	b, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if o := b.Grant.Oversight; o == nil || o.Approvers[0] != "token:alice" || o.WaitBound() != 90*time.Second || o.Reason != "money" {
		t.Fatalf("oversight after a round trip: %+v", o)
	}
	if (*Oversight)(nil).WaitBound() != DefaultOversightWait || (&Oversight{}).WaitBound() != DefaultOversightWait {
		t.Error("a zero wait is not the default")
	}
	a.Grant.Oversight.Wait = 0
	a.Grant.Oversight.Approvers = nil
	if err := Save(path, a); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "grant.oversight.approvers: at least one approver") {
		t.Fatalf("approval without approvers: %v", err)
	}
}
