package wasm_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/skillbox-dev/skillbox/isolation"
)

var benchInput = []byte(`{"name":"bench"}` + "\n")

// rawWazero is the baseline: instantiate + run + close of a precompiled module with
// wazero's own config, output to a bytes.Buffer.
func rawWazero(b *testing.B, rc wazero.RuntimeConfig) {
	rawWazeroModule(b, rc, "testdata/echo.wasm")
}

func rawWazeroModule(b *testing.B, rc wazero.RuntimeConfig, path string) {
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, rc)
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	code, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	cm, err := r.CompileModule(ctx, code)
	if err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out.Reset()
		cfg := wazero.NewModuleConfig().WithName("").WithStdin(bytes.NewReader(benchInput)).WithStdout(&out)
		mod, err := r.InstantiateModule(ctx, cm, cfg)
		if err != nil {
			b.Fatal(err)
		}
		_ = mod.Close(ctx)
	}
	if !bytes.Equal(out.Bytes(), benchInput) {
		b.Fatalf("output %q", out.Bytes())
	}
}

func BenchmarkRawWazeroTiny(b *testing.B) { rawWazero(b, wazero.NewRuntimeConfig()) }

// The same with CloseOnContextDone, which the sandbox needs to stop loops: its cost.
func BenchmarkRawWazeroTinyCloseOnDone(b *testing.B) {
	rawWazero(b, wazero.NewRuntimeConfig().WithCloseOnContextDone(true))
}

func benchSandbox(b *testing.B, skill isolation.Skill, parallel bool) {
	sb := newSandbox(b)
	call := isolation.Call{ID: "bench", Skill: skill, Input: benchInput, Limits: limits()}
	if _, err := sb.Run(context.Background(), call); err != nil { // compile outside the timing
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := sb.Run(context.Background(), call); err != nil {
					b.Error(err)
					return
				}
			}
		})
		return
	}
	for b.Loop() {
		res, err := sb.Run(context.Background(), call)
		if err != nil || !bytes.Equal(res.Output, benchInput) {
			b.Fatalf("%q %v", res.Output, err)
		}
	}
}

func BenchmarkEngineTiny(b *testing.B) { benchSandbox(b, watSkill(b, "echo"), false) }

func BenchmarkEngineTinyParallel(b *testing.B) { benchSandbox(b, watSkill(b, "echo"), true) }

func BenchmarkGoGuest(b *testing.B) { benchSandbox(b, goSkill(b, "echo"), false) }

// The raw baseline for the Go guest, with CloseOnContextDone as the sandbox runs it.
func BenchmarkRawWazeroGoGuest(b *testing.B) {
	s := goSkill(b, "echo")
	rawWazeroModule(b, wazero.NewRuntimeConfig().WithCloseOnContextDone(true), filepath.Join(s.Dir, "echo.wasm"))
}
