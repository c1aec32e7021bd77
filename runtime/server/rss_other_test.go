//go:build !linux

package server_test

import "time"

// peakRSSMiB is unknown here.
func peakRSSMiB() float64 { return 0 }

// cpuTime is unknown here.
func cpuTime() time.Duration { return 0 }
