package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

// benchPending is how many calls of the overseen skill wait beside the benchmark.
const benchPending = 32

// BenchmarkInvokeBesideOversight: an unmarked skill's Invoke, alone on its engine
// ("baseline") and on an engine where another skill is under oversight with
// benchPending calls parked and a WatchPending subscriber ("beside-pending", what a
// console or `skillbox pending --watch` holds). The two should be the same: oversight
// must cost skills that are not marked nothing.
func BenchmarkInvokeBesideOversight(b *testing.B) {
	b.Run("baseline", func(b *testing.B) {
		eng, _ := benchEngine(b)
		benchInvokeEcho(b, eng)
	})
	b.Run("beside-pending", func(b *testing.B) {
		eng, home := benchEngine(b)
		benchInstall(b, home, eng, "pay", &approval.Grant{Oversight: &approval.Oversight{
			Approvers: []string{alice}, Wait: manifest.Duration(time.Hour)}})
		changed, stop := eng.WatchPending()
		defer stop()
		go func() {
			for range changed {
				_ = eng.Pending() // a watcher reads the list on every change
			}
		}()
		ctx, cancel := context.WithCancel(context.Background())
		var parked sync.WaitGroup
		for range benchPending {
			parked.Go(func() {
				_, _ = eng.Invoke(ctx, engine.Request{Skill: "pay", Input: []byte(`{"amount":1}`), Caller: agent, Door: "grpc"})
			})
		}
		defer func() { cancel(); parked.Wait() }()
		for deadline := time.Now().Add(20 * time.Second); len(eng.Pending()) < benchPending; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("%d calls parked after 20s, want %d", len(eng.Pending()), benchPending)
			}
		}
		benchInvokeEcho(b, eng)
		if n := len(eng.Pending()); n != benchPending {
			b.Fatalf("%d calls pending after the benchmark, want %d still waiting", n, benchPending)
		}
	})
}

// benchEngine is an engine with the unmarked echo installed and approved as asked.
func benchEngine(b *testing.B) (*engine.Engine, *testkit.Home) {
	b.Helper()
	home := testkit.NewHome(b)
	eng := home.Engine(b, engine.Config{})
	benchInstall(b, home, eng, "echo", nil)
	return eng, home
}

// benchInstall installs echo.wasm as name and approves it with grant.
func benchInstall(b *testing.B, home *testkit.Home, eng *engine.Engine, name string, grant *approval.Grant) {
	b.Helper()
	ctx := context.Background()
	if _, err := eng.Install(ctx, home.Build(b, testkit.Package{Name: name, Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody}), "test"); err != nil {
		b.Fatal(err)
	}
	c, err := eng.Candidate(ctx, name, "")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := eng.Approve(ctx, c, grant, "test"); err != nil {
		b.Fatal(err)
	}
}

// benchInvokeEcho calls echo b.N times from parallel goroutines, checking each output.
func benchInvokeEcho(b *testing.B, eng *engine.Engine) {
	b.Helper()
	in := []byte(`{"q":"hello"}`)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := eng.Invoke(context.Background(), engine.Request{Skill: "echo", Input: in, Caller: agent, Door: "grpc"})
			if err != nil {
				b.Error(err)
				return
			}
			if string(res.Output) != string(in) {
				b.Errorf("output %s", res.Output)
				return
			}
		}
	})
}
