package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/skills/sdk"
)

func ptr(i int) *int { return &i }

func TestExpression(t *testing.T) {
	tests := []struct {
		expr  string
		scale *int
		mode  string
		want  string
		exact bool
	}{
		{"0.1 + 0.2", nil, "", "0.3", true},
		{"0.1+0.2-0.3", nil, "", "0.0", true},
		{"19.99 * 3 - 5.00 / 2", nil, "", "57.47", true},
		{"19.99 * 3", nil, "", "59.97", true},
		{"5.00 + 1", nil, "", "6.00", true},
		{"1.5 * 1.5", nil, "", "2.25", true},
		{"1 / 8", nil, "", "0.125", true},
		{"1 / 3", ptr(4), "", "0.3333", false},
		{"2 / 3", ptr(2), "", "0.67", false},
		{"10 / 3 * 3", nil, "", "10", true}, // exact until the end: no 9.99
		{"-(2 + 3) * 4", nil, "", "-20", true},
		{"--2", nil, "", "2", true},
		{"+2 - -2", nil, "", "4", true},
		{"2 * (3 + 4) / (1 - 0.5)", nil, "", "28.0", true},
		{"1 - 2 - 3", nil, "", "-4", true}, // left associative
		{"8 / 4 / 2", nil, "", "1", true},
		{"  7\t*\n6 ", nil, "", "42", true},
		{"0.000001 * 0.000001", nil, "", "0.000000000001", true},
		{"123456789012345678901234567890 * 10", nil, "", "1234567890123456789012345678900", true},
		{"-0.001", ptr(2), "", "0.00", false}, // no negative zero
		{"1.005", ptr(2), "", "1.00", false},
		{"1.005", ptr(2), "half-up", "1.01", false},
		{"1.015", ptr(2), "half-even", "1.02", false},
		{"1.025", ptr(2), "half-even", "1.02", false},
		{"1.025", ptr(2), "half-down", "1.02", false},
		{"1.0251", ptr(2), "half-down", "1.03", false},
		{"2.5", ptr(0), "", "2", false},
		{"3.5", ptr(0), "", "4", false},
		{"-2.5", ptr(0), "", "-2", false},
		{"-2.5", ptr(0), "half-up", "-3", false},
		{"1.21", ptr(1), "up", "1.3", false},
		{"-1.21", ptr(1), "up", "-1.3", false},
		{"1.29", ptr(1), "down", "1.2", false},
		{"-1.29", ptr(1), "down", "-1.2", false},
		{"1.21", ptr(1), "ceiling", "1.3", false},
		{"-1.29", ptr(1), "ceiling", "-1.2", false},
		{"1.29", ptr(1), "floor", "1.2", false},
		{"-1.21", ptr(1), "floor", "-1.3", false},
		{"1.2", ptr(4), "", "1.2000", true},
		{"12.5", ptr(0), "up", "13", false},
		{"0.5", ptr(0), "", "0", false},
		{"1 / 7", ptr(30), "", "0.142857142857142857142857142857", false},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			out, err := compute(context.Background(), Input{Expression: tt.expr, Scale: tt.scale, Rounding: tt.mode})
			if err != nil {
				t.Fatal(err)
			}
			if out.Result != tt.want || out.Exact != tt.exact {
				t.Errorf("%s (scale %v, %s) = %s exact=%v, want %s exact=%v", tt.expr, tt.scale, tt.mode, out.Result, out.Exact, tt.want, tt.exact)
			}
		})
	}
}

func TestOps(t *testing.T) {
	tests := []struct {
		op       string
		operands []string
		scale    *int
		want     string
	}{
		{"add", []string{"0.1", "0.2"}, nil, "0.3"},
		{"add", []string{"19.99", "0.01", "-5"}, nil, "15.00"},
		{"sub", []string{"10", "2.5", "0.25"}, nil, "7.25"},
		{"mul", []string{"19.99", "3"}, nil, "59.97"},
		{"div", []string{"100", "3"}, ptr(2), "33.33"},
		{"div", []string{"100", "8", "5"}, nil, "2.5"},
		{"mul", []string{"+4"}, nil, "4"},
	}
	for _, tt := range tests {
		out, err := compute(context.Background(), Input{Op: tt.op, Operands: tt.operands, Scale: tt.scale})
		if err != nil {
			t.Errorf("%s %v: %v", tt.op, tt.operands, err)
			continue
		}
		if out.Result != tt.want {
			t.Errorf("%s %v = %s, want %s", tt.op, tt.operands, out.Result, tt.want)
		}
	}
}

