package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A command line that is wrong exits 2; a failure of the work it asked for exits 1.
// Either way the one stderr line is the same, and the same through skillbox (the
// front, which runs `run DIR` and `version` itself and hands the rest to
// skillbox-full by exec) and through skillbox-full run directly.
func TestUsageErrorsExitTwo(t *testing.T) {
	front := buildCLI(t)
	full := filepath.Join(filepath.Dir(front), "skillbox-full")
	work := t.TempDir()
	home := filepath.Join(work, "home")
	env := []string{"SKILLBOX_HOME=" + home, "SKILLBOX_SERVER=", "SKILLBOX_TOKEN="}
	dir := runSkillDir(t, "echo.wasm", "")
	missing := filepath.Join(work, "nosuch")
	nosock := "unix://" + filepath.Join(work, "no.sock")
	tokens := filepath.Join(work, "tokens")
	if err := os.WriteFile(tokens, []byte("ops ops-token-0123456789abcdef0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // the failure's stderr line, without "skillbox: " and the newline
	}{
		// An unknown command or subcommand, or help on one.
		{"unknown command", []string{"invok"}, 2, `unknown command "invok"; did you mean skillbox invoke? (see skillbox --help)`},
		{"unknown subcommand", []string{"audit", "verfy"}, 2, `unknown command "audit verfy"; did you mean skillbox audit verify? (see skillbox audit --help)`},
		{"help on an unknown command", []string{"help", "nosuch"}, 2, `help: unknown command "nosuch" (see skillbox --help)`},
		{"help with a flag", []string{"help", "--json"}, 2, "help: want command names, not flags (example: skillbox help audit verify)"},
		// A flag not defined, a flag without its value, a value of the wrong form.
		{"unknown flag", []string{"skills", "--nosuch"}, 2, "skills: unknown flag --nosuch (see skillbox skills --help)"},
		{"unknown flag, run DIR", []string{"run", dir, "--nosuch", "--input", "{}"}, 2, "run: unknown flag --nosuch (see skillbox run --help)"},
		{"unknown flag, subcommand", []string{"audit", "verify", "--nosuch"}, 2, "audit verify: unknown flag --nosuch (see skillbox audit verify --help)"},
		{"flag without its value", []string{"approve", "hello", "--grant"}, 2, "approve: --grant needs a value (see skillbox approve --help)"},
		{"flag without its value, run DIR", []string{"run", dir, "--input"}, 2, "run: --input needs a value (see skillbox run --help)"},
		{"invalid duration", []string{"invoke", "echo", "--input", "{}", "--timeout", "soon"}, 2, `invoke: --timeout "soon": want a duration such as 30s, 2m or 1h30m`},
		{"invalid number", []string{"serve", "--max-concurrent", "many"}, 2, `serve: --max-concurrent "many": want a whole number`},
		{"negative timeout", []string{"invoke", "echo", "--input", "{}", "--timeout", "-1s"}, 2, "invoke: --timeout -1s: must not be negative"},
		{"malformed head", []string{"audit", "verify", "--head", "xyz"}, 2, "audit verify: --head: want the 64-hex head printed by `skillbox audit verify`"},
		{"malformed mount", []string{"run", dir, "--input", `{"name":"x"}`, "--mount", "data"}, 2, `run echo: --mount "data": want GUEST=HOSTDIR`},
		{"malformed --server", []string{"invoke", "echo", "--input", "{}", "--server", "nonsense"}, 2, `invoke: --server "nonsense": want unix:///abs/path.sock or host:port (missing port in address)`},
		{"malformed --server, skills", []string{"skills", "--server", "unix://rel.sock"}, 2, `skills: --server "unix://rel.sock": unix:// needs an absolute path (unix:///abs/path.sock)`},
		{"malformed --server, disable", []string{"disable", "echo", "--server", "http://x"}, 2, `disable echo: --server "http://x": want unix:///abs/path.sock or host:port`},
		{"malformed --metrics", []string{"serve", "--metrics", "nonsense"}, 2, `serve: --metrics "nonsense": want host:port (e.g. 127.0.0.1:9464)`},
		{"TCP without TLS", []string{"serve", "--listen", "0.0.0.0:7443"}, 2,
			"serve: --listen 0.0.0.0:7443: TCP needs TLS (--tls-cert and --tls-key), or a unix socket, or a loopback address with --token-file"},
		{"TCP off loopback with only a token file", []string{"serve", "--listen", "0.0.0.0:7443", "--token-file", tokens}, 2,
			"serve: --listen 0.0.0.0:7443: TCP needs TLS (--tls-cert and --tls-key), or a unix socket, or a loopback address with --token-file"},
		{"malformed --listen", []string{"serve", "--listen", "nonsense"}, 2, `serve: --listen "nonsense": want unix:///abs/path.sock or host:port (missing port in address)`},
		{"malformed --mcp", []string{"serve", "--mcp", "nonsense"}, 2, `serve: --mcp "nonsense": want host:port (e.g. 127.0.0.1:7300)`},
		{"malformed skill name", []string{"init", "Hello"}, 2, `init: "Hello": a skill name must match ^[a-z][a-z0-9-]{0,62}$ (lowercase letters, digits and hyphens, starting with a letter)`},
		{"MCP without TLS", []string{"serve", "--mcp", "0.0.0.0:7300"}, 2,
			"serve: --mcp 0.0.0.0:7300: TCP needs TLS (--tls-cert and --tls-key), or a loopback address with --token-file"},
		{"pack -o of another kind", []string{"pack", dir, "-o", filepath.Join(work, "out.zip")}, 2,
			`pack: -o "` + filepath.Join(work, "out.zip") + `": want FILE.tar.gz or FILE.tgz (the archive is a gzipped tar)`},
		{"unknown backend", []string{"serve", "--container-backend", "podman"}, 2, `serve: --container-backend "podman": want docker or kubernetes`},
		{"relayed sources without shared state", []string{"serve", "--kube-relayed-secret-sources", "env:SKILLBOX_SECRET_*"}, 2,
			"serve: --kube-relayed-secret-sources is about approvals shared through --kube-state-namespace (with --container-backend kubernetes); without them it does nothing"},
		{"relayed source: the whole file system", []string{"serve", "--container-backend", "kubernetes", "--kube-state-namespace", "skillbox", "--kube-relayed-secret-sources", "env:SKILLBOX_SECRET_*,file:/"}, 2,
			`serve: --kube-relayed-secret-sources "file:/": the root directory would be the whole file system of the server: name a directory`},
		{"relayed host dir with ..", []string{"serve", "--container-backend", "kubernetes", "--kube-state-namespace", "skillbox", "--kube-relayed-host-dirs", "/srv/skills/.."}, 2,
			`serve: --kube-relayed-host-dirs "/srv/skills/..": want an absolute, clean directory (no .., no //)`},
		// The wrong number of arguments.
		{"install, none", []string{"install"}, 2, "install: want exactly one DIR, FILE.tar.gz or oci://REF (see skillbox install --help)"},
		{"install, two", []string{"install", "a", "b"}, 2, "install: want exactly one DIR, FILE.tar.gz or oci://REF (see skillbox install --help)"},
		{"approve, none", []string{"approve"}, 2, "approve: want exactly one NAME (see skillbox approve --help)"},
		{"invoke, none", []string{"invoke", "--input", "{}"}, 2, "invoke: want exactly one NAME (see skillbox invoke --help)"},
		{"audit verify, one", []string{"audit", "verify", "extra"}, 2, "audit verify: takes no arguments (see skillbox audit verify --help)"},
		{"run, none", []string{"run", "--input", "{}"}, 2, "run: want exactly one skill directory or name, got 0 (see skillbox run --help)"},
		{"run, two", []string{"run", dir, dir, "--input", "{}"}, 2, "run: want exactly one skill directory or name, got 2 (see skillbox run --help)"},
		{"version, one", []string{"version", "extra"}, 2, "version: takes no arguments"},
		{"sign, none", []string{"sign", "--key", "k"}, 2, "sign: want exactly one argument, got 0 (see skillbox sign --help)"},
		{"keygen, one", []string{"keygen", "--out", "k", "extra"}, 2, "keygen: want no arguments, got 1 (see skillbox keygen --help)"},
		{"pack, none", []string{"pack"}, 2, "pack: want exactly one DIR (see skillbox pack --help)"},
		{"push, one", []string{"push", dir}, 2, "push: want DIR and REF (see skillbox push --help)"},
		{"disable, none", []string{"disable"}, 2, "disable: want exactly one NAME (see skillbox disable --help)"},
		{"deny, none", []string{"deny", "--reason", "no"}, 2, "deny: want exactly one ID, as `skillbox pending` shows it (see skillbox deny --help)"},
		{"reload, one", []string{"reload", "extra"}, 2, "reload: takes no arguments (see skillbox reload --help)"},
		{"skills, one", []string{"skills", "extra"}, 2, "skills: takes no arguments (see skillbox skills --help)"},
		{"serve, one", []string{"serve", "extra", "--container-backend", "podman"}, 2, "serve: takes no arguments (see skillbox serve --help)"},
		{"mcp, one", []string{"mcp", "extra"}, 2, "mcp: takes no arguments (see skillbox mcp --help)"},
		{"review, two", []string{"review", "a", "b"}, 2, "review: want exactly one DIR, FILE.tar.gz or NAME (see skillbox review --help)"},
		// A required flag left out.
		{"run without --input", []string{"run", dir}, 2, "run: --input is required"},
		{"invoke without --input", []string{"invoke", "echo"}, 2, "invoke: --input is required: the call's input as JSON, or @FILE (@- for stdin)"},
		{"keygen without --out", []string{"keygen"}, 2, "keygen: --out PREFIX is required"},
		{"deny without --reason", []string{"deny", "0c11"}, 2, "deny 0c11: --reason is required: the caller is told why (skillbox deny 0c11 --reason TEXT)"},
		{"sign without a key", []string{"sign", dir}, 2, "sign: give --key KEY or --keyless"},
		// Flags that do not go together.
		{"sign --key --keyless", []string{"sign", dir, "--key", "k", "--keyless"}, 2, "sign: give --key or --keyless, not both"},
		{"verify --trust --key", []string{"verify", dir, "--trust", "t", "--key", "k"}, 2, "verify: give --trust or --key, not both"},
		{"init --container --reactor", []string{"init", "hello", "--container", "--reactor", "--dir", work}, 2, "init: --reactor is a kind of wasm skill; it does not go with --container"},
		// The work itself failed: exit 1.
		{"invalid JSON input", []string{"run", dir, "--input", "{nope"}, 1, "run echo: invalid input: input: not valid JSON (at byte 2) (INVALID_INPUT)"},
		{"missing directory", []string{"run", missing, "--input", "{}"}, 1, "run " + missing + ": " + missing + ": no skill.yaml: not a skill package"},
		{"missing input file", []string{"run", dir, "--input", "@" + missing}, 1, "run echo: input: open " + missing + ": no such file or directory"},
		{"approve with a missing grant file", []string{"approve", "hello", "--grant", missing}, 1, "approve: --grant " + missing + " does not exist"},
		{"install a missing directory", []string{"install", missing}, 1, "install: no file or directory " + missing + " (want a package directory, a .tar.gz made by skillbox pack -o, or oci://REF)"},
		{"invoke with no server", []string{"invoke", "echo", "--input", "{}", "--server", nosock}, 1, "invoke echo: no server answers: start one with `skillbox serve`, or name another address with --server (UNAVAILABLE)"},
		{"mcp with no server", []string{"mcp", "--server", nosock}, 1, "mcp: no server answers: start one with `skillbox serve`, or name another address with --server (UNAVAILABLE)"},
		{"serve with a missing token file", []string{"serve", "--token-file", missing}, 1, "serve: --token-file " + missing + " does not exist"},
		{"pack of a file in the package", []string{"pack", filepath.Join(dir, "skill.yaml")}, 1,
			"pack: " + filepath.Join(dir, "skill.yaml") + " is a file; pack takes the package directory (" + dir + ")"},
		{"init under a missing directory", []string{"init", "hello", "--dir", missing}, 1, "init: --dir " + missing + " does not exist"},
		{"audit verify of a missing file", []string{"audit", "verify", "--file", missing}, 1, "audit verify: --file " + missing + " does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := signRunCLI(t, front, env, tc.args...), signRunCLI(t, full, env, tc.args...)
			if a.code != tc.code || b.code != tc.code {
				t.Errorf("%q: exit %d (skillbox-full %d), want %d; stderr %q", tc.args, a.code, b.code, tc.code, a.stderr)
			}
			if a.stderr != b.stderr {
				t.Errorf("%q: stderr differs: skillbox %q, skillbox-full %q", tc.args, a.stderr, b.stderr)
			}
			// run DIR warns on stderr before a call it runs; the failure is the one
			// line that starts skillbox:, the last.
			lines := strings.Split(strings.TrimSuffix(a.stderr, "\n"), "\n")
			line := lines[len(lines)-1]
			if !strings.HasSuffix(a.stderr, "\n") || strings.Count(a.stderr, "skillbox: ") != 1 {
				t.Errorf("%q: stderr %q, want one line starting skillbox: ", tc.args, a.stderr)
			}
			if line != "skillbox: "+tc.want {
				t.Errorf("%q: stderr %q, want %q", tc.args, line, "skillbox: "+tc.want)
			}
		})
	}
}

