package wasm_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/manifest"
)

// One call of a WASI command module: input on stdin, output on stdout, under a budget.
func Example() {
	ctx := context.Background()
	sb, err := wasm.New(ctx)
	if err != nil {
		panic(err)
	}
	defer sb.Close(ctx)

	code, _ := os.ReadFile("testdata/echo.wasm")
	sum := sha256.Sum256(code)
	res, err := sb.Run(ctx, isolation.Call{
		ID: "example",
		Skill: isolation.Skill{
			Manifest: &manifest.Manifest{Name: "echo", Sandbox: manifest.Sandbox{Wasm: &manifest.WasmSandbox{Module: "echo.wasm"}}},
			Dir:      "testdata",
			Digest:   "sha256:" + hex.EncodeToString(sum[:]),
		},
		Input:  []byte(`{"greeting":"hello"}`),
		Limits: isolation.Limits{Timeout: 5 * time.Second, Memory: 16 << 20, Output: 1 << 20, Logs: 64 << 10},
	})
	if err != nil {
		fmt.Println(isolation.ReasonOf(err), err)
		return
	}
	fmt.Println(string(res.Output), res.Usage.PeakMemory)
	// Output: {"greeting":"hello"} 65536
}
