//go:build !race

package server_test

// raceOn is true in a -race build: the load test runs fewer calls.
const raceOn = false
