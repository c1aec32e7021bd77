package cli

import (
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// Every command's --help shows an example, and how a flag written after the
// positional arguments is read.
func TestEveryCommandHasHelpWithExample(t *testing.T) {
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			name := strings.TrimSpace(prefix + " " + c.Name)
			if len(c.Subcommands) > 0 {
				walk(name, c.Subcommands)
				continue
			}
			if c.Usage == "" {
				t.Errorf("%s: no usage line", name)
			}
			if !strings.Contains(c.UsageText, "skillbox "+name) || !strings.Contains(strings.ToLower(c.UsageText), "example") && strings.Count(c.UsageText, "skillbox "+name) < 2 {
				t.Errorf("%s: --help has no example:\n%s", name, c.UsageText)
			}
		}
	}
	walk("", newApp().Commands)
}

func TestFlagsMayFollowArguments(t *testing.T) {
	app := newApp()
	cases := []struct{ in, want string }{
		{"skillbox sign DIR --key k.pem", "skillbox sign --key k.pem -- DIR"},
		{"skillbox run DIR --input {} --json", "skillbox run --input {} --json -- DIR"},
		{"skillbox audit verify --file x", "skillbox audit verify --file x"},
		{"skillbox approve fetch --yes --grant g.yaml", "skillbox approve --yes --grant g.yaml -- fetch"},
		{"skillbox invoke --input=@f.json fetch", "skillbox invoke --input=@f.json -- fetch"},
		{"skillbox pack DIR -- -o", "skillbox pack -- DIR -o"},
	}
	for _, tc := range cases {
		out, err := interspersed(app, strings.Fields(tc.in))
		if got := strings.Join(out, " "); err != nil || got != tc.want {
			t.Errorf("%q: got %q (%v), want %q", tc.in, got, err, tc.want)
		}
	}
	// A value flag with no value is an error, never "--" taken as its value.
	for _, in := range []string{"skillbox sign DIR --key", "skillbox approve hello --grant"} {
		if _, err := interspersed(app, strings.Fields(in)); err == nil || !strings.Contains(err.Error(), "needs an argument") {
			t.Errorf("%q: %v", in, err)
		}
	}
}
