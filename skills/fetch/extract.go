package main

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// skipped are elements whose content is not readable text: code, styling, navigation
// chrome and embedded media.
func skipped(a atom.Atom) bool {
	switch a {
	case atom.Script, atom.Style, atom.Noscript, atom.Template, atom.Nav, atom.Svg, atom.Math,
		atom.Iframe, atom.Object, atom.Embed, atom.Canvas, atom.Head, atom.Title, atom.Select, atom.Button:
		return true
	}
	return false
}

// paragraph are elements set apart by a blank line; block by a line break.
func paragraph(a atom.Atom) bool {
	switch a {
	case atom.P, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Pre, atom.Blockquote,
		atom.Table, atom.Ul, atom.Ol, atom.Dl, atom.Figure, atom.Section, atom.Article, atom.Header,
		atom.Footer, atom.Main, atom.Aside, atom.Form, atom.Fieldset, atom.Details, atom.Hr:
		return true
	}
	return false
}

func block(a atom.Atom) bool {
	switch a {
	case atom.Div, atom.Br, atom.Li, atom.Tr, atom.Dt, atom.Dd, atom.Caption, atom.Figcaption,
		atom.Summary, atom.Address, atom.Legend, atom.Option:
		return true
	}
	return false
}

// hidden reports elements the page itself hides from readers.
func hidden(n *html.Node) bool {
	for _, a := range n.Attr {
		switch {
		case a.Key == "hidden",
			a.Key == "aria-hidden" && a.Val == "true",
			a.Key == "style" && strings.Contains(strings.ReplaceAll(strings.ToLower(a.Val), " ", ""), "display:none"):
			return true
		}
	}
	return false
}

// ExtractHTML returns a page's title and its readable text: script, style, navigation
// and hidden elements dropped, whitespace collapsed, paragraphs separated by a blank
// line, list items on their own lines with a "- " bullet and table cells separated by
// " | ".
func ExtractHTML(page []byte) (title, text string) {
	doc, err := html.Parse(bytes.NewReader(page)) // the HTML5 parser accepts any input
	if err != nil {
		return "", ""
	}
	var w textWriter
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		switch n.Type {
		case html.TextNode:
			w.text(n.Data)
			return
		case html.ElementNode:
			if n.DataAtom == atom.Title && title == "" {
				title = collapse(textOf(n))
			}
			if skipped(n.DataAtom) || hidden(n) {
				return
			}
			switch {
			case paragraph(n.DataAtom):
				w.brk(2)
			case block(n.DataAtom):
				w.brk(1)
			case n.DataAtom == atom.Td || n.DataAtom == atom.Th:
				w.cell()
			case n.DataAtom == atom.Img:
				if alt := attr(n, "alt"); alt != "" {
					w.text(" " + alt + " ")
				}
			}
			if n.DataAtom == atom.Li {
				w.text("- ")
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
		if n.Type == html.ElementNode {
			switch {
			case paragraph(n.DataAtom):
				w.brk(2)
			case block(n.DataAtom):
				w.brk(1)
			}
		}
	}
	walk(doc)
	// The title is in <head>, which is skipped as text; find it wherever the parser put it.
	if title == "" {
		if t := find(doc, atom.Title); t != nil {
			title = collapse(textOf(t))
		}
	}
	return title, w.String()
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func find(n *html.Node, a atom.Atom) *html.Node {
	if n.Type == html.ElementNode && n.DataAtom == a {
		return n
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if f := find(c, a); f != nil {
			return f
		}
	}
	return nil
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// collapse turns every run of whitespace into one space and trims the ends.
func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

// textWriter accumulates text with collapsed whitespace and at most one blank line
// between blocks.
type textWriter struct {
	b       strings.Builder
	space   bool // a space is pending before the next word
	breaks  int  // line breaks pending before the next word (0–2)
	newCell bool // a table cell separator is pending
}

func (w *textWriter) text(s string) {
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		if unicode.IsSpace(r) || r == '\u00a0' {
			w.space = true
			continue
		}
		if w.b.Len() > 0 {
			switch {
			case w.breaks > 0:
				w.b.WriteString(strings.Repeat("\n", w.breaks))
			case w.newCell:
				w.b.WriteString(" | ")
			case w.space:
				w.b.WriteByte(' ')
			}
		}
		w.space, w.breaks, w.newCell = false, 0, false
		w.b.WriteRune(r)
	}
}

func (w *textWriter) brk(n int) {
	w.breaks = max(w.breaks, n)
	w.newCell = false
}

func (w *textWriter) cell() {
	if w.breaks == 0 {
		w.newCell = true
	}
}

func (w *textWriter) String() string { return w.b.String() }
