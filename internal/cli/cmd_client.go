package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/skillbox-dev/skillbox/internal/cli/base"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"github.com/skillbox-dev/skillbox/runtime/client"
	"github.com/skillbox-dev/skillbox/runtime/host"
	"github.com/skillbox-dev/skillbox/runtime/server"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

// clientFlags are the flags of every command that talks to a server.
func clientFlags() []cli.Flag {
	return []cli.Flag{
		homeFlag(),
		&cli.StringFlag{Name: "server", EnvVars: []string{"SKILLBOX_SERVER"}, Usage: "server ADDR: unix:///abs/path.sock or host:port", DefaultText: "unix://$SKILLBOX_HOME/skillbox.sock"},
		&cli.StringFlag{Name: "ca", Usage: "CA certificate (PEM) that verifies a TLS server"},
		&cli.StringFlag{Name: "cert", Usage: "client certificate (PEM) for a server that asks for one"},
		&cli.StringFlag{Name: "key", Usage: "client key (PEM) for --cert"},
		&cli.StringFlag{Name: "token", EnvVars: []string{"SKILLBOX_TOKEN"}, Usage: "bearer token for a server with a token file"},
	}
}

func dial(c *cli.Context) (*grpc.ClientConn, error) {
	home, err := skillboxHome(c)
	if err != nil {
		return nil, err
	}
	conn, err := transport.Dial(c.Context, transport.ClientConfig{
		Addr: c.String("server"), Home: home.Dir(), CACert: c.String("ca"),
		ClientCert: c.String("cert"), ClientKey: c.String("key"), Token: c.String("token"),
	})
	// An address not of the forms --server takes is a command line that is wrong.
	if ae := (*transport.AddrError)(nil); errors.As(err, &ae) && ae.Addr == c.String("server") {
		return nil, usagef("--server %q: %s", ae.Addr, ae.Problem)
	}
	return conn, err
}

// serverDown reports whether err means that no server answered (as opposed to a
// server that answered with a refusal).
func serverDown(err error) bool {
	return status.Code(err) == codes.Unavailable
}

// statusWords is a gRPC error in the user's words: one line of message, the
// machine-readable reason (the ErrorDetail's; for a status without one, its code's
// name, the only machine word it has) and the audit record, if any. The code of a status
// with a detail is left out: the reason alone decides it (docs/api.md, Errors).
func statusWords(st *status.Status, ed *pb.ErrorDetail) (msg, reason, auditID string) {
	switch {
	case ed != nil:
		return ed.GetMessage(), ed.GetReason(), ed.GetAuditId()
	case st.Code() == codes.Unavailable && (strings.Contains(st.Message(), "no such file or directory") ||
		strings.Contains(st.Message(), "connection refused")):
		return "no server answers: start one with `skillbox serve`, or name another address with --server", "UNAVAILABLE", ""
	case st.Code() == codes.Unavailable && serverWentAway(st.Message()):
		return "the server shut down during the call", "UNAVAILABLE", ""
	case st.Code() == codes.Unauthenticated:
		return st.Message() + ": pass --token or set SKILLBOX_TOKEN to a token from the server's --token-file", "UNAUTHENTICATED", ""
	}
	return st.Message(), client.CodeName(st.Code()), ""
}

// statusError is a gRPC error as one line, "MESSAGE (REASON) audit N" (statusWords),
// keeping the status in its chain.
type statusError struct {
	line string
	err  error
}

func (e *statusError) Error() string { return e.line }
func (e *statusError) Unwrap() error { return e.err }

// statusLine turns a gRPC error into one line ending with its machine-readable
// reason: "MESSAGE (REASON) audit N", the shape of every failed call's line
// (base.CallError). An error that is not a status is returned as it is.
func statusLine(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg, reason, auditID := statusWords(st, client.Detail(err))
	return &statusError{line: base.ReasonLine(msg, reason, auditID), err: err}
}

