package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/skillbox-dev/skillbox/internal/cli/base"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/review"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/host"
	"github.com/skillbox-dev/skillbox/runtime/store"
	"github.com/skillbox-dev/skillbox/signing"
	"github.com/skillbox-dev/skillbox/skillpkg/oci"
)

// homeFlag is the skill home, shared by every operator command.
func homeFlag() cli.Flag { return base.HomeFlag() }

// skillboxHome is --home, else $SKILLBOX_HOME, else ~/.skillbox.
func skillboxHome(c *cli.Context) (host.Home, error) {
	return host.ResolveHome(c.String("home"))
}

// operator names the person or process acting, for the audit log.
func operator(c *cli.Context) string {
	if by := c.String("by"); by != "" {
		return by
	}
	name := fmt.Sprintf("uid:%d", os.Getuid())
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return "cli:" + name
}

// openHost opens the skill home and its engine for a one-shot command. opts.Home is
// set here; with NoSandboxes (commands that only read or write operator state)
// nothing is compiled and Docker is not asked.
func openHost(c *cli.Context, opts host.Options) (*host.Host, error) {
	home, err := skillboxHome(c)
	if err != nil {
		return nil, err
	}
	opts.Home = home
	return host.Open(c.Context, opts)
}

func installCommand() *cli.Command {
	return &cli.Command{
		Name:      "install",
		Usage:     "verify a signed package against trust.yaml and copy it into the store",
		ArgsUsage: "DIR|FILE.tar.gz|oci://REF",
		UsageText: "skillbox install DIR|FILE.tar.gz|oci://HOST/REPOSITORY(@sha256:DIGEST|:TAG)\n\nExample:\n  skillbox install ./fetch\n  skillbox install fetch-1.0.0.tar.gz\n" +
			"  skillbox install oci://registry.example.com/skills/fetch@sha256:…",
		Description: "The package's bundle must verify against $SKILLBOX_HOME/trust.yaml: signature, the exact\n" +
			"two subjects and both digests recomputed from the files. Container packages have their\n" +
			"image.tar loaded and its ID checked against the signed manifest. Installing does not\n" +
			"approve: run `skillbox approve NAME` next.\n" +
			"From a registry (oci://), the artifact is pulled with the archive's size limits, every\n" +
			"layer checked against its digest, the bundle taken from its referrers; a tag is resolved\n" +
			"to a digest, which is printed and kept in the audit log. Then it is verified as above.\n" +
			"trust.yaml lists the signers you trust (docs/operator-guide.md, section 1), e.g.:\n\n" +
			"  signers:\n" +
			"    - name: acme-release\n" +
			"      key: keys/acme.pub      # the signer's PEM public key, relative to trust.yaml\n",
		Flags: append([]cli.Flag{homeFlag(), &cli.StringFlag{Name: "by", Usage: "who is installing, for the audit log"}}, registryFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("install: want exactly one DIR, FILE.tar.gz or oci://REF (see skillbox install --help)")
			}
			if err := missingSource("install", c.Args().First()); err != nil {
				return err
			}
			// No trust.yaml is the first hour's usual stop: say how to write one,
			// before anything is pulled or unpacked.
			home, err := skillboxHome(c)
			if err != nil {
				return fmt.Errorf("install: %w", err)
			}
			if _, err := signing.LoadPolicy(home.Trust()); errors.Is(err, signing.ErrNoPolicy) {
				return fmt.Errorf("install: %w (write one listing your signers: skillbox install --help shows how)", err)
			}
			// Docker loads and checks a container package's image (without Docker such a
			// package is refused); a wasm module is compiled into the cache the server
			// uses, so its first call is quick.
			h, err := openHost(c, host.Options{})
			if err != nil {
				return fmt.Errorf("install: %w", err)
			}
			defer h.Close()
			eng := h.Engine()
			src, origin := c.Args().First(), engine.Origin{}
			var pulledOrigin *oci.Pulled
			if oci.IsRef(src) {
				p, err := pullPackage(c, src, eng.VerifyBundle)
				if err != nil {
					return fmt.Errorf("install: %w", err)
				}
				defer p.done()
				fmt.Fprint(c.App.Writer, resolvedLine(p.origin))
				origin = engine.Origin{Source: p.origin.Pinned(), Details: originDetails(p.origin), Ref: p.origin.Pinned()}
				pulledOrigin = p.origin
				src = p.dir
			}
			in, err := eng.InstallFrom(c.Context, src, operator(c), origin)
			if err != nil {
				return withRejected(err, pulledOrigin)
			}
			verb := "installed"
			if in.Already {
				verb = "already installed"
			}
			fmt.Fprintf(c.App.Writer, "%s %s %s (%s)\nsigned by %s\nnext: skillbox review %s && skillbox approve %s\n",
				verb, in.Entry.Name, in.Entry.Version, in.Entry.ManifestDigest, in.Signer, in.Entry.Name, in.Entry.Name)
			return nil
		},
	}
}

