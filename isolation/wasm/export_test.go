package wasm

// ReuseWithoutResetUnsafe makes sb put reactor instances back into their pool after
// a clean call without resetting them (and without the checks that discard them): the
// control of the reset tests, which shows that they can see the leak they look for.
func ReuseWithoutResetUnsafe(sb *Sandbox) { sb.reuseWithoutResetUnsafe = true }

// IdleInstances is the number of idle reactor instances sb keeps.
func IdleInstances(sb *Sandbox) int { return sb.pools.idleCount() }
