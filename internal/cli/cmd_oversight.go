package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/approval"
)

// maxShownInput bounds the input `pending` prints as text; --full and --json print it
// whole.
const maxShownInput = 4 << 10

func pendingCommand() *cli.Command {
	return &cli.Command{
		Name:  "pending",
		Usage: "list the calls waiting for a person's decision (per-call oversight)",
		UsageText: "skillbox pending [--server ADDR] [--watch] [--full] [--json]\n\nExample:\n  skillbox pending\n" +
			"  skillbox pending --full           # inputs whole, however long\n" +
			"  skillbox pending --watch          # print the list again after each change; Ctrl-C ends\n" +
			"  skillbox pending --json | jq '.[].id'",
		Description: "Each call shows its id, the skill, the caller, the input that runs if allowed, the time\n" +
			"left and what the skill may do under its grant. The input is shown as its value: indented,\n" +
			"keys sorted, characters that could hide or reorder text written as \\uXXXX; beyond 4 KiB it\n" +
			"is cut unless --full, and a cut input is not offered for allow. Decide with `skillbox allow ID` or\n" +
			"`skillbox deny ID --reason TEXT`. Admins only; see docs/oversight.md.",
		Flags: append(clientFlags(),
			&cli.BoolFlag{Name: "watch", Usage: "keep printing the list after each change"},
			&cli.BoolFlag{Name: "full", Usage: "print every input whole, however long"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON (with --watch: one array per line)"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("pending: takes no arguments (see skillbox pending --help)")
			}
			conn, err := dial(c)
			if err != nil {
				return fmt.Errorf("pending: %w", err)
			}
			defer conn.Close()
			stream, err := pb.NewAdminClient(conn).WatchPending(c.Context, &pb.WatchPendingRequest{})
			if err != nil {
				return clientFailure(c, "pending", err)
			}
			for first := true; ; first = false {
				snap, err := stream.Recv()
				if err != nil {
					if c.Context.Err() != nil {
						return nil // Ctrl-C
					}
					return clientFailure(c, "pending", err)
				}
				if err := writePending(c.App.Writer, snap.GetRequests(), pendingOptions{json: c.Bool("json"), watch: c.Bool("watch"), full: c.Bool("full")}, first); err != nil {
					return err
				}
				if !c.Bool("watch") {
					return nil
				}
			}
		},
	}
}

func allowCommand() *cli.Command {
	return &cli.Command{
		Name:      "allow",
		Usage:     "allow one call waiting for a decision",
		ArgsUsage: "ID",
		UsageText: "skillbox allow [--server ADDR] ID [--reason TEXT] [--digest SHA256]\n\nExample:\n  skillbox allow 0c11b9fae5de00c7e4999d74 --reason 'invoice 42 checked'",
		Description: "The call runs at once, with exactly the input `skillbox pending` showed. You must be an\n" +
			"admin, one of the skill's approvers, and not the call's own caller.",
		Flags: append(clientFlags(),
			&cli.StringFlag{Name: "reason", Usage: "why, for the audit log"},
			&cli.StringFlag{Name: "digest", Usage: "the request's digest as `pending --json` showed it: refuse if the request is another"},
		),
		Action: func(c *cli.Context) error { return decide(c, true) },
	}
}

func denyCommand() *cli.Command {
	return &cli.Command{
		Name:        "deny",
		Usage:       "deny one call waiting for a decision; the caller is told why",
		ArgsUsage:   "ID",
		UsageText:   "skillbox deny [--server ADDR] ID --reason TEXT [--digest SHA256]\n\nExample:\n  skillbox deny 0c11b9fae5de00c7e4999d74 --reason 'unknown payee'",
		Description: "The call ends APPROVAL_DENIED with your reason in its message; nothing runs.",
		Flags: append(clientFlags(),
			&cli.StringFlag{Name: "reason", Usage: "why: shown to the caller and recorded (required)"},
			&cli.StringFlag{Name: "digest", Usage: "the request's digest as `pending --json` showed it: refuse if the request is another"},
		),
		Action: func(c *cli.Context) error { return decide(c, false) },
	}
}

// decide sends allow or deny for the one ID argument.
func decide(c *cli.Context, allow bool) error {
	verb := map[bool]string{true: "allow", false: "deny"}[allow]
	if c.NArg() != 1 {
		return usagef("%s: want exactly one ID, as `skillbox pending` shows it (see skillbox %s --help)", verb, verb)
	}
	id := c.Args().First()
	if !allow && strings.TrimSpace(c.String("reason")) == "" {
		return usagef("deny %s: --reason is required: the caller is told why (skillbox deny %s --reason TEXT)", id, id)
	}
	conn, err := dial(c)
	if err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	defer conn.Close()
	d := pb.Decision_DECISION_DENY
	if allow {
		d = pb.Decision_DECISION_ALLOW
	}
	if _, err := pb.NewAdminClient(conn).Decide(c.Context, &pb.DecideRequest{Id: id, Decision: d, Reason: c.String("reason"), Digest: c.String("digest")}); err != nil {
		return fmt.Errorf("%s %s: %w", verb, id, statusLine(err))
	}
	fmt.Fprintf(c.App.Writer, "%sed %s\n", map[bool]string{true: "allow", false: "deni"}[allow], id)
	return nil
}