func approveCommand() *cli.Command {
	return &cli.Command{
		Name:      "approve",
		Usage:     "show the review of an installed skill, then grant it (what it asks, or less)",
		ArgsUsage: "NAME",
		UsageText: "skillbox approve NAME [--grant FILE] [--by WHO] [--yes] [--pin VERSION|DIGEST]\n\nExample:\n  skillbox approve fetch --grant fetch-grant.yaml --by alice --yes",
		Description: "Writes $SKILLBOX_HOME/approvals/NAME.yaml pinned to the manifest digest and signer.\n" +
			"Without --grant the skill gets exactly what its manifest asks, under the callers and\n" +
			"oversight of the version approved before, if any (file capabilities then\n" +
			"need a grant file, since only the operator can choose host directories; env and secret\n" +
			"values come only from one, so without it they are left out). A grant wider\n" +
			"than the manifest is refused. Grant file format (every key optional):\n\n" +
			"  network: [\"https://api.example.com\"]      # a subset of the manifest's origins\n" +
			"  files: [{path: /data, host: /srv/data, access: read}]\n" +
			"  env: {LANG: C.UTF-8}\n" +
			"  secrets: {API_TOKEN: \"env:ACME_TOKEN\"}   # or file:/abs/path\n" +
			"  limits: {timeout: 5s, memory: 32MiB, output: 256KiB, requests: 5}\n" +
			"  callers: [\"unix:uid=1000\", \"token:agent\"]\n" +
			"  oversight: {approvers: [\"token:alice\"], wait: 5m, reason: \"payments\"}  # each call waits for a person (docs/oversight.md)\n",
		// The client flags name the server to tell to reload (default: the local
		// socket, if one answers), with its credentials, as for every client command.
		Flags: append(clientFlags(),
			&cli.StringFlag{Name: "grant", Usage: "grant file (YAML); default: exactly what the manifest asks"},
			&cli.StringFlag{Name: "by", Usage: "who approves, recorded in the approval and the audit log"},
			&cli.StringFlag{Name: "pin", Usage: "approve this version or manifest digest (default: the newest installed)"},
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "approve without asking"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("approve: want exactly one NAME (see skillbox approve --help)")
			}
			// A grant file that cannot be read is said in the words sign uses for its
			// --key, before anything else is looked at.
			if f := c.String("grant"); f != "" {
				if _, err := os.Stat(f); err != nil {
					return fmt.Errorf("approve: --grant %w", fileWords(f, err))
				}
			}
			h, err := openHost(c, host.Options{NoSandboxes: true})
			if err != nil {
				return fmt.Errorf("approve: %w", err)
			}
			defer h.Close()
			eng := h.Engine()
			cand, err := eng.Candidate(c.Context, c.Args().First(), c.String("pin"))
			if err != nil {
				return fmt.Errorf("approve: %w", notInstalledWords(c, c.Args().First(), err))
			}
			var grant *approval.Grant
			if f := c.String("grant"); f != "" {
				g, err := approval.LoadGrant(f)
				if err != nil {
					return fmt.Errorf("approve: %w", err)
				}
				grant = &g
			}
			// A grant that would be refused is refused before the operator reads it.
			shown := approval.Ask(cand.Entry.Manifest)
			var kept []string
			if grant != nil {
				shown = *grant
			} else if shown, kept = approval.Keep(shown, cand.Approval); len(kept) > 0 {
				grant = &shown
			}
			if err := approval.CheckGrant(cand.Entry.Manifest, shown, "grant"); err != nil {
				return fmt.Errorf("approve %s: %w", cand.Entry.Name, err)
			}
			if err := approval.CheckHome(shown.Files, eng.Home(), "grant"); err != nil {
				return fmt.Errorf("approve %s: %w", cand.Entry.Name, err)
			}
			if err := writeCandidateReview(c.App.Writer, cand, false, true); err != nil {
				return err
			}
			writeGrant(c.App.Writer, cand.Entry.Manifest, shown, c.String("grant") == "", kept)
			if !c.Bool("yes") && !confirm(c, "Approve "+cand.Entry.Name+" "+cand.Entry.Version+"?") {
				return errors.New("approve: not approved (answer y, or pass --yes)")
			}
			a, err := eng.Approve(c.Context, cand, grant, operator(c))
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "approved %s %s for signer %s by %s\n", a.Skill, cand.Entry.Version, a.Signer, a.ApprovedBy)
			notifyReload(c)
			return nil
		},
	}
}

