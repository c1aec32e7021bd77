package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/skillbox-dev/skillbox/manifest"
)

func initCommand() *cli.Command {
	return &cli.Command{
		Name:      "init",
		Usage:     "scaffold a skill: manifest, main program, test, build files",
		ArgsUsage: "NAME",
		UsageText: "skillbox init NAME [--container | --reactor] [--dir PARENT]\n\n" +
			"Example:\n  skillbox init hello && cd hello && go test ./... && make && skillbox pack .",
		Description: "Creates PARENT/NAME with skill.yaml, main.go (plain Go: JSON on stdin, JSON on stdout,\n" +
			"logs on stderr), main_test.go, go.mod, a Makefile and a README. The default builds a\n" +
			"WASI module; --reactor builds it as a WASI reactor (initialised once, reset after every\n" +
			"call: no start-up cost per call); --container builds a static binary in a FROM scratch\n" +
			"image instead.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "container", Usage: "scaffold a container skill instead of a wasm one"},
			&cli.BoolFlag{Name: "reactor", Usage: "scaffold a wasm reactor: initialised once, reset after every call"},
			&cli.StringFlag{Name: "dir", Value: ".", Usage: "create the skill directory under `PARENT`"},
		},
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) != 1 {
				return usagef("init: want exactly one NAME (see skillbox init --help)")
			}
			name := args[0]
			if err := manifest.CheckName(name); err != nil {
				return usagef("init: %v", err) // the NAME typed is malformed: the command line is wrong
			}
			if c.Bool("container") && c.Bool("reactor") {
				return usagef("init: --reactor is a kind of wasm skill; it does not go with --container")
			}
			// The parent is never created: a --dir that is not there is said in the
			// flag's words, not as mkdir's.
			if parent := c.String("dir"); parent != "" {
				if fi, err := os.Stat(parent); err != nil {
					return fmt.Errorf("init: --dir %w", fileWords(parent, err))
				} else if !fi.IsDir() {
					return fmt.Errorf("init: --dir %s is a file, not a directory", parent)
				}
			}
			dir := filepath.Join(c.String("dir"), name)
			if err := scaffold(dir, name, c.Bool("container"), c.Bool("reactor")); err != nil {
				return fmt.Errorf("init: %w", err)
			}
			fmt.Fprintf(c.App.Writer, "created %s\nnext: make -C %s   (tests, builds, and fills the code digest into skill.yaml)\n", dir, dir)
			return nil
		},
	}
}

