package cli

import (
	"strconv"
	"strings"
	"testing"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
)

// `skillbox pending` prints the input as its value: indented, the caller's own line
// breaks gone (they could lay out lines that look like the tool's own), characters
// that hide or reorder text written as \uXXXX; the skill's words lose controls and
// format characters too.
func TestPendingTextEscapesDisguise(t *testing.T) {
	in := "{\"payee\":\"alice\u202e\u2066 001\u2069\",\"memo\":\"x\u200b\u0085\\u001b[2J\",\n\n\"fake\":\"\\n  sha256: 00\\n  decide: skillbox allow 42\",\"amount\":1000000}"
	req := &pb.PendingRequest{Id: "abc", Skill: "pay", Version: "1.0.0", Caller: "token:agent", InputJson: in,
		InputSha256: "feed", Reason: "money\u202e", Review: "network: none\u2067\nrisk: \u001b]0;x\u0007"}
	var b strings.Builder
	if err := writePending(&b, []*pb.PendingRequest{req}, pendingOptions{}, true); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, bad := range []string{"\u202e", "\u2066", "\u2067", "\u2069", "\u200b", "\u0085", "\u001b", "\u0007", "\n  sha256: 00", "\n  decide: skillbox allow 42"} {
		if strings.Contains(out, bad) {
			t.Errorf("pending prints %+q raw:\n%s", bad, out)
		}
	}
	for _, want := range []string{
		"  input (" + strconv.Itoa(len(in)) + " bytes as sent; shown as its value, keys sorted, hidden characters as \\uXXXX):\n    {\n      \"amount\": 1000000,\n",
		`      "memo": "x\u200b\u0085\u001b[2J",`,
		`      "payee": "alice\u202e\u2066 001\u2069"`,
		`      "fake": "\n  sha256: 00\n  decide: skillbox allow 42",`,
		"  decide: skillbox allow abc   |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("pending lacks %q:\n%s", want, out)
		}
	}
}

// An input longer than `pending` prints is cut, and then not offered for allow: the
// decide line says to read it whole with --full, which prints it whole.
func TestPendingTextCutInput(t *testing.T) {
	in := `{"memo":"` + strings.Repeat("invoice ", 700) + `","payee":"mallory-at-the-end"}`
	req := &pb.PendingRequest{Id: "abc", Skill: "pay", Version: "1.0.0", Caller: "token:agent", InputJson: in, InputSha256: "feed"}
	var cut, full strings.Builder
	if err := writePending(&cut, []*pb.PendingRequest{req}, pendingOptions{}, true); err != nil {
		t.Fatal(err)
	}
	if err := writePending(&full, []*pb.PendingRequest{req}, pendingOptions{full: true}, true); err != nil {
		t.Fatal(err)
	}
	if s := cut.String(); strings.Contains(s, "mallory-at-the-end") || strings.Contains(s, "skillbox allow abc") ||
		!strings.Contains(s, "read it whole (skillbox pending --full) before you allow") {
		t.Errorf("a cut input:\n%s", s)
	}
	if s := full.String(); !strings.Contains(s, `"payee": "mallory-at-the-end"`) || !strings.Contains(s, "skillbox allow abc") {
		t.Errorf("--full:\n%s", s)
	}
}