// confirm asks on stdin; anything but y/yes is no, and so is a closed stdin.
func confirm(c *cli.Context, question string) bool {
	fmt.Fprintf(c.App.Writer, "%s [y/N] ", question)
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

// writeCandidateReview prints what the operator must read: first what is new since the
// approved version (compared with its grant), then the whole review. approving says the
// review is shown by approve, which is about to approve it.
func writeCandidateReview(w io.Writer, cand *engine.Candidate, asJSON, approving bool) error {
	r := review.Describe(cand.Entry.Manifest)
	moduleKind(&r, cand.Entry.Manifest, cand.Entry.Dir)
	r.Signer = cand.Signer.String()
	r.ManifestDigest = cand.Entry.ManifestDigest
	r.CodeDigest = cand.Entry.CodeDigest
	var changes *review.Changes
	if cand.Approved != nil && cand.Approved.ManifestDigest != cand.Entry.ManifestDigest {
		// Against what the approved version really got, not what it asked: an origin
		// the operator left out then is new now if this version asks for it.
		ch := review.Diff(cand.Approval.Grant.Granted(cand.Approved.Manifest), cand.Entry.Manifest)
		changes = &ch
	}
	if asJSON {
		type out struct {
			review.Report
			Approved        bool            `json:"approved"`
			ApprovedVersion string          `json:"approvedVersion,omitempty"`
			Changes         *review.Changes `json:"changes,omitempty"`
		}
		o := out{Report: r, Changes: changes}
		if cand.Approval != nil {
			o.Approved = cand.Approval.ManifestDigest == cand.Entry.ManifestDigest
		}
		if cand.Approved != nil {
			o.ApprovedVersion = cand.Approved.Version
		}
		return writeJSON(w, o)
	}
	switch {
	case cand.Approval == nil && approving:
		fmt.Fprintf(w, "FIRST APPROVAL of %s: no version of it has been approved before.\n\n", cand.Entry.Name)
	case cand.Approval == nil:
		fmt.Fprintf(w, "NOT APPROVED: no version of %s has been approved yet.\n\n", cand.Entry.Name)
	case cand.Approval.ManifestDigest == cand.Entry.ManifestDigest:
		fmt.Fprintf(w, "APPROVED by %s at %s.\n\n", cand.Approval.ApprovedBy, cand.Approval.ApprovedAt.Format("2006-01-02 15:04 MST"))
	case changes != nil:
		kind := "NEW VERSION"
		switch store.CompareVersions(cand.Entry.Version, cand.Approved.Version) {
		case -1:
			kind = "OLDER VERSION"
		case 0:
			kind = "ANOTHER BUILD of the same version"
		}
		fmt.Fprintf(w, "%s %s is not approved (approved: %s); compared with what %s was granted:\n",
			kind, cand.Entry.Version, cand.Approved.Version, cand.Approved.Version)
		if changes.Empty() {
			fmt.Fprintln(w, "It asks for nothing beyond the approved version.")
		} else {
			fmt.Fprint(w, changes.Items()) // under the heading above, not a second one
		}
		fmt.Fprintln(w)
	default:
		fmt.Fprintf(w, "NOT APPROVED: the approved version %s is no longer installed.\n\n", cand.Approval.ManifestDigest)
	}
	return r.WriteText(w)
}

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:  "audit",
		Usage: "check or follow the audit log",
		Subcommands: []*cli.Command{
			{
				Name:  "verify",
				Usage: "check the log's hash chain; names the first bad line and prints the head to keep",
				UsageText: "skillbox audit verify [--file PATH] [--head HASH] [--json]\n\n" +
					"The chain shows an edited, dropped or reordered line, but not whole lines cut from the end.\n" +
					"For those, keep the head elsewhere (a log collector, a ticket) and pass it back with --head: verify\n" +
					"then also fails unless that record is still in the chain. The head is the last record's \"hash\"\n" +
					"field, the one in the log's last line (`tail -n1 audit.jsonl | jq -r .hash` prints it too).\n" +
					"A bad last line (a crash, or an edit of that line) is named with `skillbox audit recover`, which\n" +
					"moves it aside (`audit recover --file PATH` for a log verified with --file); damage further up is\n" +
					"not recoverable: it says the log was changed. No log at all is a failure too: it may have been removed.\n\n" +
					"Examples:\n  skillbox audit verify\n  skillbox audit verify --head 3f1c...e9\n" +
					"  skillbox audit verify --json    # {\"ok\":true,\"lines\":46,\"head\":\"3f1c...e9\"}",
				Flags: []cli.Flag{homeFlag(), &cli.StringFlag{Name: "file", Usage: "audit log file (default: $SKILLBOX_HOME/audit/audit.jsonl)"},
					&cli.StringFlag{Name: "head", Usage: "a head printed by an earlier verify (64 hex, sha256: prefix allowed): fail unless that record is still in the chain"},
					&cli.BoolFlag{Name: "json", Usage: "print {ok, lines, head} (and error, badLine, recoverable on failure) as JSON"}},
				Action: auditVerify,
			},
			{
				Name:  "recover",
				Usage: "move a bad last line (left by a crash) aside and continue the chain",
				UsageText: "skillbox audit recover [--file PATH] [--by NAME]\n\n" +
					"Only the log's last line is repaired, and only after lines that chain. A torn line (no newline)\n" +
					"or a whole line that is not a record continuing the chain is moved to a side file next to the log\n" +
					"(audit.jsonl.torn-LINE-HASH or .bad-LINE-HASH), and an audit.recovered record with its length\n" +
					"and sha256 continues the chain. A last record complete but for its newline is kept: the newline\n" +
					"is added and recorded. Damage before the last line is refused, changing nothing.\n" +
					"Refused while a server (or another skillbox command) has the log open: stop the server first.\n" +
					"--file repairs a log elsewhere (a copy, or another home's), its side file written next to it.\n\n" +
					"Example:\n  skillbox audit recover",
				Flags: []cli.Flag{homeFlag(), &cli.StringFlag{Name: "by", Usage: "who is recovering, for the audit log"},
					&cli.StringFlag{Name: "file", Usage: "audit log file (default: $SKILLBOX_HOME/audit/audit.jsonl)"}},
				Action: auditRecover,
			},
			{
				Name:      "tail",
				Usage:     "print the audit log (or its last N records), optionally following it",
				UsageText: "skillbox audit tail [-n N] [-f] [--file PATH]\n\nExamples:\n  skillbox audit tail -n 20\n  skillbox audit tail -f | jq -c 'select(.event==\"invoke.end\")'",
				Flags: []cli.Flag{homeFlag(),
					&cli.StringFlag{Name: "file", Usage: "audit log file (default: $SKILLBOX_HOME/audit/audit.jsonl)"},
					&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Usage: "print only the last `N` records (default: all; with -f, then the new ones)"},
					&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new records"}},
				Action: func(c *cli.Context) error {
					if c.NArg() != 0 {
						return usagef("audit tail: takes no arguments (see skillbox audit tail --help)")
					}
					last := -1
					if c.IsSet("lines") {
						if last = c.Int("lines"); last < 0 {
							return usagef("audit tail: -n %d: want a number of records, 0 or more", last)
						}
					}
					path, err := auditLog(c, "audit tail")
					if err != nil {
						return err
					}
					if err := audit.TailLast(c.Context, path, last, c.Bool("follow"), c.App.Writer); err != nil && !errors.Is(err, context.Canceled) {
						return fmt.Errorf("audit tail: %w", recoverAdvice(c, path, err))
					}
					return nil
				},
			},
		},
	}
}

