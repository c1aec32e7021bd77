// Command textstat is a first-party container skill: statistics of a text (words,
// sentences, lines, paragraphs, reading time) and its most frequent words. It runs as
// a static binary in a FROM scratch image: input JSON on stdin, output JSON on stdout,
// errors on stderr with a non-zero exit.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// maxInput bounds what is read from stdin; the runtime's schema allows less.
const maxInput = 8 << 20

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "textstat:", err)
		os.Exit(1)
	}
}

func run(r io.Reader, w io.Writer) error {
	raw, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return fmt.Errorf("read input: %w", err)
	}
	if len(raw) > maxInput {
		return fmt.Errorf("input larger than %d bytes", maxInput)
	}
	var in Input
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return fmt.Errorf("decode input: %w", err)
	}
	out, err := Analyze(in)
	if err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(out)
}