// serverWentAway reports whether an UNAVAILABLE status without details is gRPC's word
// for a connection the server closed under the call (a shutdown, or a crash), e.g.
// "closing transport due to: connection error: desc = \"error reading from server:
// EOF\", received prior goaway: code: NO_ERROR, debug data: \"graceful_stop\"".
func serverWentAway(msg string) bool {
	for _, s := range []string{"goaway", "error reading from server", "transport is closing", "connection reset by peer"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// clientFailure is what a client command with --json (pending, skills, calls) does with
// err, the server's refusal or no server answering: with --json it prints invoke --json's
// error object on stdout (reason, message, field, audit id), so that a script reading
// stdout gets an answer either way; the stderr line is cmd's, as without --json.
func clientFailure(c *cli.Context, cmd string, err error) error {
	if c.Bool("json") {
		if werr := base.WriteRunFailure(c.App.Writer, base.RunFailure{Error: invokeFailure(err).Error}); werr != nil {
			return werr
		}
	}
	return fmt.Errorf("%s: %w", cmd, statusLine(err))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func invokeCommand() *cli.Command {
	return &cli.Command{
		Name:      "invoke",
		Usage:     "call a skill over gRPC",
		ArgsUsage: "NAME",
		UsageText: "skillbox invoke [--server ADDR] NAME --input JSON|@FILE [--pin VERSION|DIGEST] [--json]\n\nExample:\n  skillbox invoke decimal --input '{\"expression\":\"19.99 * 3\"}'",
		Flags: append(clientFlags(),
			&cli.StringFlag{Name: "input", Usage: "input JSON, or @FILE to read it from a file (@- for stdin) (required)"},
			&cli.StringFlag{Name: "pin", Usage: "version or manifest digest the call must run"},
			&cli.DurationFlag{Name: "timeout", Usage: "lower the call's time budget"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as one compact JSON line; a failed call prints one too, with its error (reason, message, audit id)"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("invoke: want exactly one NAME (see skillbox invoke --help)")
			}
			if !c.IsSet("input") {
				return usagef("invoke: --input is required: the call's input as JSON, or @FILE (@- for stdin)")
			}
			input, err := readInput(c.String("input"))
			if err != nil {
				return fmt.Errorf("invoke: %w", err)
			}
			if !utf8.Valid(input) {
				// The wire carries input as a protobuf string, which must be UTF-8 (as
				// JSON must): say so here rather than as a marshalling error, with the
				// reason the server, MCP and run give such input.
				ce := &base.CallError{Cmd: "invoke", Name: c.Args().First(), Message: "--input: not valid JSON (not UTF-8 text)", Reason: "INVALID_INPUT"}
				if c.Bool("json") {
					fail := base.RunFailure{Error: base.RunError{Reason: ce.Reason, Message: ce.Message, Field: "input"}}
					if werr := base.WriteRunFailure(c.App.Writer, fail); werr != nil {
						return werr
					}
				}
				return ce
			}
			conn, err := dial(c)
			if err != nil {
				return fmt.Errorf("invoke: %w", err)
			}
			defer conn.Close()
			req := &pb.InvokeRequest{Name: c.Args().First(), Pin: c.String("pin"), InputJson: string(input)}
			if d := c.Duration("timeout"); d < 0 {
				return usagef("invoke: --timeout %s: must not be negative", d)
			} else if d > 0 {
				req.Limits = &pb.Limits{TimeoutMs: d.Milliseconds()}
			}
			// A call under oversight says so while it waits: otherwise the terminal
			// would sit silent until a person decides (or the wait ends).
			var waitedFor string // the call's id, once it waits for a decision
			res, err := client.Invoke(c.Context, conn, req, func(w client.Waiting) {
				waitedFor = w.CallID
				fmt.Fprintln(c.App.ErrWriter, waitingLine(req.Name, w))
			})
			if err != nil {
				// A call that ran shows the end of its logs and its usage (output null)
				// before the line saying why it failed, as run does; with --json, every
				// failed call says why on stdout too.
				fail := invokeFailure(err)
				if fail.Error.CallID == "" {
					fail.Error.CallID = waitedFor
				}
				if c.Bool("json") {
					if werr := base.WriteRunFailure(c.App.Writer, fail); werr != nil {
						return werr
					}
				} else if fail.RunOutput != nil {
					if werr := writeRunOutput(c, *fail.RunOutput, false); werr != nil {
						return werr
					}
				}
				return callStatusError("invoke", req.Name, err)
			}
			out := runOutput{
				Output:  json.RawMessage(res.GetOutputJson()),
				Logs:    res.GetLogs(),
				Usage:   runUsageOf(res.GetUsage()),
				Egress:  []base.RunEgress{},
				Version: res.GetVersion(), CallID: res.GetCallId(), AuditID: res.GetAuditId(),
			}
			for _, e := range res.GetEgress() {
				t, _ := time.Parse(time.RFC3339Nano, e.GetTime())
				out.Egress = append(out.Egress, base.RunEgress{Time: t, Method: e.GetMethod(), URL: e.GetUrl(), Allowed: e.GetAllowed(),
					Reason: e.GetReason(), Status: int(e.GetStatus()), Bytes: e.GetBytes()})
			}
			return writeRunOutput(c, out, c.Bool("json"))
		},
	}
}

// runUsageOf is the wire's usage as run and invoke print it.
func runUsageOf(u *pb.Usage) base.RunUsage {
	return base.RunUsage{WallMs: u.GetWallMs(), CompileMs: u.GetCompileMs(), PeakMemoryBytes: u.GetPeakMemoryBytes(),
		OutputBytes: u.GetOutputBytes(), Requests: int(u.GetRequests()), DeniedRequests: int(u.GetDeniedRequests())}
}

// invokeFailure is a failed invoke as --json prints it: the reason, message, field,
// audit id and call id of the status's ErrorDetail, and for a call that ran the end of
// its logs and its usage (its egress decisions are in the audit log, not the reply);
// for a status without one (no server, a refused token, a server gone during the
// call), the status code's name and the stderr line's words.
func invokeFailure(err error) base.RunFailure {
	if ed := client.Detail(err); ed != nil {
		fail := base.RunFailure{Error: base.RunError{Reason: ed.GetReason(), Message: ed.GetMessage(),
			Field: ed.GetField(), AuditID: ed.GetAuditId(), CallID: ed.GetCallId()}}
		if ed.GetCallId() != "" { // the call ran: the end of its logs and its usage
			fail.RunOutput = &base.RunOutput{Logs: ed.GetLogs(), LogsTruncated: ed.GetLogsTruncated(),
				Usage: runUsageOf(ed.GetUsage()), CallID: ed.GetCallId(), AuditID: ed.GetAuditId()}
		}
		return fail
	}
	st, _ := status.FromError(err)
	msg, reason, _ := statusWords(st, nil)
	return base.RunFailure{Error: base.RunError{Reason: reason, Message: msg}}
}

// callStatusError is a failed call's gRPC error as its one line (base.CallError):
// "CMD NAME: MESSAGE (REASON) audit N".
func callStatusError(cmd, name string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s %s: %w", cmd, name, err)
	}
	msg, reason, auditID := statusWords(st, client.Detail(err))
	return &base.CallError{Cmd: cmd, Name: name, Message: msg, Reason: reason, AuditID: auditID, Err: err}
}

// waitingLine is what invoke prints (to stderr) while its call waits for a decision.
func waitingLine(skill string, w client.Waiting) string {
	line := fmt.Sprintf("waiting: this call of %s needs an approver's decision (request %s", skill, w.CallID)
	if !w.Expires.IsZero() {
		line += fmt.Sprintf(", until %s", w.Expires.Local().Format("15:04:05 MST"))
	}
	return line + "); approvers see it in the console or with skillbox pending"
}

func skillsCommand() *cli.Command {
	return &cli.Command{
		Name:      "skills",
		Usage:     "list the skills a server offers",
		UsageText: "skillbox skills [--server ADDR] [--json]\n\nExample:\n  skillbox skills --json | jq '.[].name'",
		Description: "A newer installed version that waits for approval is named after the list (and as\n" +
			"pendingVersion in --json). With no server answering on the default socket, the skills are\n" +
			"listed from $SKILLBOX_HOME instead (the offline view: what a server started now would offer).\n" +
			"STATE is approved, unapproved (calls are refused until skillbox approve) or disabled (the kill\n" +
			"switch). The description is cut to fit $COLUMNS (else 80 columns); --json has it whole.",
		Flags: append(clientFlags(), &cli.BoolFlag{Name: "json", Usage: "print the full descriptions, schemas included, as JSON"}),
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("skills: takes no arguments (see skillbox skills --help)")
			}
			skills, offline, err := listSkills(c)
			if err != nil {
				return clientFailure(c, "skills", err)
			}
			if offline {
				fmt.Fprintln(c.App.ErrWriter, "skillbox: no server answers; the offline view from the skill home (what a server started now would offer)")
			}
			if c.Bool("json") {
				out := make([]skillJSON, 0, len(skills))
				for _, sk := range skills {
					out = append(out, toSkillJSON(sk))
				}
				return writeJSON(c.App.Writer, out)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			// One STATE column for the kill switch and the approval, and the description
			// cut to the terminal's width: the table fits 80 columns for names up to
			// about 25 characters (--json has every field whole).
			rows := [][]string{{"NAME", "VERSION", "SANDBOX", "STATE", "DESCRIPTION"}}
			var pending []string
			for _, s := range skills {
				sandbox := strings.ToLower(strings.TrimPrefix(s.GetSandbox().String(), "SANDBOX_KIND_"))
				state := "approved"
				switch {
				case s.GetState() == pb.State_STATE_DISABLED:
					state = "disabled"
				case !s.GetApproved():
					state = "unapproved"
				}
				rows = append(rows, []string{s.GetName(), s.GetVersion(), sandbox, state, strings.Join(strings.Fields(s.GetDescription()), " ")})
				if p := s.GetPendingVersion(); p != "" {
					pending = append(pending, fmt.Sprintf("%s %s is installed and waits for approval (%s %s serves): skillbox review %s, then skillbox approve %s",
						s.GetName(), p, s.GetName(), s.GetVersion(), s.GetName(), s.GetName()))
				}
			}
			fitLastColumn(rows, 2, tableWidth())
			for _, r := range rows {
				fmt.Fprintln(tw, strings.Join(r, "\t"))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, p := range pending {
				fmt.Fprintln(c.App.Writer, p)
			}
			return writeBrokered(c.App.Writer, skills)
		},
	}
}

// tableWidth is the width a table is fitted to: $COLUMNS when it is set (a shell sets it
// for a terminal), else 80.
func tableWidth() int {
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 80
}

// fitLastColumn cuts the last cell of each row (free text: a description) with "…" so
// that the row, laid out as tabwriter does with gap spaces between columns, fits width;
// the other columns are names a reader types and are never cut. The last cell keeps at
// least 20 characters, so a row whose other columns are wider than width overflows.
func fitLastColumn(rows [][]string, gap, width int) {
	if len(rows) == 0 {
		return
	}
	last := len(rows[0]) - 1
	used := 0
	for col := 0; col < last; col++ {
		w := 0
		for _, r := range rows {
			w = max(w, utf8.RuneCountInString(r[col]))
		}
		used += w + gap
	}
	room := max(width-used, 20)
	for _, r := range rows {
		if cell := []rune(r[last]); len(cell) > room {
			r[last] = strings.TrimRight(string(cell[:room-1]), " ") + "…"
		}
	}
}

// listSkills asks the server for its skills. With no server answering on the default
// socket (no --server or SKILLBOX_SERVER), it lists them from the skill home and says
// so (offline); a server named explicitly that does not answer is an error (the
// server's status, for clientFailure).
func listSkills(c *cli.Context) (skills []*pb.SkillInfo, offline bool, err error) {
	conn, err := dial(c)
	if err != nil {
		return nil, false, err
	}
	defer conn.Close()
	res, err := pb.NewSkillsClient(conn).List(c.Context, &pb.ListSkillsRequest{})
	if err == nil {
		return res.GetSkills(), false, nil
	}
	if !serverDown(err) || c.IsSet("server") {
		return nil, false, err
	}
	h, herr := openHost(c, host.Options{NoSandboxes: true})
	if herr != nil {
		return nil, false, fmt.Errorf("%w; the skill home cannot be read either: %w", statusLine(err), herr)
	}
	defer h.Close()
	infos, err := h.Engine().List(c.Context)
	if err != nil {
		return nil, false, err
	}
	for _, in := range infos {
		skills = append(skills, server.SkillInfo(in))
	}
	return skills, true, nil
}

func disableCommand() *cli.Command {
	return &cli.Command{
		Name:      "disable",
		Usage:     "the kill switch: refuse new calls of a skill and cancel its calls in flight",
		ArgsUsage: "NAME",
		UsageText: "skillbox disable [--server ADDR] NAME [--reason TEXT]\n\nExample:\n  skillbox disable fetch --reason 'suspicious egress'",
		Description: "With a server answering, it cancels the skill's calls in flight and returns once they\n" +
			"have ended. With no server answering on the default socket, the state is written to\n" +
			"$SKILLBOX_HOME and holds from the next start (a server named with --server or\n" +
			"SKILLBOX_SERVER that does not answer is an error instead). Either way it survives\n" +
			"restarts until `skillbox enable NAME`.",
		Flags: append(clientFlags(), &cli.StringFlag{Name: "reason", Usage: "why, for the audit log and for every caller the switch refuses or ends (one line)"}, &cli.StringFlag{Name: "by", Usage: "who, for the audit log (offline only)"}),
		Action: func(c *cli.Context) error {
			return switchSkill(c, true)
		},
	}
}

func enableCommand() *cli.Command {
	return &cli.Command{
		Name:      "enable",
		Usage:     "lift the kill switch of a skill",
		ArgsUsage: "NAME",
		UsageText: "skillbox enable [--server ADDR] NAME\n\nExample:\n  skillbox enable fetch",
		Flags:     append(clientFlags(), &cli.StringFlag{Name: "by", Usage: "who, for the audit log (offline only)"}),
		Action: func(c *cli.Context) error {
			return switchSkill(c, false)
		},
	}
}

// switchSkill disables or enables through the server, or, with none answering, in the
// skill home directly.
func switchSkill(c *cli.Context, disable bool) error {
	verb := map[bool]string{true: "disable", false: "enable"}[disable]
	if c.NArg() != 1 {
		return usagef("%s: want exactly one NAME (see skillbox %s --help)", verb, verb)
	}
	name := c.Args().First()
	// A server named with --server (or SKILLBOX_SERVER) that cannot be reached is a
	// failure: the switch written to this machine's skill home would not hold there.
	named := c.String("server") != ""
	conn, err := dial(c)
	if err != nil && named {
		return fmt.Errorf("%s %s: %w", verb, name, err)
	}
	if err == nil {
		defer conn.Close()
		admin := pb.NewAdminClient(conn)
		if disable {
			res, err := admin.Disable(c.Context, &pb.DisableRequest{Name: name, Reason: c.String("reason")})
			if err == nil {
				if res.GetWasDisabled() {
					fmt.Fprintln(c.App.Writer, alreadyDisabled(name, res.GetPreviousReason(), c.String("reason")))
				}
				fmt.Fprintf(c.App.Writer, "disabled %s; %d call(s) in flight cancelled and ended\n", name, res.GetCancelledCalls())
				return nil
			}
			if !serverDown(err) || named {
				return fmt.Errorf("disable %s: %w", name, statusLine(err))
			}
		} else {
			res, err := admin.Enable(c.Context, &pb.EnableRequest{Name: name})
			if err == nil {
				if !res.GetWasDisabled() {
					fmt.Fprintln(c.App.Writer, notDisabled(name))
				}
				fmt.Fprintf(c.App.Writer, "enabled %s\n", name)
				return nil
			}
			if !serverDown(err) || named {
				return fmt.Errorf("enable %s: %w", name, statusLine(err))
			}
		}
	}
	h, err := openHost(c, host.Options{NoSandboxes: true})
	if err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	defer h.Close()
	eng := h.Engine()
	prev, was := eng.DisabledReason(name)
	if disable {
		if _, err := eng.Disable(c.Context, name, operator(c), c.String("reason")); err != nil {
			return fmt.Errorf("disable %s: %w", name, err)
		}
		if was {
			fmt.Fprintln(c.App.Writer, alreadyDisabled(name, prev, c.String("reason")))
		}
	} else {
		if err := eng.Enable(c.Context, name, operator(c)); err != nil {
			return fmt.Errorf("enable %s: %w", name, err)
		}
		if !was {
			fmt.Fprintln(c.App.Writer, notDisabled(name))
		}
	}
	fmt.Fprintf(c.App.Writer, "%sd %s (no server answered: written to the skill home; a server on this home honours it when it starts or reloads)\n", verb, name)
	return nil
}

// alreadyDisabled says that a disable found the switch on already and what became of
// its reason, which callers are told: a second disable replaces it.
func alreadyDisabled(name, prev, reason string) string {
	prev, reason = strings.Join(strings.Fields(prev), " "), strings.Join(strings.Fields(reason), " ")
	if prev == reason {
		return fmt.Sprintf("%s was already disabled, with this reason", name)
	}
	was, now := "with no reason", "; its reason is now "+strconv.Quote(reason)
	if prev != "" {
		was = "reason " + strconv.Quote(prev)
	}
	if reason == "" {
		now = "; it now has none"
	}
	return fmt.Sprintf("%s was already disabled (%s)%s", name, was, now)
}

// notDisabled says that an enable found no switch to lift.
func notDisabled(name string) string {
	return fmt.Sprintf("%s was not disabled: nothing to lift", name)
}

// notifyReload asks a running server to re-read approvals; no server is fine.
func notifyReload(c *cli.Context) {
	conn, err := dial(c)
	if err != nil {
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(c.Context, 3*time.Second)
	defer cancel()
	if _, err := pb.NewAdminClient(conn).Reload(ctx, &pb.ReloadRequest{}); err == nil {
		fmt.Fprintln(c.App.Writer, "the running server reloaded its approvals")
	} else if !serverDown(err) {
		fmt.Fprintf(c.App.ErrWriter, "skillbox: warning: the server did not reload: %v\n", statusLine(err))
	}
}

// skillJSON is a skill as `skills --json` prints it: schemas as JSON, not strings,
// and states by name.
type skillJSON struct {
	Name           string          `json:"name"`
	Version        string          `json:"version"`
	Description    string          `json:"description"`
	Sandbox        string          `json:"sandbox"`
	State          string          `json:"state"`
	Approved       bool            `json:"approved"`
	PendingVersion string          `json:"pendingVersion,omitempty"`
	Signer         string          `json:"signer,omitempty"`
	ManifestDigest string          `json:"manifestDigest"`
	CodeDigest     string          `json:"codeDigest"`
	InputSchema    json.RawMessage `json:"inputSchema"`
	OutputSchema   json.RawMessage `json:"outputSchema"`
	Capabilities   struct {
		Network         []string             `json:"network"`
		Files           []fileJSON           `json:"files"`
		Env             []string             `json:"env"`
		Secrets         []string             `json:"secrets"`
		BrokeredSecrets []brokeredSecretJSON `json:"brokeredSecrets"`
	} `json:"capabilities"`
	Limits struct {
		TimeoutMs   int64   `json:"timeoutMs"`
		MemoryBytes int64   `json:"memoryBytes"`
		OutputBytes int64   `json:"outputBytes"`
		CPU         float64 `json:"cpu"`
		Requests    int64   `json:"requests"`
	} `json:"limits"`
}

// fileJSON is a files capability as `skills --json` prints it.
type fileJSON struct {
	Path   string `json:"path"`
	Access string `json:"access"`
}

// brokeredSecretJSON is a brokered secret as `skills --json` prints it.
type brokeredSecretJSON struct {
	Name    string   `json:"name"`
	Origins []string `json:"origins"`
	Header  string   `json:"header"`
}

// writeBrokered prints, under the skills table, each brokered secret with the origins
// it is sent to: what a skill's requests carry without the skill seeing it. Nothing
// when no skill has one.
func writeBrokered(w io.Writer, skills []*pb.SkillInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	n := 0
	for _, s := range skills {
		for _, b := range s.GetCapabilities().GetBrokeredSecrets() {
			if n == 0 {
				fmt.Fprintln(tw, "\nbrokered secrets: added at egress to these origins only, never seen by the skill")
				fmt.Fprintln(tw, "SKILL\tSECRET\tHEADER\tORIGINS")
			}
			n++
			origins := strings.Join(b.GetOrigins(), " ")
			if origins == "" {
				origins = "(none granted: never sent)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.GetName(), b.GetName(), b.GetHeader(), origins)
		}
	}
	return tw.Flush()
}

func toSkillJSON(sk *pb.SkillInfo) skillJSON {
	enum := func(s, prefix string) string { return strings.ToLower(strings.TrimPrefix(s, prefix)) }
	schema := func(s string) json.RawMessage {
		if json.Valid([]byte(s)) {
			return json.RawMessage(s)
		}
		return json.RawMessage("{}")
	}
	out := skillJSON{
		Name: sk.GetName(), Version: sk.GetVersion(), Description: sk.GetDescription(),
		Sandbox: enum(sk.GetSandbox().String(), "SANDBOX_KIND_"), State: enum(sk.GetState().String(), "STATE_"),
		Approved: sk.GetApproved(), PendingVersion: sk.GetPendingVersion(), Signer: sk.GetSigner(), ManifestDigest: sk.GetManifestDigest(), CodeDigest: sk.GetCodeDigest(),
		InputSchema: schema(sk.GetInputSchema()), OutputSchema: schema(sk.GetOutputSchema()),
	}
	caps := sk.GetCapabilities()
	out.Capabilities.Network = append([]string{}, caps.GetNetwork()...)
	out.Capabilities.Env = append([]string{}, caps.GetEnv()...)
	out.Capabilities.Secrets = append([]string{}, caps.GetSecrets()...)
	out.Capabilities.BrokeredSecrets = []brokeredSecretJSON{}
	for _, b := range caps.GetBrokeredSecrets() {
		out.Capabilities.BrokeredSecrets = append(out.Capabilities.BrokeredSecrets,
			brokeredSecretJSON{Name: b.GetName(), Origins: append([]string{}, b.GetOrigins()...), Header: b.GetHeader()})
	}
	out.Capabilities.Files = []fileJSON{} // [] like the other lists, never null
	for _, f := range caps.GetFiles() {
		out.Capabilities.Files = append(out.Capabilities.Files,
			fileJSON{f.GetPath(), strings.ReplaceAll(enum(f.GetAccess().String(), "ACCESS_"), "_", "-")})
	}
	l := sk.GetLimits()
	out.Limits.TimeoutMs, out.Limits.MemoryBytes, out.Limits.OutputBytes = l.GetTimeoutMs(), l.GetMemoryBytes(), l.GetOutputBytes()
	out.Limits.CPU, out.Limits.Requests = l.GetCpu(), l.GetRequests()
	return out
}
