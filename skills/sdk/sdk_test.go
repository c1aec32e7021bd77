package sdk

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

type greetIn struct {
	Name string `json:"name"`
}

type greetOut struct {
	Greeting string `json:"greeting"`
}

func greet(_ context.Context, in greetIn) (greetOut, error) {
	if in.Name == "" {
		return greetOut{}, errors.New("name is empty\nsecond line")
	}
	return greetOut{Greeting: "hello <" + in.Name + ">"}, nil
}

func TestMain_(t *testing.T) {
	tests := []struct {
		name, stdin      string
		code             int
		stdout, stderrRe string
	}{
		{"ok", `{"name":"ada"}`, 0, "{\"greeting\":\"hello <ada>\"}\n", ""},
		{"ok with whitespace", " \n{\"name\":\"ada\"}\n\n", 0, "{\"greeting\":\"hello <ada>\"}\n", ""},
		{"skill error is one line", `{"name":""}`, 1, "", "name is empty second line\n"},
		{"empty stdin", "", 1, "", "input: empty: expected a JSON value on stdin\n"},
		{"bad json", `{"name":`, 1, "", "input: unexpected EOF\n"},
		{"wrong type", `{"name":3}`, 1, "", "input: json: cannot unmarshal number into Go struct field greetIn.name of type string\n"},
		{"trailing data", `{"name":"a"} {"name":"b"}`, 1, "", "input: unexpected data after the JSON value\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(context.Background(), strings.NewReader(tt.stdin), &out, &errb, greet)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errb.String())
			}
			if out.String() != tt.stdout {
				t.Errorf("stdout %q, want %q", out.String(), tt.stdout)
			}
			if errb.String() != tt.stderrRe {
				t.Errorf("stderr %q, want %q", errb.String(), tt.stderrRe)
			}
		})
	}
}

func TestMainOutputNotEncodable(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), strings.NewReader(`{}`), &out, &errb,
		func(context.Context, struct{}) (any, error) { return make(chan int), nil })
	if code != 1 || out.Len() != 0 || !strings.HasPrefix(errb.String(), "output: json: unsupported type") {
		t.Fatalf("exit %d stdout %q stderr %q", code, out.String(), errb.String())
	}
}
