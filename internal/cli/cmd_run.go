package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/skillbox-dev/skillbox/internal/cli/base"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/host"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

// runCommand is `run DIR|NAME` (package base): here every kind of directory runs
// (a container one needs Docker), and so does an installed skill.
func runCommand() *cli.Command {
	return base.RunCommand(base.RunAction(base.RunOptions{
		Installed:  runInstalled,
		Runs:       func(string) bool { return true },
		OpenAuthor: openAuthor,
	}))
}

// openAuthor opens the author's path over the sandbox of kind (for a container
// skill, Docker) with the compile cache of the home at root.
func openAuthor(ctx context.Context, root, kind string) (base.Author, error) {
	home, err := host.ResolveHome(root)
	if err != nil {
		return nil, err
	}
	return host.OpenAuthor(ctx, host.Options{Home: home}, kind)
}

// runInstalled is `run NAME`: the operator's path, through the same engine as the
// server (verified, approved, budgeted, audited), as the local caller.
func runInstalled(c *cli.Context, f base.RunFlags) error {
	home, err := skillboxHome(c)
	if err != nil {
		return fmt.Errorf("run %s: %w", f.Dir, err)
	}
	input, err := base.ReadInput(f.Input)
	if err != nil {
		return fmt.Errorf("run %s: input: %w", f.Dir, err)
	}
	if len(f.Mounts) > 0 {
		return usagef("run %s: --mount is for skill directories; an installed skill's files are bound by its approval", f.Dir)
	}
	// No approver can decide a call of this process: one under oversight is refused
	// at once, not after its whole wait.
	h, err := host.Open(c.Context, host.Options{Home: home, NoApprovers: true})
	if err != nil {
		return fmt.Errorf("run %s: %w", f.Dir, err)
	}
	defer h.Close()
	eng := h.Engine()
	res, err := eng.Invoke(c.Context, engine.Request{Skill: f.Dir, Input: input, Caller: transport.LocalCaller(), Door: "cli"})
	if err != nil {
		// A call that ran shows its logs, usage and egress decisions (output null)
		// before the line saying why it failed, as run DIR does.
		fail := base.CallFailure(err, res)
		if fail.RunOutput != nil {
			fail.Error.CallID = res.CallID
			fail.RunOutput.Version, fail.RunOutput.CallID, fail.RunOutput.AuditID = res.Version, res.CallID, res.AuditID
		}
		if f.JSON {
			if werr := base.WriteRunFailure(c.App.Writer, fail); werr != nil {
				return werr
			}
		} else if fail.RunOutput != nil {
			if werr := base.WriteRunOutput(c.App.Writer, *fail.RunOutput, false); werr != nil {
				return werr
			}
		}
		ce := &base.CallError{Cmd: "run", Name: f.Dir, Message: engine.CallerMessage(err), Reason: string(engine.ReasonOf(err)), Err: err}
		switch {
		case errors.Is(err, engine.ErrNoApprovers):
			ce.Message = fmt.Sprintf("%s needs an approver's decision for each call, which run cannot ask for: call it through the server (skillbox invoke %s), where approvers see it in the console or with skillbox pending", f.Dir, f.Dir)
		case ce.Reason == string(engine.ReasonUnavailable):
			if why := h.SandboxError(manifest.KindContainer); why != nil {
				ce.Message += ": " + why.Error()
			}
		}
		var ee *engine.Error
		if errors.As(err, &ee) {
			ce.AuditID = ee.AuditID
		}
		return ce
	}
	out := base.ResultOutput(res)
	out.Version, out.CallID, out.AuditID = res.Version, res.CallID, res.AuditID
	return base.WriteRunOutput(c.App.Writer, out, f.JSON)
}

// The names the rest of this package uses for what package base holds.
type runOutput = base.RunOutput

func readInput(s string) ([]byte, error) { return base.ReadInput(s) }

func writeRunOutput(c *cli.Context, out runOutput, compact bool) error {
	return base.WriteRunOutput(c.App.Writer, out, compact)
}
