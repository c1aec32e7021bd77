package server_test

import "syscall"

// peakRSSMiB is the process's peak resident set in MiB (getrusage's ru_maxrss, KiB on
// Linux).
func peakRSSMiB() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}