func TestErrors(t *testing.T) {
	huge := strings.Repeat("9", MaxDigits+1)
	big := strings.Repeat("9", MaxDigits)
	tests := []struct {
		name string
		in   Input
		want string
	}{
		{"division by zero", Input{Expression: "1 / (2 - 2)"}, "expression: at 2: division by zero"},
		{"division by zero op", Input{Op: "div", Operands: []string{"1", "0.00"}}, "operands[1]: division by zero"},
		{"not terminating", Input{Expression: "1/3"}, "result 0.33333333333333333333… has no finite decimal expansion: set scale"},
		{"empty", Input{}, "give an expression, or op with operands"},
		{"blank", Input{Expression: "  "}, "expression: at 0: empty expression"},
		{"both", Input{Expression: "1", Op: "add", Operands: []string{"1"}}, "not both"},
		{"unbalanced", Input{Expression: "(1 + 2"}, "expression: at 6: missing ')'"},
		{"stray paren", Input{Expression: "1 + 2)"}, "expression: at 5: unexpected ')'"},
		{"trailing op", Input{Expression: "1 +"}, "expression: at 3: unexpected end of expression"},
		{"double op", Input{Expression: "1 * / 2"}, "expression: at 4: unexpected '/'"},
		{"exponent", Input{Expression: "1e9"}, "expression: at 1: unexpected 'e'"},
		{"two points", Input{Expression: "1.2.3"}, `"1.2.3" is not a decimal number`},
		{"leading point", Input{Expression: ".5"}, `".5" is not a decimal number`},
		{"comma", Input{Expression: "1,000"}, "unexpected ','"},
		{"letters", Input{Expression: "price * 2"}, "unexpected 'p'"},
		{"too many digits", Input{Expression: huge}, "at most 1000"},
		{"too long", Input{Expression: strings.Repeat("1+", MaxExpression)}, "at most 10000"},
		{"too deep", Input{Expression: strings.Repeat("(", MaxDepth+1) + "1" + strings.Repeat(")", MaxDepth+1)}, "nested more than 100 deep"},
		{"too large", Input{Expression: strings.Repeat(big+"*", 6) + big}, "intermediate result too large"},
		{"too fine", Input{Expression: "1 / (" + strings.Repeat("2*", 1100) + "1)"}, "fraction digits: set a scale"},
		{"scale negative", Input{Expression: "1", Scale: ptr(-1)}, "scale -1: want 0 to 1000"},
		{"scale huge", Input{Expression: "1", Scale: ptr(1001)}, "scale 1001"},
		{"bad rounding", Input{Expression: "1", Rounding: "bankers"}, `rounding "bankers": want one of`},
		{"bad op", Input{Op: "pow", Operands: []string{"2", "3"}}, `op "pow": want add, sub, mul or div`},
		{"no operands", Input{Op: "add"}, "needs 1 to 1000 operands, got 0"},
		{"bad operand", Input{Op: "add", Operands: []string{"1", "abc"}}, `operands[1]: "abc" is not a decimal number`},
		{"operand with space", Input{Op: "add", Operands: []string{" 1"}}, `operands[0]: " 1" is not a decimal number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := compute(context.Background(), tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %+v, %v; want error containing %q", out, err, tt.want)
			}
		})
	}
	if _, err := compute(context.Background(), Input{Op: "div", Operands: []string{"1", "0"}}); !errors.Is(err, ErrDivisionByZero) {
		t.Errorf("division by zero is not ErrDivisionByZero: %v", err)
	}
}

// TestMainJSON runs the skill's whole main path: JSON in, JSON out, errors on stderr.
func TestMainJSON(t *testing.T) {
	var out, errb bytes.Buffer
	code := sdk.Main(context.Background(), strings.NewReader(`{"expression":"100 / 3","scale":2,"rounding":"up"}`), &out, &errb, compute)
	if code != 0 || out.String() != "{\"result\":\"33.34\",\"exact\":false}\n" {
		t.Fatalf("exit %d stdout %q stderr %q", code, out.String(), errb.String())
	}
	out.Reset()
	code = sdk.Main(context.Background(), strings.NewReader(`{"expression":"1/0"}`), &out, &errb, compute)
	if code != 1 || out.Len() != 0 || errb.String() != "expression: at 1: division by zero\n" {
		t.Fatalf("exit %d stdout %q stderr %q", code, out.String(), errb.String())
	}
}

func FuzzEvaluate(f *testing.F) {
	for _, s := range []string{"1+2", "-(3*4)/5", "0.1+0.2", "((1))", "1/0", "9.99*3-5.00/2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Evaluate(s)
		if err != nil {
			return
		}
		// Whatever evaluates must format at any scale without panicking, and a result
		// shown exactly must parse back to the same value.
		str, _, err := result(v, nil, HalfEven)
		if err != nil {
			return
		}
		back, err := parseLiteral(str)
		if err != nil || back.r.Cmp(v.r) != 0 {
			t.Fatalf("%q = %s, does not round-trip: %v", s, str, err)
		}
	})
}