// scaffold writes a new skill directory; it refuses to touch an existing one.
func scaffold(dir, name string, container, reactor bool) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists, and init never writes into an existing directory: choose another name, or move it away first", dir)
		}
		return err
	}
	files := map[string]string{
		"main.go":      scaffoldMain,
		"main_test.go": scaffoldTest,
		// A dotted path: one-word module paths can clash with reserved names ("tool", "std").
		"go.mod": "// Change the module path to your repository's.\nmodule example.com/skills/" + name + "\n\ngo 1.26\n",
	}
	if container {
		files["skill.yaml"] = scaffoldManifestContainer
		files["Dockerfile"] = scaffoldDockerfile
		files["Makefile"] = scaffoldMakeContainer
		files["README.md"] = scaffoldReadmeContainer
		files[".dockerignore"] = "*\n!skill\n"
	} else if reactor {
		files["skill.yaml"] = strings.Replace(scaffoldManifestWasm, "    module: module.wasm\n",
			"    module: module.wasm\n    kind: reactor # initialised once; reset after every call\n", 1)
		files["reactor.go"] = scaffoldReactor
		files["Makefile"] = scaffoldMakeReactor
		files["README.md"] = scaffoldReadmeReactor
	} else {
		files["skill.yaml"] = scaffoldManifestWasm
		files["Makefile"] = scaffoldMakeWasm
		files["README.md"] = scaffoldReadmeWasm
	}
	for file, text := range files {
		text = strings.ReplaceAll(text, "NAME", name)
		if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

const scaffoldManifestHead = `# skill.yaml: what NAME is and what it may do. Everything not listed is denied.
apiVersion: skillbox/v1
name: NAME
version: 0.1.0
description: Greets someone by name.
`

const scaffoldSchemas = `input: # JSON Schema of the input; a call that does not match never reaches the skill
  type: object
  required: [name]
  additionalProperties: false
  properties:
    name: {type: string, minLength: 1, maxLength: 100}
output: # JSON Schema of the output, checked after every call
  type: object
  required: [greeting]
  properties:
    greeting: {type: string}
# capabilities: # uncomment what the skill needs; the operator may grant less
#   network: [https://api.example.com]
#   files: [{path: /data, access: read}]
#   env: [LANG]
#   secrets: # brokered: skillbox sets the header on requests to these origins, the skill never sees the value
#     - {name: API_TOKEN, origins: [https://api.example.com], header: Authorization, format: "Bearer {}"}
`

const scaffoldManifestWasm = scaffoldManifestHead + `sandbox:
  wasm:
    module: module.wasm
    sha256: "" # filled in by: skillbox pack .
` + scaffoldSchemas + `limits:
  timeout: 5s
  memory: 32MiB
  output: 64KiB
`

const scaffoldManifestContainer = scaffoldManifestHead + `sandbox:
  container:
    image: image.tar # docker save output; or a registry reference pinned as repo@sha256:...
    id: "" # the image ID, filled in by: skillbox pack .
` + scaffoldSchemas + `limits:
  timeout: 5s
  memory: 32MiB
  output: 64KiB
  cpu: 0.5
`

const scaffoldMain = `// Command NAME is a skillbox skill: it reads one JSON object on stdin, writes one JSON
// object on stdout and logs to stderr. It needs nothing but the standard library.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
)

// Input matches input in skill.yaml.
type Input struct {
	Name string ` + "`json:\"name\"`" + `
}

// Output matches output in skill.yaml.
type Output struct {
	Greeting string ` + "`json:\"greeting\"`" + `
}

func main() {
	log.SetFlags(0)
	if err := run(os.Stdin, os.Stdout); err != nil {
		log.Print(err) // stderr: the operator's log, not the answer
		os.Exit(1)
	}
}

func run(r io.Reader, w io.Writer) error {
	var in Input
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return fmt.Errorf("read input: %w", err)
	}
	out, err := greet(in)
	if err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(out)
}

// greet is the skill's logic, kept apart from I/O so it is easy to test.
func greet(in Input) (Output, error) {
	if in.Name == "" {
		return Output{}, errors.New("name is empty")
	}
	return Output{Greeting: "Hello, " + in.Name + "!"}, nil
}
`

const scaffoldTest = `package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestGreet(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		wantErr  bool
	}{
		{in: "Ada", want: "Hello, Ada!"},
		{in: "", wantErr: true},
	} {
		out, err := greet(Input{Name: tc.in})
		if (err != nil) != tc.wantErr || out.Greeting != tc.want {
			t.Errorf("greet(%q) = %q, %v", tc.in, out.Greeting, err)
		}
	}
}

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(strings.NewReader(` + "`" + `{"name":"Ada"}` + "`" + `), &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != ` + "`" + `{"greeting":"Hello, Ada!"}` + "`" + `+"\n" {
		t.Errorf("output %q", got)
	}
	if err := run(strings.NewReader(` + "`" + `{"nom":"Ada"}` + "`" + `), &out); err == nil {
		t.Error("unknown field accepted")
	}
}
`

const scaffoldMakeWasm = `# make: test, build the WASI module, and fill its digest into skill.yaml (skillbox pack).
all: test pack

module.wasm: $(wildcard *.go) go.mod $(wildcard go.sum)
	GOOS=wasip1 GOARCH=wasm go build -o module.wasm .

test:
	go test ./...

pack: module.wasm
	skillbox pack .

.PHONY: all test pack
`

const scaffoldReactor = `//go:build wasip1

package main

import (
	"log"
	"os"
)

// handle serves one call when the skill is built as a reactor (see the Makefile):
// skillbox runs the program's initialisation once, then calls handle once per call with
// stdin and stdout bound to that call, and puts the module's memory back to its state
// after initialisation before the next call. So work done in init (tables, parsed
// data) is paid once, and nothing one call leaves behind is seen by the next. main is
// not run in a reactor.
//
//go:wasmexport skillbox_handle
func handle() int32 {
	log.SetFlags(0)
	if err := run(os.Stdin, os.Stdout); err != nil {
		log.Print(err) // stderr: the operator's log, not the answer
		return 1
	}
	return 0
}
`

const scaffoldMakeReactor = `# make: test, build the WASI reactor, and fill its digest into skill.yaml (skillbox pack).
all: test pack

module.wasm: $(wildcard *.go) go.mod $(wildcard go.sum)
	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o module.wasm .

test:
	go test ./...

pack: module.wasm
	skillbox pack .

.PHONY: all test pack
`

const scaffoldReadmeReactor = "# NAME\n\nA skillbox skill (WASI reactor: initialised once, reset after every call). Build, test and pack:\n\n" +
	"```sh\ngo test ./...\nGOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o module.wasm .\nskillbox pack .\n" +
	"skillbox run . --input '{\"name\":\"Ada\"}'\n```\n"

const scaffoldMakeContainer = `# make: test, build a static binary, put it in a FROM scratch image, save the image,
# and fill its ID into skill.yaml (skillbox pack).
all: test pack

skill: $(wildcard *.go) go.mod $(wildcard go.sum)
	CGO_ENABLED=0 GOOS=linux go build -o skill .

image.tar: skill Dockerfile
	docker build -t NAME:dev .
	docker save -o image.tar NAME:dev

test:
	go test ./...

pack: image.tar
	skillbox pack .

.PHONY: all test pack
`

const scaffoldDockerfile = `# The skill runs as nobody, with nothing in the image but its own binary.
# Build the binary first: CGO_ENABLED=0 GOOS=linux go build -o skill .
FROM scratch
COPY skill /skill
USER 65534:65534
ENTRYPOINT ["/skill"]
`

const scaffoldReadmeWasm = "# NAME\n\nA skillbox skill (WASI). Build, test and pack:\n\n" +
	"```sh\ngo test ./...\nGOOS=wasip1 GOARCH=wasm go build -o module.wasm .\nskillbox pack .\n" +
	"skillbox run . --input '{\"name\":\"Ada\"}'\n```\n"

const scaffoldReadmeContainer = "# NAME\n\nA skillbox skill (container). Build, test and pack:\n\n" +
	"```sh\ngo test ./...\nCGO_ENABLED=0 GOOS=linux go build -o skill .\ndocker build -t NAME:dev .\n" +
	"docker save -o image.tar NAME:dev\nskillbox pack .\n" +
	"skillbox run . --input '{\"name\":\"Ada\"}'\n```\n"
