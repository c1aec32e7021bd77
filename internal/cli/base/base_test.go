package base

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/skillbox-dev/skillbox/runtime/store"
)

// A flag error reads as the user typed the flag (--timeout, not Go's -timeout) and says
// what the flag takes, or where the command's flags are listed.
func TestFlagErrorsInTheUsersWords(t *testing.T) {
	newApp := func() *cli.App {
		app := &cli.App{Name: Name, Commands: []*cli.Command{
			{Name: "invoke", Flags: []cli.Flag{
				&cli.DurationFlag{Name: "timeout"},
				&cli.IntFlag{Name: "n"},
				&cli.Float64Flag{Name: "cpu"},
				&cli.StringFlag{Name: "input"},
			}, Action: func(*cli.Context) error { return nil }},
			{Name: "audit", Subcommands: []*cli.Command{
				{Name: "verify", Action: func(*cli.Context) error { return nil }},
			}},
		}}
		return app
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"invoke", "--nosuch"}, "skillbox: invoke: unknown flag --nosuch (see skillbox invoke --help)\n"},
		{[]string{"invoke", "-x"}, "skillbox: invoke: unknown flag -x (see skillbox invoke --help)\n"},
		{[]string{"audit", "verify", "--nosuch"}, "skillbox: audit verify: unknown flag --nosuch (see skillbox audit verify --help)\n"},
		{[]string{"--nosuch"}, "skillbox: unknown flag --nosuch (see skillbox --help)\n"},
		{[]string{"invoke", "--timeout", "soon"}, `skillbox: invoke: --timeout "soon": want a duration such as 30s, 2m or 1h30m` + "\n"},
		{[]string{"invoke", "-n", "x"}, `skillbox: invoke: -n "x": want a whole number` + "\n"},
		{[]string{"invoke", "--cpu", "lots"}, `skillbox: invoke: --cpu "lots": want a number` + "\n"},
	} {
		app := newApp()
		var stdout, stderr bytes.Buffer
		Prepare(app, &stdout, &stderr)
		if code := Run(app, append([]string{Name}, tc.args...)); code != ExitUsage || stderr.String() != tc.want {
			t.Errorf("%s: exit %d, stderr %q; want exit 2, %q", strings.Join(tc.args, " "), code, stderr.String(), tc.want)
		}
	}
}

// A bare name that is both a directory here and an installed skill is refused, and the
// refusal says how to reach either one: ./NAME for the directory, another directory for
// the installed skill (there is no other way to name it).
func TestAmbiguousNameSaysHowToReachEither(t *testing.T) {
	work := t.TempDir()
	home := filepath.Join(work, "home")
	pkg := filepath.Join(work, "hello")
	if err := os.Mkdir(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	code := []byte("\x00asm\x01\x00\x00\x00")
	sum := sha256.Sum256(code)
	yaml := "apiVersion: skillbox/v1\nname: hello\nversion: 0.1.0\ndescription: Greets.\n" +
		"sandbox:\n  wasm:\n    module: module.wasm\n    sha256: " + hex.EncodeToString(sum[:]) + "\n" +
		"input: {type: object}\n"
	for name, b := range map[string][]byte{"module.wasm": code, "skill.yaml": []byte(yaml)} {
		if err := os.WriteFile(filepath.Join(pkg, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.InstallVerified(context.Background(), pkg, store.InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Chdir(work)
	var got error
	app := &cli.App{Name: Name, Commands: []*cli.Command{{Name: "review",
		Flags:  []cli.Flag{&cli.StringFlag{Name: "home"}},
		Action: func(c *cli.Context) error { _, got = IsPackageDir(c, "hello"); return nil }}}}
	if err := app.Run([]string{Name, "review", "--home", home}); err != nil {
		t.Fatal(err)
	}
	want := "hello is both a directory here and an installed skill: write ./hello for the directory, or run this from another directory for the installed skill"
	if got == nil || got.Error() != want {
		t.Fatalf("IsPackageDir: %v; want %q", got, want)
	}
}
