// Command agent is the smallest useful skillbox client, written for agent-framework
// authors to read: it connects to a skillbox server, lists the skills it offers (name,
// description, input schema, what each is granted) and invokes skills, printing each
// result or, for a refused or failed call, the machine-readable reason the server put
// in the status details.
//
//	go run ./examples/agent                                   # list the skills
//	go run ./examples/agent --call 'decimal={"expression":"19.99 * 3"}'
//	go run ./examples/agent --list=false 'jsonq={"data":[1,2],"query":"add"}'
//
// With no --server it dials the server's default socket, unix://$SKILLBOX_HOME/skillbox.sock
// (SKILLBOX_HOME defaults to ~/.skillbox). The exit status is skillbox's own: 0 when
// every call succeeded, 1 when one failed or the agent could not work at all, 2 when the
// command line is wrong (a flag it does not know, a call not written NAME=JSON).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/status"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"github.com/skillbox-dev/skillbox/runtime/client"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// call is one planned invocation: a skill name and its input JSON.
type call struct {
	skill, input string
}

func parseCall(s string) (call, error) {
	name, input, ok := strings.Cut(s, "=")
	if !ok || name == "" || !json.Valid([]byte(input)) {
		return call{}, fmt.Errorf("call %q: want NAME=JSON, e.g. decimal='{\"expression\":\"1+1\"}'", s)
	}
	return call{skill: name, input: input}, nil
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", os.Getenv("SKILLBOX_SERVER"), "server ADDR: unix:///abs/path.sock or host:port (default: the socket in $SKILLBOX_HOME)")
	home := fs.String("home", os.Getenv("SKILLBOX_HOME"), "skillbox home whose default socket to dial (default ~/.skillbox)")
	token := fs.String("token", os.Getenv("SKILLBOX_TOKEN"), "bearer token, for a server started with --token-file")
	list := fs.Bool("list", true, "list the skills before calling")
	timeout := fs.Duration("timeout", 0, "lower each call's time budget (0: the skill's own)")
	var plan []call
	fs.Func("call", "invoke a skill: NAME=JSON (repeatable; bare NAME=JSON arguments work too)", func(s string) error {
		c, err := parseCall(s)
		plan = append(plan, c)
		return err
	})
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2 // the flag package has said why
	}
	for _, a := range fs.Args() {
		c, err := parseCall(a)
		if err != nil {
			fmt.Fprintln(stderr, "agent:", err)
			return 2
		}
		plan = append(plan, c)
	}
	if *server == "" && *home == "" {
		dir, err := os.UserHomeDir()
		if err != nil {
			fmt.Fprintln(stderr, "agent: no --server, no SKILLBOX_HOME and no home directory")
			return 1
		}
		*home = filepath.Join(dir, ".skillbox")
	}

	// Dial is lazy (grpc.NewClient): nothing is sent until the first call. Without TLS
	// it only dials a unix socket or loopback; the server knows us by our uid.
	conn, err := transport.Dial(ctx, transport.ClientConfig{Addr: *server, Home: *home, Token: *token})
	if err != nil {
		fmt.Fprintln(stderr, "agent:", err)
		return 1
	}
	defer conn.Close()
	// One connection and its stubs are safe for concurrent use: a framework shares them
	// and runs many calls at once. Calls here run one after another for readable output.
	skills := pb.NewSkillsClient(conn)

	if *list {
		resp, err := skills.List(ctx, &pb.ListSkillsRequest{})
		if err != nil {
			fmt.Fprintln(stderr, "agent: list skills:", describe(err))
			return 1
		}
		for _, s := range resp.GetSkills() {
			printSkill(stdout, s)
		}
	}

	failed := 0
	for _, c := range plan {
		if !invoke(ctx, stdout, skills, c, *timeout) {
			failed++
		}
	}
	if len(plan) > 0 {
		fmt.Fprintf(stdout, "%d call(s): %d ok, %d failed\n", len(plan), len(plan)-failed, failed)
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// printSkill shows what a model choosing a tool needs (name, description, input
// schema) and what an operator granted it.
func printSkill(w io.Writer, s *pb.SkillInfo) {
	state := "enabled"
	if s.GetState() == pb.State_STATE_DISABLED {
		state = "DISABLED"
	}
	if !s.GetApproved() {
		state += ", NOT APPROVED"
	}
	fmt.Fprintf(w, "%s %s (%s, signed by %s)\n", s.GetName(), s.GetVersion(), state, s.GetSigner())
	fmt.Fprintf(w, "  %s\n", s.GetDescription())
	fmt.Fprintf(w, "  input:  %s\n", compact(s.GetInputSchema()))
	fmt.Fprintf(w, "  grant:  %s\n", grant(s.GetCapabilities()))
	l := s.GetLimits()
	fmt.Fprintf(w, "  limits: timeout %v, memory %s, output %s", time.Duration(l.GetTimeoutMs())*time.Millisecond,
		size(l.GetMemoryBytes()), size(l.GetOutputBytes()))
	if len(s.GetCapabilities().GetNetwork()) > 0 {
		fmt.Fprintf(w, ", %d request(s)", l.GetRequests())
	}
	fmt.Fprintln(w)
}

func grant(c *pb.Capabilities) string {
	var parts []string
	if n := c.GetNetwork(); len(n) > 0 {
		parts = append(parts, "network "+strings.Join(n, " "))
	}
	for _, f := range c.GetFiles() {
		parts = append(parts, fmt.Sprintf("files %s (%s)", f.GetPath(), strings.ToLower(strings.TrimPrefix(f.GetAccess().String(), "ACCESS_"))))
	}
	if e := c.GetEnv(); len(e) > 0 {
		parts = append(parts, "env "+strings.Join(e, " "))
	}
	if s := c.GetSecrets(); len(s) > 0 {
		parts = append(parts, "secrets "+strings.Join(s, " "))
	}
	if len(parts) == 0 {
		return "nothing (no network, files, env or secrets)"
	}
	return strings.Join(parts, "; ")
}

// invoke makes one call and prints its outcome; it reports whether the call succeeded.
func invoke(ctx context.Context, w io.Writer, skills pb.SkillsClient, c call, timeout time.Duration) bool {
	fmt.Fprintf(w, "→ %s %s\n", c.skill, c.input)
	req := &pb.InvokeRequest{Name: c.skill, InputJson: c.input}
	if timeout > 0 {
		// A caller may only lower the budget the operator granted, never raise it.
		req.Limits = &pb.Limits{TimeoutMs: timeout.Milliseconds()}
	}
	resp, err := skills.Invoke(ctx, req)
	if err != nil {
		fmt.Fprintf(w, "  ✗ %s\n", describe(err))
		// A call that ran before it failed says what it left: its usage and the end
		// of its logs (the last line is usually why).
		if d := client.Detail(err); d.GetCallId() != "" {
			u := d.GetUsage()
			fmt.Fprintf(w, "    it ran %dms, %d request(s), %d denied; call %s\n", u.GetWallMs(), u.GetRequests(), u.GetDeniedRequests(), d.GetCallId())
			if last := lastLine(d.GetLogs()); last != "" {
				fmt.Fprintf(w, "    last log line: %s\n", last)
			}
		}
		return false
	}
	u := resp.GetUsage()
	fmt.Fprintf(w, "  ✓ %s\n", compact(resp.GetOutputJson()))
	peak := "not measured"
	if u.GetPeakMemoryBytes() > 0 {
		peak = size(u.GetPeakMemoryBytes())
	}
	fmt.Fprintf(w, "    %s %s in %dms, peak memory %s, %d request(s), %d denied; audit %s\n",
		c.skill, resp.GetVersion(), u.GetWallMs(), peak, u.GetRequests(), u.GetDeniedRequests(), resp.GetAuditId())
	for _, e := range resp.GetEgress() {
		verdict := fmt.Sprintf("allowed, HTTP %d, %d bytes", e.GetStatus(), e.GetBytes())
		if !e.GetAllowed() {
			verdict = "DENIED: " + e.GetReason()
		}
		fmt.Fprintf(w, "    egress %s %s: %s\n", e.GetMethod(), e.GetUrl(), verdict)
	}
	return true
}

// describe turns a failed RPC into "REASON: message". Every failure skillbox reports
// carries an ErrorDetail in the status details; its reason (NOT_APPROVED, DISABLED,
// INVALID_INPUT, SKILL_FAILED, TIMEOUT, ...) is what a program branches on, never the
// message. The gRPC code is the coarse class (PERMISSION_DENIED, ABORTED, ...), written
// as the gRPC spec and docs/api.md write it.
func describe(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	if ed := client.Detail(err); ed != nil {
		s := ed.GetReason() + ": " + ed.GetMessage()
		if ed.GetField() != "" {
			s += " (field " + ed.GetField() + ")"
		}
		s += " [" + client.CodeName(st.Code())
		if ed.GetAuditId() != "" {
			s += ", audit " + ed.GetAuditId()
		}
		return s + "]"
	}
	// No detail: not skillbox's answer (e.g. the server is not running).
	return fmt.Sprintf("%s: %s", client.CodeName(st.Code()), st.Message())
}

// lastLine is the last non-empty line of logs.
func lastLine(logs string) string {
	lines := strings.Split(strings.TrimRight(logs, "\n"), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// compact prints JSON on one line (schemas and outputs).
func compact(s string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		return s
	}
	return b.String()
}

func size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
