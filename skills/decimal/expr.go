package main

import (
	"fmt"
	"strings"
)

// SyntaxError is a malformed expression, with the byte offset where it went wrong.
type SyntaxError struct {
	Pos int
	Msg string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("expression: at %d: %s", e.Pos, e.Msg) }

// parser evaluates an arithmetic expression while parsing it (no tree is needed):
//
//	expr   = term { ("+" | "-") term }
//	term   = unary { ("*" | "/") unary }
//	unary  = ("-" | "+") unary | primary
//	primary = number | "(" expr ")"
//	number = digits [ "." digits ]
type parser struct {
	src   string
	pos   int
	depth int
}

// Evaluate computes the exact value of an expression.
func Evaluate(src string) (value, error) {
	if len(src) > MaxExpression {
		return value{}, fmt.Errorf("expression of %d bytes: at most %d", len(src), MaxExpression)
	}
	if strings.TrimSpace(src) == "" {
		return value{}, &SyntaxError{0, "empty expression"}
	}
	p := &parser{src: src}
	v, err := p.expr()
	if err != nil {
		return value{}, err
	}
	p.space()
	if p.pos < len(p.src) {
		return value{}, p.errorf("unexpected %q", p.src[p.pos])
	}
	return v, nil
}

func (p *parser) errorf(format string, args ...any) error {
	return &SyntaxError{Pos: p.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) space() {
	for p.pos < len(p.src) && strings.IndexByte(" \t\r\n", p.src[p.pos]) >= 0 {
		p.pos++
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (p *parser) peek() byte {
	p.space()
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *parser) binary(ops string, next func() (value, error)) (value, error) {
	left, err := next()
	if err != nil {
		return value{}, err
	}
	for {
		op := p.peek()
		if op == 0 || strings.IndexByte(ops, op) < 0 {
			return left, nil
		}
		at := p.pos
		p.pos++
		right, err := next()
		if err != nil {
			return value{}, err
		}
		if left, err = apply(op, left, right); err != nil {
			return value{}, &SyntaxError{Pos: at, Msg: err.Error()}
		}
	}
}

func (p *parser) expr() (value, error) { return p.binary("+-", p.term) }
func (p *parser) term() (value, error) { return p.binary("*/", p.unary) }

func (p *parser) unary() (value, error) {
	c := p.peek()
	if c != '-' && c != '+' {
		return p.primary()
	}
	if p.depth++; p.depth > MaxDepth {
		return value{}, p.errorf("nested more than %d deep", MaxDepth)
	}
	defer func() { p.depth-- }()
	p.pos++
	v, err := p.unary()
	if err != nil || c == '+' {
		return v, err
	}
	return apply('-', value{r: zero()}, v)
}

func (p *parser) primary() (value, error) {
	c := p.peek()
	switch {
	case c == '(':
		if p.depth++; p.depth > MaxDepth {
			return value{}, p.errorf("nested more than %d deep", MaxDepth)
		}
		defer func() { p.depth-- }()
		p.pos++
		v, err := p.expr()
		if err != nil {
			return value{}, err
		}
		if p.peek() != ')' {
			if p.pos >= len(p.src) {
				return value{}, p.errorf("missing ')'")
			}
			return value{}, p.errorf("expected ')', found %q", p.src[p.pos])
		}
		p.pos++
		return v, nil
	case c >= '0' && c <= '9' || c == '.':
		start := p.pos
		for p.pos < len(p.src) && (p.src[p.pos] >= '0' && p.src[p.pos] <= '9' || p.src[p.pos] == '.') {
			p.pos++
		}
		v, err := parseLiteral(p.src[start:p.pos])
		if err != nil {
			return value{}, &SyntaxError{Pos: start, Msg: err.Error()}
		}
		return v, nil
	case c == 0:
		return value{}, p.errorf("unexpected end of expression: expected a number or '('")
	default:
		return value{}, p.errorf("unexpected %q: expected a number or '('", c)
	}
}
