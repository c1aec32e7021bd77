//go:build !linux

package server_test

// peakRSSMiB is unknown here.
func peakRSSMiB() float64 { return 0 }
