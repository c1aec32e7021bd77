// Package sdk is the guest side of skillbox for skills written in Go and built with
// GOOS=wasip1 GOARCH=wasm. It hides the ABI (skills/ABI.md): Run reads the typed input
// from stdin and writes the typed output to stdout, Logf writes logs to stderr, and
// HTTPClient sends requests through the host, which checks every one against the
// origins the operator granted.
//
// Everything except the host call itself is plain Go, so skill logic and the SDK's
// encoding are tested on the host with `go test`; outside skillbox the host call
// returns ErrNotUnderSkillbox.
package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxInput is the most input Run reads from stdin. The host caps input far lower; this
// only keeps a confused caller from exhausting guest memory.
const MaxInput = 64 << 20

// Run is a skill's whole main: it decodes stdin as JSON into In, calls fn, and writes
// its result as JSON to stdout. If decoding or fn fails, the error goes to stderr as one
// line and the process exits with status 1, which the host reports as the skill's own
// failure with that message. Run does not return.
func Run[In, Out any](fn func(ctx context.Context, in In) (Out, error)) {
	os.Exit(Main(context.Background(), os.Stdin, os.Stdout, os.Stderr, fn))
}

// Handle serves one call of a reactor skill: what Run does, with the exit status
// returned instead of exiting. A reactor (built with -buildmode=c-shared) is
// initialised once and then called through its skillbox_handle export once per call,
// with stdin, stdout and stderr bound to that call; its memory, globals and tables
// are put back to their state after initialisation before the next call, so nothing
// one call leaves behind (a global, a cache, a goroutine) is seen by the next. The
// same source builds as a command too when main calls Run:
//
//	func main() { sdk.Run(greet) } // a command: _start runs main
//
//	//go:wasmexport skillbox_handle
//	func handle() int32 { return sdk.Handle(greet) } // a reactor: main never runs
func Handle[In, Out any](fn func(ctx context.Context, in In) (Out, error)) int32 {
	return int32(Main(context.Background(), os.Stdin, os.Stdout, os.Stderr, fn))
}

// Main is Run with explicit streams; it returns the exit status instead of exiting.
// Tests call it directly.
func Main[In, Out any](ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, fn func(ctx context.Context, in In) (Out, error)) int {
	fail := func(err error) int {
		fmt.Fprintln(stderr, oneLine(err.Error()))
		return 1
	}
	var in In
	if err := decodeInput(stdin, &in); err != nil {
		return fail(fmt.Errorf("input: %w", err))
	}
	out, err := fn(ctx, in)
	if err != nil {
		return fail(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // output is read by programs and models, not embedded in HTML
	if err := enc.Encode(out); err != nil {
		return fail(fmt.Errorf("output: %w", err))
	}
	if _, err := stdout.Write(buf.Bytes()); err != nil {
		return fail(fmt.Errorf("write output: %w", err))
	}
	return 0
}

// decodeInput reads exactly one JSON value from r into v.
func decodeInput(r io.Reader, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, MaxInput+1))
	if err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	if len(data) > MaxInput {
		return fmt.Errorf("more than %d bytes", MaxInput)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("empty: expected a JSON value on stdin")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// Logf writes one log line to stderr, which the host captures (capped) as the call's logs.
func Logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	io.WriteString(os.Stderr, msg)
}

// oneLine keeps an error message on one line, as the host shows it to the caller.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
