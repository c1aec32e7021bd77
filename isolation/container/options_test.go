package container

import (
	"context"
	"strings"
	"testing"
)

// Options that would weaken a limit are refused before anything is started: a pids
// limit of 0 is "unlimited" to Docker.
func TestBadOptionsAreRefused(t *testing.T) {
	for _, tc := range []struct {
		opt  Option
		want string
	}{
		{WithPidsLimit(0), "pids limit 0"},
		{WithPidsLimit(-1), "pids limit -1"},
		{WithNofileLimit(0), "open-files limit 0"},
		{WithWarmPool(-1), "warm pool size -1"},
		{WithMaxPools(0), "at most 0 pools"},
		{WithMaxWarmAge(0), "warm age 0s"},
	} {
		s, err := New(context.Background(), tc.opt, WithoutReap())
		if err == nil {
			_ = s.Close(context.Background())
			t.Errorf("option accepted, want an error naming %q", tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %q does not name %q", err, tc.want)
		}
	}
}
