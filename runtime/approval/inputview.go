package approval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
)

// InputView is the input of a call waiting for a decision as an approver is shown it
// (the console and `skillbox pending`): the parsed value encoded again, indented two
// spaces a level, object keys sorted, numbers as the caller wrote them, and every
// character that could hide or disguise text escaped as JSON's \uXXXX: controls
// (DEL and C1 too), format characters (bidirectional overrides and isolates such as
// U+202E, zero-width characters, U+FEFF, tags), line and paragraph separators, spaces
// other than ASCII's, private-use and default-ignorable characters, and code points
// not assigned in Go's Unicode tables. What is shown is still JSON with the same
// value. So no layout or character of the caller's text (whitespace pushing a second
// value out of sight, a line made to look like the tool's own, text reordered on the
// screen) survives into the view; the bytes that run are the ones whose sha256 is
// shown beside it.
//
// Input that is not JSON (the engine refuses it before any request is parked) is not
// shown; the view says so.
func InputView(input []byte) string {
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return fmt.Sprintf("(not shown: %d bytes that are not one JSON value)", len(input))
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // the views escape for their medium; here <, > and & stay legible
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Sprintf("(not shown: %d bytes that could not be encoded again)", len(input))
	}
	// Outside strings the encoder writes only ASCII punctuation, spaces and newlines, so
	// every character escaped here is inside a string, where \uXXXX means the same.
	var out strings.Builder
	out.Grow(b.Len())
	marks := 0 // combining marks in a row
	for _, r := range strings.TrimSuffix(b.String(), "\n") {
		if unicode.In(r, unicode.Mn, unicode.Me) {
			marks++
		} else {
			marks = 0
		}
		// Two marks on a letter are writing (Vietnamese, Hebrew points); a stack of
		// them draws over the lines around it.
		if !Disguising(r) && marks <= maxMarks {
			out.WriteRune(r)
			continue
		}
		if r1, r2 := utf16.EncodeRune(r); r1 != unicode.ReplacementChar {
			fmt.Fprintf(&out, `\u%04x\u%04x`, r1, r2)
		} else {
			fmt.Fprintf(&out, `\u%04x`, r)
		}
	}
	return out.String()
}

// maxMarks is how many combining marks in a row InputView shows as they are; the
// rest are escaped.
const maxMarks = 2

// Disguising reports whether r could hide or disguise text on an approver's screen
// (see InputView). A newline is not: in InputView's output it is only the layout's.
func Disguising(r rune) bool {
	switch {
	case r == '\n':
		return false
	case r < 0x20 || r == 0x7f:
		return true
	case r < 0x80:
		return false
	case r == unicode.ReplacementChar:
		return true // may stand for bytes that were not UTF-8
	case r == '\u2800', r == '\u3164', r == '\u115f', r == '\u1160', r == '\uffa0':
		return true // graphic, yet drawn blank: braille blank, Hangul fillers
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs, unicode.Zl, unicode.Zp, unicode.Zs,
		unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector) || !unicode.IsGraphic(r)
}