// auditVerify is `skillbox audit verify`.
func auditVerify(c *cli.Context) error {
	if c.NArg() != 0 {
		return usagef("audit verify: takes no arguments (see skillbox audit verify --help)")
	}
	var kept string
	if c.IsSet("head") {
		h, err := audit.ParseHead(c.String("head"))
		if err != nil {
			return usagef("audit verify: --head: want the 64-hex head printed by `skillbox audit verify`")
		}
		kept = h
	}
	path, err := auditLog(c, "audit verify")
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	defer f.Close()
	var n int
	var head string
	if kept != "" {
		n, head, err = audit.VerifyReaderHead(f, kept)
	} else {
		n, head, err = audit.VerifyReader(f)
	}
	err = recoverAdvice(c, path, err)
	if c.Bool("json") {
		type result struct {
			OK          bool   `json:"ok"`
			Lines       int    `json:"lines"` // records that verified
			Head        string `json:"head"`  // the last of them's hash field
			Error       string `json:"error,omitempty"`
			BadLine     int    `json:"badLine,omitempty"`
			Recoverable bool   `json:"recoverable,omitempty"` // `skillbox audit recover` repairs it
		}
		r := result{OK: err == nil, Lines: n, Head: head}
		if err != nil {
			r.Error = oneLine(err)
			var ce *audit.ChainError
			if errors.As(err, &ce) {
				r.BadLine, r.Recoverable = ce.Line, ce.Last
			}
		}
		if werr := writeJSON(c.App.Writer, r); werr != nil {
			return werr
		}
	}
	if err != nil {
		return fmt.Errorf("audit verify: %s: %w", path, err)
	}
	if c.Bool("json") {
		return nil
	}
	fmt.Fprintf(c.App.Writer, "ok: %d records, chain intact, head %s\n", n, head)
	switch kept {
	case "":
	case audit.Genesis:
		// In every log, as its start: true, and no evidence about this one's end.
		fmt.Fprintln(c.App.Writer, "the kept head is an empty log's: every log holds it, so it proves nothing about this log's end")
	default:
		fmt.Fprintf(c.App.Writer, "the kept head %s is in the chain\n", kept)
	}
	return nil
}

