package wasm_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
)

// The reactor benchmarks, side by side in one run (go test -bench Reactor):
//
//	Reactor{Tiny,Heavy}/fresh   a fresh instance per call: instantiate, _initialize, call, close
//	Reactor{Tiny,Heavy}/pooled  the pool: call, then reset to the post-_initialize state
//	Reactor{Tiny,Heavy}/raw     raw wazero, one instance called again and again with no
//	                            reset (leaks state: the floor, not a way to run skills)
//
// Tiny is a Go reactor that echoes; Heavy builds a 20,000-entry map in init; WAT is
// testdata/rxtiny.wasm, the echo of the gRPC benchmark (runtime/server), whose memory
// image is one 64 KiB page.
func BenchmarkReactorTiny(b *testing.B)  { benchReactor(b, goReactor(b, "rxecho")) }
func BenchmarkReactorHeavy(b *testing.B) { benchReactor(b, goReactor(b, "rxheavy")) }
func BenchmarkReactorWAT(b *testing.B)   { benchReactor(b, watSkill(b, "rxtiny")) }

func benchReactor(b *testing.B, skill isolation.Skill) {
	call := isolation.Call{ID: "bench", Skill: skill, Input: benchInput, Limits: limits(), Granted: limits()}
	run := func(b *testing.B, sb *wasm.Sandbox) {
		if _, err := sb.Run(context.Background(), call); err != nil { // compile and warm outside the timing
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			res, err := sb.Run(context.Background(), call)
			if err != nil || !bytes.Equal(res.Output, benchInput) {
				b.Fatalf("%q %v", res.Output, err)
			}
		}
	}
	b.Run("fresh", func(b *testing.B) { run(b, newSandbox(b, wasm.WithoutPool())) })
	b.Run("pooled", func(b *testing.B) { run(b, newSandbox(b)) })
	b.Run("raw", func(b *testing.B) { rawReactor(b, filepath.Join(skill.Dir, skill.Manifest.Sandbox.Wasm.Module)) })
}

// rawReactor calls skillbox_handle on one wazero instance again and again.
func rawReactor(b *testing.B, path string) {
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true))
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
	in := &swapReader{}
	var out bytes.Buffer
	mod, err := r.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName("").WithStdin(in).WithStdout(&out).WithStartFunctions("_initialize"))
	if err != nil {
		b.Fatal(err)
	}
	handle := mod.ExportedFunction("skillbox_handle")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out.Reset()
		in.r.Reset(benchInput)
		if _, err := handle.Call(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if !bytes.Equal(out.Bytes(), benchInput) {
		b.Fatalf("output %q", out.Bytes())
	}
}

type swapReader struct{ r bytes.Reader }

func (s *swapReader) Read(p []byte) (int, error) { return s.r.Read(p) }

// BenchmarkReactorParallel is the pool under 32 concurrent callers (GOMAXPROCS × 16).
func BenchmarkReactorParallel(b *testing.B) {
	skill := goReactor(b, "rxecho")
	call := isolation.Call{ID: "bench", Skill: skill, Input: benchInput, Limits: limits(), Granted: limits()}
	sb := newSandbox(b)
	if _, err := sb.Run(context.Background(), call); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := sb.Run(context.Background(), call); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if hwm := peakRSS(); hwm > 0 {
		b.ReportMetric(float64(hwm)/(1<<20), "peak-RSS-MiB")
	}
	b.ReportMetric(float64(wasm.IdleInstances(sb)), "idle-instances")
}

// peakRSS is the process's peak resident set (VmHWM), or 0 where unknown.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}
