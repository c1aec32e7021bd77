package approval_test

import (
	"fmt"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/approval"
)

// The budget of one call is the smallest of what the manifest allows, what the operator
// granted and what the caller asked for; zero means "not lowered".
func ExampleEffectiveLimits() {
	m := manifest.Limits{Timeout: manifest.Duration(10e9), Memory: 64 << 20, Output: 1 << 20, CPU: 1, Requests: 20}
	grant := manifest.Limits{Memory: 32 << 20}
	caller := manifest.Limits{Timeout: manifest.Duration(2e9), Memory: 128 << 20}
	l := approval.EffectiveLimits(m, grant, caller)
	fmt.Println(l.Timeout, l.Memory>>20, "MiB", l.Requests, "requests", l.Logs>>10, "KiB of logs")
	// Output: 2s 32 MiB 20 requests 64 KiB of logs
}
