package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Bounds on queries and their work.
const (
	MaxQuery   = 4096   // bytes of query
	MaxDepth   = 64     // nesting of (), [] and function arguments
	MaxResults = 100000 // values in any one stream
)

// node is a parsed query: applied to one input value, it yields a stream of values.
type node interface {
	eval(v any) ([]any, error)
}

type parser struct {
	toks  []token
	i     int
	depth int
}

// Parse compiles a query.
func Parse(query string) (node, error) {
	if len(query) > MaxQuery {
		return nil, &QueryError{0, fmt.Sprintf("query of %d bytes: at most %d", len(query), MaxQuery)}
	}
	toks, err := lex(query)
	if err != nil {
		return nil, err
	}
	if toks[0].kind == tEOF {
		return nil, &QueryError{0, "empty query (use . for the whole input)"}
	}
	p := &parser{toks: toks}
	n, err := p.pipe()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.unexpected(t, "end of query")
	}
	return n, nil
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token { t := p.toks[p.i]; p.i++; return t }

func (p *parser) is(kind tokKind, text string) bool {
	t := p.peek()
	return t.kind == kind && t.text == text
}

func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "end of query"
	case tField:
		return "." + t.text
	case tString:
		return strconv.Quote(t.text)
	}
	return strconv.Quote(t.text)
}

func (p *parser) unexpected(t token, want string) error {
	return &QueryError{t.pos, fmt.Sprintf("unexpected %s, expected %s", describe(t), want)}
}

func (p *parser) expect(text string) error {
	if !p.is(tPunct, text) {
		return p.unexpected(p.peek(), strconv.Quote(text))
	}
	p.i++
	return nil
}

func (p *parser) enter() error {
	if p.depth++; p.depth > MaxDepth {
		return &QueryError{p.peek().pos, fmt.Sprintf("nested more than %d deep", MaxDepth)}
	}
	return nil
}

// pipe = or { "|" or }
func (p *parser) pipe() (node, error) {
	left, err := p.or()
	if err != nil {
		return nil, err
	}
	for p.is(tPunct, "|") {
		p.i++
		right, err := p.or()
		if err != nil {
			return nil, err
		}
		left = &pipeNode{left, right}
	}
	return left, nil
}

// or = and { "or" and }; and = cmp { "and" cmp }
func (p *parser) or() (node, error)  { return p.logic("or", p.and) }
func (p *parser) and() (node, error) { return p.logic("and", p.cmp) }

func (p *parser) logic(word string, next func() (node, error)) (node, error) {
	left, err := next()
	if err != nil {
		return nil, err
	}
	for p.is(tIdent, word) {
		p.i++
		right, err := next()
		if err != nil {
			return nil, err
		}
		left = &logicNode{or: word == "or", l: left, r: right}
	}
	return left, nil
}

// cmp = postfix [ ("==" | "!=" | "<" | "<=" | ">" | ">=") postfix ]
func (p *parser) cmp() (node, error) {
	left, err := p.postfix()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind == tCmp {
		p.i++
		right, err := p.postfix()
		if err != nil {
			return nil, err
		}
		left = &cmpNode{op: t.text, l: left, r: right, pos: t.pos}
	}
	if t := p.peek(); t.kind == tCmp {
		return nil, &QueryError{t.pos, "comparisons do not chain: use and"}
	}
	return left, nil
}

// postfix = primary { .name | ."name" | .* | [ … ] }
func (p *parser) postfix() (node, error) {
	n, err := p.primary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		var step node
		switch {
		case t.kind == tField:
			p.i++
			step = &fieldNode{name: t.text, pos: t.pos}
		case t.kind == tDot && p.toks[p.i+1].kind == tString:
			p.i += 2
			step = &fieldNode{name: p.toks[p.i-1].text, pos: t.pos}
		case t.kind == tDot && p.toks[p.i+1].kind == tPunct && p.toks[p.i+1].text == "*":
			p.i += 2
			step = &iterNode{pos: t.pos}
		case t.kind == tDot && p.toks[p.i+1].kind == tPunct && p.toks[p.i+1].text == "[":
			p.i++ // .[…] after a path is the same as […]
			continue
		case t.kind == tPunct && t.text == "[":
			if step, err = p.bracket(); err != nil {
				return nil, err
			}
		default:
			return n, nil
		}
		n = &pipeNode{n, step}
	}
}