// pendingJSON is a pending call as `pending --json` prints it: the input as JSON.
type pendingJSON struct {
	ID             string          `json:"id"`
	Skill          string          `json:"skill"`
	Version        string          `json:"version"`
	ManifestDigest string          `json:"manifestDigest"`
	CodeDigest     string          `json:"codeDigest"`
	Signer         string          `json:"signer"`
	Caller         string          `json:"caller"`
	Door           string          `json:"door,omitempty"`
	Input          json.RawMessage `json:"input"`
	InputSHA256    string          `json:"inputSha256"`
	Approvers      []string        `json:"approvers"`
	Reason         string          `json:"reason,omitempty"`
	Review         string          `json:"review"`
	Requested      string          `json:"requested"`
	Expires        string          `json:"expires"`
	TimeLeftMs     int64           `json:"timeLeftMs"`
	Digest         string          `json:"digest"`
	// MayDecide: whether the identity asking may decide it (an approver, not its
	// caller); left out by servers that do not say.
	MayDecide *bool `json:"mayDecide,omitempty"`
}

// pendingOptions are `pending`'s flags.
type pendingOptions struct{ json, watch, full bool }

func writePending(w io.Writer, reqs []*pb.PendingRequest, o pendingOptions, first bool) error {
	asJSON, watch := o.json, o.watch
	if asJSON {
		out := make([]pendingJSON, 0, len(reqs))
		for _, p := range reqs {
			in := json.RawMessage(p.GetInputJson())
			if !json.Valid(in) {
				in = json.RawMessage("null")
			}
			out = append(out, pendingJSON{ID: p.GetId(), Skill: p.GetSkill(), Version: p.GetVersion(),
				ManifestDigest: p.GetManifestDigest(), CodeDigest: p.GetCodeDigest(), Signer: p.GetSigner(),
				Caller: p.GetCaller(), Door: p.GetDoor(), Input: in, InputSHA256: p.GetInputSha256(),
				Approvers: p.GetApprovers(), Reason: p.GetReason(), Review: p.GetReview(), Requested: p.GetRequested(),
				Expires: p.GetExpires(), TimeLeftMs: p.GetTimeLeftMs(), Digest: p.GetDigest(), MayDecide: p.MayDecide})
		}
		if watch {
			b, err := json.Marshal(out)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(w, "%s\n", b)
			return err
		}
		return writeJSON(w, out)
	}
	var b strings.Builder
	if watch && !first {
		b.WriteString("\n---- " + time.Now().Format("15:04:05") + "\n")
	}
	if len(reqs) == 0 {
		b.WriteString("no calls wait for a decision\n")
	}
	for i, p := range reqs {
		if i > 0 {
			b.WriteString("\n")
		}
		left := manifest.Duration((time.Duration(p.GetTimeLeftMs()) * time.Millisecond).Round(time.Second))
		door := ""
		if p.GetDoor() != "" {
			door = " over " + p.GetDoor()
		}
		fmt.Fprintf(&b, "%s  %s %s  from %s%s  %s left\n", p.GetId(), p.GetSkill(), p.GetVersion(), p.GetCaller(), door, left)
		// The input as its value (approval.InputView), never the caller's own text: no
		// layout of theirs (lines made to look like this tool's own), no character that
		// hides or reorders text.
		view := approval.InputView([]byte(p.GetInputJson()))
		cut := !o.full && len(view) > maxShownInput
		if cut {
			view = cutText(view, maxShownInput)
		}
		fmt.Fprintf(&b, "  input (%d bytes as sent; shown as its value, keys sorted, hidden characters as \\uXXXX):\n", len(p.GetInputJson()))
		for _, line := range strings.Split(view, "\n") {
			b.WriteString("    " + line + "\n")
		}
		if cut {
			b.WriteString("    … (cut here; skillbox pending --full shows it whole)\n")
		}
		fmt.Fprintf(&b, "  sha256: %s\n", p.GetInputSha256())
		if p.GetReason() != "" {
			fmt.Fprintf(&b, "  note:   %s\n", p.GetReason())
		}
		switch {
		case p.MayDecide != nil && !p.GetMayDecide():
			fmt.Fprintf(&b, "  decide: not yours to decide (approvers: %s; never the call's own caller)\n", strings.Join(p.GetApprovers(), ", "))
		case cut:
			fmt.Fprintf(&b, "  decide: the input is cut: read it whole (skillbox pending --full) before you allow   |   skillbox deny %s --reason TEXT\n", p.GetId())
		default:
			fmt.Fprintf(&b, "  decide: skillbox allow %s   |   skillbox deny %s --reason TEXT\n", p.GetId(), p.GetId())
		}
		b.WriteString("  grant:\n")
		for _, line := range strings.Split(strings.TrimRight(p.GetReview(), "\n"), "\n") {
			if line == "" {
				b.WriteString("\n") // no trailing blanks
				continue
			}
			b.WriteString("    " + line + "\n")
		}
	}
	_, err := io.WriteString(w, terminalSafe(b.String()))
	return err
}

// terminalSafe replaces control characters other than newlines, and characters that
// hide or reorder text (bidirectional overrides, zero-width and other format
// characters; approval.Disguising), with U+FFFD, spaces other than ASCII's with a
// space: the skill's words and the operator's note come from an author and an
// operator, and must neither drive the operator's terminal (escape sequences, C1
// controls, carriage returns) nor disguise what is printed. (The input is already
// escaped by approval.InputView.)
func terminalSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case !approval.Disguising(r):
			return r
		case unicode.Is(unicode.Zs, r):
			return ' '
		}
		return '\uFFFD'
	}, s)
}

// cutText cuts s to at most n bytes, at a character's start.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
