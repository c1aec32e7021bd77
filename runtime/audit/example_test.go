package audit_test

import (
	"context"
	"fmt"
	"os"

	"github.com/skillbox-dev/skillbox/runtime/audit"
)

// Appending records and checking the chain. Every Append is on disk when it returns.
func Example() {
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)

	log, err := audit.Open(dir) // $SKILLBOX_HOME/audit
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	id, _ := log.Append(ctx, audit.Record{Event: audit.EventInvokeStart, Caller: "uid:1000", Skill: "echo", CallID: "c1"})
	fmt.Println("record", id)
	id, _ = log.Append(ctx, audit.Record{Event: audit.EventInvokeEnd, Caller: "uid:1000", Skill: "echo", CallID: "c1",
		Outcome: "ok", Usage: &audit.Usage{WallMS: 2, OutputBytes: 17}})
	fmt.Println("record", id)
	log.Close()

	fmt.Println("verify:", audit.Verify(log.Path()))
	// Output:
	// record 1
	// record 2
	// verify: <nil>
}
