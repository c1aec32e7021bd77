package cli

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// helpTopic turns `skillbox help [COMMAND...]` into `skillbox [COMMAND...] --help`,
// so help reads the same both ways; an unknown topic is refused like an unknown
// command, with a suggestion.
func helpTopic(app *cli.App, args []string) ([]string, error) {
	if len(args) < 2 || args[1] != "help" {
		return args, nil
	}
	topic := args[2:]
	cmds, prefix := app.Commands, ""
	for _, name := range topic {
		if strings.HasPrefix(name, "-") {
			return nil, usagef("help: want command names, not flags (example: skillbox help audit verify)")
		}
		c := findCommand(cmds, name)
		if c == nil || c.Hidden {
			return nil, usagef("help: %s", unknownCommand(cmds, prefix, name))
		}
		cmds, prefix = c.Subcommands, strings.TrimSpace(prefix+" "+c.Name)
	}
	return append(append([]string{args[0]}, topic...), "--help"), nil
}

// checkCommandPath refuses an unknown command or subcommand name in args (before
// the first flag), with a suggestion; "" when every name is known.
func checkCommandPath(app *cli.App, args []string) string {
	cmds, prefix := app.Commands, ""
	for _, a := range args[1:] {
		if strings.HasPrefix(a, "-") || len(cmds) == 0 {
			return ""
		}
		c := findCommand(cmds, a)
		if c == nil {
			return unknownCommand(cmds, prefix, a)
		}
		cmds, prefix = c.Subcommands, strings.TrimSpace(prefix+" "+c.Name)
	}
	return ""
}

// unknownCommand is the refusal of a command name, with the nearest known names.
func unknownCommand(cmds []*cli.Command, prefix, name string) string {
	where := "skillbox"
	if prefix != "" {
		where += " " + prefix
	}
	msg := fmt.Sprintf("unknown command %q", strings.TrimSpace(prefix+" "+name))
	if s := suggest(cmds, name); len(s) > 0 {
		for i := range s {
			s[i] = where + " " + s[i]
		}
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return msg + " (see " + where + " --help)"
}

// suggest returns the visible command names within two edits of name, or that start
// with it, nearest first.
func suggest(cmds []*cli.Command, name string) []string {
	type cand struct {
		name string
		d    int
	}
	var found []cand
	for _, c := range cmds {
		if c.Hidden {
			continue
		}
		best := -1
		for _, n := range c.Names() {
			d := editDistance(strings.ToLower(name), n)
			if strings.HasPrefix(n, strings.ToLower(name)) && len(name) >= 2 {
				d = min(d, 1)
			}
			if best < 0 || d < best {
				best = d
			}
		}
		if best <= 2 && best < len(name) {
			found = append(found, cand{c.Name, best})
		}
	}
	for i := 1; i < len(found); i++ { // few candidates: insertion sort, stable
		for j := i; j > 0 && found[j].d < found[j-1].d; j-- {
			found[j], found[j-1] = found[j-1], found[j]
		}
	}
	var out []string
	for i, f := range found {
		if i == 3 {
			break
		}
		out = append(out, f.name)
	}
	return out
}

// editDistance is the Levenshtein distance between a and b, by bytes (command names
// are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
