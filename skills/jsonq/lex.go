package main

import (
	"encoding/json"
	"fmt"
	"strings"
)

// QueryError is a bad query or a query that cannot be applied to the data, with the
// byte offset in the query it concerns.
type QueryError struct {
	Pos int
	Msg string
}

func (e *QueryError) Error() string { return fmt.Sprintf("query: at %d: %s", e.Pos, e.Msg) }

type tokKind int

const (
	tEOF    tokKind = iota
	tDot            // . not followed by a name
	tField          // .name
	tIdent          // name (function or true/false/null)
	tString         // "…" (JSON string syntax)
	tNumber         // -?digits[.digits][e±digits]
	tPunct          // [ ] ( ) | : *
	tCmp            // == != < <= > >=
)

type token struct {
	kind tokKind
	text string // field name, identifier, decoded string, number, punctuation or operator
	pos  int
}

func isNameStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isNameChar(c byte) bool  { return isNameStart(c) || c >= '0' && c <= '9' }
func isDigit(c byte) bool     { return c >= '0' && c <= '9' }

// lex splits a query into tokens.
func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		start := i
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c == '.':
			i++
			if i < len(src) && isNameStart(src[i]) {
				for i < len(src) && isNameChar(src[i]) {
					i++
				}
				toks = append(toks, token{tField, src[start+1 : i], start})
			} else {
				toks = append(toks, token{tDot, ".", start})
			}
		case isNameStart(c):
			for i < len(src) && isNameChar(src[i]) {
				i++
			}
			toks = append(toks, token{tIdent, src[start:i], start})
		case c == '"':
			i++
			for i < len(src) && src[i] != '"' {
				if src[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(src) {
				return nil, &QueryError{start, "unterminated string"}
			}
			i++
			var s string
			if err := json.Unmarshal([]byte(src[start:i]), &s); err != nil {
				return nil, &QueryError{start, fmt.Sprintf("bad string %s", src[start:i])}
			}
			toks = append(toks, token{tString, s, start})
		case isDigit(c) || c == '-' && i+1 < len(src) && isDigit(src[i+1]):
			i++
			for i < len(src) && (isDigit(src[i]) || strings.IndexByte(".eE+-", src[i]) >= 0) {
				if (src[i] == '+' || src[i] == '-') && src[i-1] != 'e' && src[i-1] != 'E' {
					break
				}
				i++
			}
			num := src[start:i]
			if !json.Valid([]byte(num)) {
				return nil, &QueryError{start, fmt.Sprintf("bad number %q", num)}
			}
			toks = append(toks, token{tNumber, num, start})
		case strings.IndexByte("[]()|:*", c) >= 0:
			i++
			toks = append(toks, token{tPunct, string(c), start})
		case c == '=' || c == '!' || c == '<' || c == '>':
			i++
			if i < len(src) && src[i] == '=' {
				i++
			}
			op := src[start:i]
			if op == "=" || op == "!" {
				return nil, &QueryError{start, fmt.Sprintf("unknown operator %q (comparisons are == != < <= > >=)", op)}
			}
			toks = append(toks, token{tCmp, op, start})
		default:
			return nil, &QueryError{start, fmt.Sprintf("unexpected character %q", c)}
		}
	}
	return append(toks, token{tEOF, "", len(src)}), nil
}