// skillbox with no command at all (or audit with no subcommand) is a command line that
// asks for nothing: the list of commands on stderr, nothing on stdout, exit 2 (it
// exited 0 with the help on stdout, so a script that lost its arguments read help as a
// success).
func TestNoCommandExitsTwo(t *testing.T) {
	front := buildCLI(t)
	full := filepath.Join(filepath.Dir(front), "skillbox-full")
	env := []string{"SKILLBOX_HOME=" + filepath.Join(t.TempDir(), "home")}
	for _, bin := range []string{front, full} {
		r := signRunCLI(t, bin, env)
		if r.code != 2 || r.stdout != "" {
			t.Errorf("%s with no command: exit %d, stdout %q; want exit 2 and nothing on stdout", filepath.Base(bin), r.code, r.stdout)
		}
		for _, want := range []string{"COMMANDS:", "invoke", "skillbox: no command given: name one of the commands above (skillbox COMMAND --help says more)\n"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%s with no command: stderr lacks %q:\n%s", filepath.Base(bin), want, r.stderr)
			}
		}
		if !strings.HasSuffix(r.stderr, "(skillbox COMMAND --help says more)\n") {
			t.Errorf("%s with no command: stderr does not end with the one failure line:\n%s", filepath.Base(bin), r.stderr)
		}
	}
	// So is a command group with no subcommand.
	r := signRunCLI(t, front, env, "audit")
	if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "verify") ||
		!strings.HasSuffix(r.stderr, "skillbox: audit: no subcommand given: name one of the commands above (skillbox audit COMMAND --help says more)\n") {
		t.Errorf("skillbox audit: exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// --help still prints the same list on stdout and exits 0.
	if r := signRunCLI(t, front, env, "--help"); r.code != 0 || !strings.Contains(r.stdout, "COMMANDS:") {
		t.Errorf("skillbox --help: exit %d, stdout %q", r.code, r.stdout)
	}
}
