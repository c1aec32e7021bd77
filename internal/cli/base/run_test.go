package base

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/runtime/runner"
)

// run prints a call's times in whole milliseconds, as invoke, MCP and the audit log do
// (time.Duration.Milliseconds: truncated), so one call's wallMs reads the same wherever
// a user sees it; a compile wait under 1 ms is left out, as the wire's 0 is.
func TestResultOutputWholeMilliseconds(t *testing.T) {
	for _, tc := range []struct {
		wall, compile time.Duration
		want          string
	}{
		{2500 * time.Microsecond, 1500 * time.Microsecond, `"usage":{"wallMs":2,"compileMs":1,`},
		{450 * time.Microsecond, 400 * time.Microsecond, `"usage":{"wallMs":0,"peakMemoryBytes"`},
		{1999 * time.Millisecond, 0, `"usage":{"wallMs":1999,"peakMemoryBytes"`},
	} {
		out := ResultOutput(&runner.Result{Output: []byte(`{}`), Usage: isolation.Usage{Wall: tc.wall, Compile: tc.compile}})
		var b bytes.Buffer
		if err := WriteRunOutput(&b, out, true); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("wall %v compile %v: %s: want it to hold %s", tc.wall, tc.compile, b.String(), tc.want)
		}
	}
}