// auditRecover is `skillbox audit recover`.
func auditRecover(c *cli.Context) error {
	if c.NArg() != 0 {
		return usagef("audit recover: takes no arguments (see skillbox audit recover --help)")
	}
	path, err := auditLog(c, "audit recover")
	if err != nil {
		return err
	}
	r, err := audit.RecoverFile(path, operator(c))
	if errors.Is(err, audit.ErrNothingToRecover) {
		fmt.Fprintln(c.App.Writer, strings.TrimPrefix(oneLine(err), "audit recover: "))
		return nil
	}
	if err != nil {
		return err
	}
	switch r.Reason {
	case audit.ReasonMissingNewline:
		fmt.Fprintf(c.App.Writer, "line %d is a whole record that lacked its final newline: added it\n", r.Line)
	default:
		fmt.Fprintf(c.App.Writer, "line %d %s: moved it to %s (length %d, sha256 %s)\n", r.Line, r.Why, r.SideFile, r.Bytes, r.SHA256)
	}
	fmt.Fprintf(c.App.Writer, "recorded as record %d; head %s\n", r.Seq, r.Head)
	return nil
}

// auditLog is the log an audit subcommand (cmd) works on, auditPath, said to be missing
// in words when it is: a failure, not an empty log, since a log that is not there may
// be one that was removed.
func auditLog(c *cli.Context, cmd string) (string, error) {
	path, err := auditPath(c)
	if err != nil {
		return "", fmt.Errorf("%s: %w", cmd, err)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if c.String("file") != "" {
			return "", fmt.Errorf("%s: --file %s does not exist", cmd, path)
		}
		return "", fmt.Errorf("%s: there is no audit log at %s: nothing has been recorded in this home, or the log was removed "+
			"(is --home or SKILLBOX_HOME right?)", cmd, path)
	}
	return path, nil
}