// bracket = "[" ( "]" | "*" "]" | string "]" | int "]" | [int] ":" [int] "]" )
func (p *parser) bracket() (node, error) {
	open := p.next()
	t := p.next()
	switch {
	case t.kind == tPunct && t.text == "]":
		return &iterNode{pos: open.pos}, nil
	case t.kind == tPunct && t.text == "*":
		return &iterNode{pos: open.pos}, p.expect("]")
	case t.kind == tString:
		return &fieldNode{name: t.text, pos: open.pos}, p.expect("]")
	case t.kind == tNumber || t.kind == tPunct && t.text == ":":
		var from, to *int
		if t.kind == tNumber {
			n, err := index(t)
			if err != nil {
				return nil, err
			}
			if p.is(tPunct, "]") {
				p.i++
				return &indexNode{n: n, pos: open.pos}, nil
			}
			from = &n
			if err := p.expect(":"); err != nil {
				return nil, err
			}
		}
		if u := p.peek(); u.kind == tNumber {
			p.i++
			n, err := index(u)
			if err != nil {
				return nil, err
			}
			to = &n
		}
		return &sliceNode{from: from, to: to, pos: open.pos}, p.expect("]")
	}
	return nil, p.unexpected(t, `an index, a slice, a "key", * or ]`)
}

func index(t token) (int, error) {
	n, err := strconv.Atoi(t.text)
	if err != nil || n > 1<<30 || n < -(1<<30) {
		return 0, &QueryError{t.pos, fmt.Sprintf("index %s: want an integer", t.text)}
	}
	return n, nil
}

// primary = "." | .name | literal | "[" [pipe] "]" | "(" pipe ")" | name [ "(" pipe ")" ]
func (p *parser) primary() (node, error) {
	t := p.peek()
	switch {
	case t.kind == tDot:
		if u := p.toks[p.i+1]; u.kind == tString || u.kind == tPunct && (u.text == "*" || u.text == "[") {
			return identity{}, nil // postfix reads ."key", .* and .[…]
		}
		p.i++
		return identity{}, nil
	case t.kind == tField:
		return identity{}, nil // postfix reads the field
	case t.kind == tString:
		p.i++
		return literal{t.text}, nil
	case t.kind == tNumber:
		p.i++
		return literal{json.Number(t.text)}, nil
	case t.kind == tPunct && (t.text == "(" || t.text == "["):
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		p.i++
		if t.text == "[" {
			if p.is(tPunct, "]") {
				p.i++
				return literal{[]any{}}, nil
			}
		}
		inner, err := p.pipe()
		if err != nil {
			return nil, err
		}
		if t.text == "(" {
			return inner, p.expect(")")
		}
		return &collectNode{inner}, p.expect("]")
	case t.kind == tIdent:
		p.i++
		return p.call(t)
	}
	return nil, p.unexpected(t, "a path (.name), a value or a function")
}

func (p *parser) call(name token) (node, error) {
	switch name.text {
	case "true":
		return literal{true}, nil
	case "false":
		return literal{false}, nil
	case "null":
		return literal{nil}, nil
	}
	f, ok := lookup(name.text)
	if !ok {
		return nil, &QueryError{name.pos, fmt.Sprintf("unknown function %q (known: %s)", name.text, strings.Join(functionNames(), ", "))}
	}
	c := &callNode{fn: f, name: name.text, pos: name.pos}
	hasArg := p.is(tPunct, "(")
	switch {
	case f.arg && !hasArg:
		return nil, &QueryError{name.pos, fmt.Sprintf("%s needs an argument, as in %s", name.text, f.example)}
	case !f.arg && hasArg:
		return nil, &QueryError{name.pos, fmt.Sprintf("%s takes no argument", name.text)}
	case hasArg:
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		p.i++
		arg, err := p.pipe()
		if err != nil {
			return nil, err
		}
		c.arg = arg
		return c, p.expect(")")
	}
	return c, nil
}
