package strictyaml

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

type doc struct {
	Name  string            `yaml:"name"`
	Items []string          `yaml:"items,omitempty"`
	Env   map[string]string `yaml:"env"`
	Skip  string            `yaml:"-"`
}

// A hostile file cannot make a long error: problems are capped in number and length.
func TestErrorsAreBounded(t *testing.T) {
	var b strings.Builder
	for i := range 1000 {
		b.WriteString(strings.Repeat("k", 500) + strconv.Itoa(i) + ": 1\n")
	}
	err := Decode([]byte(b.String()), &doc{})
	var e *Error
	if !errors.As(err, &e) || len(e.Problems) != maxProblems || e.More != 990 {
		t.Fatalf("Decode = %v", err)
	}
	if len(err.Error()) > maxProblems*(maxMsgLen+2)+40 {
		t.Fatalf("error is %d bytes", len(err.Error()))
	}
	if !strings.HasSuffix(err.Error(), "; and 990 more") || !strings.Contains(e.Problems[0], "(allowed: name, items, env)") {
		t.Fatalf("Decode = %.300s", err)
	}
}

func TestDecodes(t *testing.T) {
	var d doc
	if err := Decode([]byte("name: a\nitems: [x, y]\nenv: {A: b}\n"), &d); err != nil {
		t.Fatal(err)
	}
	if d.Name != "a" || len(d.Items) != 2 || d.Env["A"] != "b" {
		t.Fatalf("decoded %+v", d)
	}
	for in, want := range map[string]string{
		"":                      "empty file",
		"name: a\n---\nname: b": "more than one YAML document",
		"Skip: x\n":             `line 1: unknown field "Skip" (allowed: name, items, env)`,
		"env: {A: [1]}\n":       "line 1: env.A: want a string, got a list",
	} {
		if err := Decode([]byte(in), &doc{}); err == nil || err.Error() != want {
			t.Errorf("%q: %v, want %s", in, err, want)
		}
	}
}