// recoverAdvice makes a bad last line's advice name the log that was read: a command
// given --file or --home is told to give recover the same (the audit package names
// plain `skillbox audit recover`, which repairs the log of $SKILLBOX_HOME or ~/.skillbox).
// An error already wrapped has its words fixed in place; its chain is kept.
func recoverAdvice(c *cli.Context, path string, err error) error {
	var ce *audit.ChainError
	if !errors.As(err, &ce) || !ce.Last {
		return err
	}
	switch {
	case c.String("file") != "":
		ce.Fix = "skillbox audit recover --file " + shellWord(path)
	case c.String("home") != "" && c.String("home") != os.Getenv(host.EnvHome):
		ce.Fix = "skillbox audit recover --home " + shellWord(c.String("home"))
	default:
		return err
	}
	if err == error(ce) {
		return err
	}
	// Wrapping wrote the message when it was made (fmt.Errorf).
	return &worded{strings.Replace(err.Error(), "`skillbox audit recover`", "`"+ce.Fix+"`", 1), err}
}

// shellWord is s as one word of a shell command line: as it is when that is safe,
// else in single quotes.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./+=:@,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func auditPath(c *cli.Context) (string, error) {
	if f := c.String("file"); f != "" {
		return f, nil
	}
	home, err := skillboxHome(c)
	if err != nil {
		return "", err
	}
	return home.AuditLog(), nil
}

// writeGrant shows what the approval will really give, next to what was asked, so the
// operator reads the narrowed grant before it is written.
func writeGrant(w io.Writer, m *manifest.Manifest, g approval.Grant, asked bool, kept []string) {
	fmt.Fprintln(w, "\nGRANT (what the skill will really get):")
	if len(kept) > 0 {
		fmt.Fprintf(w, "  kept from the approved version: %s (a --grant file without them lifts them)\n", strings.Join(kept, " and "))
	}
	switch {
	case asked && asksValues(m):
		// The values' sources are the operator's to name; "left out" below lists them.
		fmt.Fprintln(w, "  what it asks but env and secret values (no --grant file; only one names their sources:"+
			" env: {NAME: value}, secrets: {NAME: \"env:VAR\" or \"file:/path\"})")
	case asked:
		fmt.Fprintln(w, "  exactly what it asks (no --grant file)")
	}
	for _, line := range g.Words(m) {
		fmt.Fprintln(w, "  "+line)
	}
	fmt.Fprintln(w)
}

// asksValues reports whether m asks for env or secret values, which only a grant file
// can give.
func asksValues(m *manifest.Manifest) bool {
	c := m.Capabilities
	return len(c.Env)+len(c.Secrets)+len(c.Brokered) > 0
}

func isPackageDir(c *cli.Context, arg string) (bool, error) { return base.IsPackageDir(c, arg) }
