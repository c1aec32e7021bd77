package isolation

import (
	"math"
	"testing"
	"time"
)

// A zero or negative limit is the documented default, never "unlimited" and never
// "nothing allowed"; Requests alone keeps zero.
func TestLimitsWithDefaults(t *testing.T) {
	defaults := Limits{Timeout: DefaultTimeout, Memory: DefaultMemory, Output: DefaultOutput, Logs: DefaultLogs,
		CPU: DefaultCPU, Requests: 0, Response: DefaultResponse}
	tests := []struct {
		name string
		in   Limits
		want Limits
	}{
		{"zero", Limits{}, defaults},
		{"negative", Limits{Timeout: -1, Memory: -1, Output: -1, Logs: -1, CPU: -1, Requests: -1, Response: -1}, defaults},
		{"NaN cpu", Limits{CPU: math.NaN()}, defaults},
		{"response at most memory", Limits{Memory: 4 << 20},
			Limits{Timeout: DefaultTimeout, Memory: 4 << 20, Output: DefaultOutput, Logs: DefaultLogs, CPU: DefaultCPU, Response: 4 << 20}},
		{"set fields kept", Limits{Timeout: time.Second, Memory: 1, Output: 2, Logs: 3, CPU: 0.5, Requests: 4, Response: 5},
			Limits{Timeout: time.Second, Memory: 1, Output: 2, Logs: 3, CPU: 0.5, Requests: 4, Response: 5}},
	}
	for _, tc := range tests {
		if got := tc.in.WithDefaults(); got != tc.want {
			t.Errorf("%s: %+v.WithDefaults() = %+v, want %+v", tc.name, tc.in, got, tc.want)
		}
	}
}
