package container

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/skillbox-dev/skillbox/isolation"
)

// pooled counts the ready warm containers of this sandbox.
func pooled(t testing.TB, s *Sandbox) int { return len(poolIDs(t, s)) }

// poolIDs returns the running warm containers of this sandbox.
func poolIDs(t testing.TB, s *Sandbox) map[string]bool {
	t.Helper()
	cs, err := env.cli.ContainerList(context.Background(), container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", LabelInstance+"="+s.Instance()), filters.Arg("label", LabelCall+"=pool"))})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, c := range cs {
		ids[c.ID] = true
	}
	return ids
}

// waitFor polls cond until it holds. The bound only turns a hang into a failure: it is
// generous because CI shares its Docker engine and two cores with other work.
func waitFor(t testing.TB, what string, cond func() bool, explain ...func() string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			why := ""
			for _, e := range explain {
				why += " " + e()
			}
			t.Fatalf("timed out waiting for %s%s", what, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestWarmPool(t *testing.T) {
	s := newSandbox(t, WithWarmPool(2))
	ctx := context.Background()
	call := hostileCall(`{"mode":"echo"}`)
	if err := s.Prewarm(ctx, call); err != nil {
		t.Fatalf("Prewarm: %v", err)
	}
	if n := pooled(t, s); n != 2 {
		t.Fatalf("after Prewarm %d warm containers, want 2", n)
	}
	first := onlyPoolKey(t, s)
	for i := 0; i < 4; i++ {
		call := hostileCall(`{"mode":"echo","n":` + string(rune('0'+i)) + `}`)
		before := poolIDs(t, s)
		res, err := s.Run(ctx, call)
		after := poolIDs(t, s)
		consumed := 0
		for id := range before {
			if !after[id] {
				consumed++
			}
		}
		if consumed != 1 {
			t.Errorf("call %d consumed %d warm containers, want 1 (served from the pool)", i, consumed)
		}
		if err != nil {
			t.Fatalf("warm call %d: %v", i, err)
		}
		if !bytes.Contains(res.Output, []byte(`"n":`+string(rune('0'+i)))) {
			t.Errorf("call %d got another call's output: %s", i, res.Output)
		}
		waitFor(t, "pool refill", func() bool { return pooled(t, s) == 2 }, func() string { return refillErrors(s) })
	}
	// A different grant shape does not take from this pool.
	other := hostileCall(`{"mode":"echo"}`)
	other.Limits.Memory, other.Granted.Memory = 48<<20, 48<<20
	if _, err := s.Run(ctx, other); err != nil {
		t.Fatalf("cold call with another shape: %v", err)
	}
	// A failing warm call still leaves nothing behind and the pool refills. (The other
	// shape may have a pool of its own filling meanwhile: count this shape's only.)
	if _, err := s.Run(ctx, hostileCall(`{"mode":"fail"}`)); isolation.ReasonOf(err) != isolation.ReasonSkillFailed {
		t.Fatalf("warm failing call = %v", err)
	}
	waitFor(t, "pool refill", func() bool { return readyIn(s, first) == 2 }, func() string { return refillErrors(s) })
	if err := s.Drain(ctx, "hostile"); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if n := pooled(t, s); n != 0 {
		t.Fatalf("after Drain %d warm containers remain", n)
	}
	// Close (in cleanup) must also remove a refilled pool.
	if err := s.Prewarm(ctx, call); err != nil {
		t.Fatalf("Prewarm again: %v", err)
	}
}

// BenchmarkWarmPoolCall is one call served from the warm pool (removal of the used
// container happens after the reply, in the background).
func BenchmarkWarmPoolCall(b *testing.B) {
	s := newSandbox(b, WithWarmPool(3))
	ctx := context.Background()
	call := hostileCall(`{"mode":"echo"}`)
	if err := s.Prewarm(ctx, call); err != nil {
		b.Fatal(err)
	}
	var times []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		waitFor(b, "pool refill", func() bool { return pooled(b, s) == 3 })
		b.StartTimer()
		start := time.Now()
		if _, err := s.Run(ctx, call); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	b.ReportMetric(float64(median(times).Microseconds())/1000, "median-ms")
}

// BenchmarkColdCall is one call through the sandbox without a pool: create, attach,
// start, input, output, exit (removal after the reply).
func BenchmarkColdCall(b *testing.B) {
	s := newSandbox(b)
	ctx := context.Background()
	call := hostileCall(`{"mode":"echo"}`)
	var times []time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := s.Run(ctx, call); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
	}
	b.ReportMetric(float64(median(times).Microseconds())/1000, "median-ms")
}

// BenchmarkDockerRunRm is the baseline: `docker run --rm -i --network none` of the
// same image through the docker CLI.
func BenchmarkDockerRunRm(b *testing.B) {
	needEngine(b)
	if _, err := exec.LookPath("docker"); err != nil {
		b.Skip("SKIPPING: no docker CLI")
	}
	var times []time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		cmd := exec.Command("docker", "run", "--rm", "-i", "--network", "none", env.hostileID)
		cmd.Stdin = bytes.NewReader([]byte(`{"mode":"echo"}`))
		if out, err := cmd.Output(); err != nil || !bytes.Contains(out, []byte("echo")) {
			b.Fatalf("docker run: %v %s", err, out)
		}
		times = append(times, time.Since(start))
	}
	b.ReportMetric(float64(median(times).Microseconds())/1000, "median-ms")
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// refillErrors describes the pools' last refill failures.
func refillErrors(s *Sandbox) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := ""
	for _, p := range s.pools {
		p.mu.Lock()
		out += fmt.Sprintf("[pool %s: %d ready, filling %v, last error %v]", p.skill, len(p.ready), p.filling, p.lastErr)
		p.mu.Unlock()
	}
	return out
}

// onlyPoolKey is the key of s's one pool.
func onlyPoolKey(t *testing.T, s *Sandbox) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pools) != 1 {
		t.Fatalf("%d pools, want 1", len(s.pools))
	}
	for k := range s.pools {
		return k
	}
	return ""
}

// readyIn is how many warm containers the pool under key holds ready.
func readyIn(s *Sandbox, key string) int {
	s.mu.Lock()
	p := s.pools[key]
	s.mu.Unlock()
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ready)
}

// settled waits until no pool of s is filling, and returns how many pools it has.
func settled(t *testing.T, s *Sandbox) int {
	t.Helper()
	waitFor(t, "pools to settle", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, p := range s.pools {
			p.mu.Lock()
			filling := p.filling
			p.mu.Unlock()
			if filling {
				return false
			}
		}
		return true
	}, func() string { return refillErrors(s) })
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pools)
}

// TestCallerCannotShapePools: calls whose caller lowered memory or CPU neither create
// pools nor warm containers, and still run at their lower limits; a warm container,
// once taken, is named after the call it serves.
func TestCallerCannotShapePools(t *testing.T) {
	s := newSandbox(t, WithWarmPool(2))
	ctx := context.Background()
	if err := s.Prewarm(ctx, hostileCall(`{"mode":"echo"}`)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		call := hostileCall(`{"mode":"echo"}`)
		call.Limits.Memory -= int64(i+1) << 20
		call.Limits.CPU = 0.5 + float64(i)/100
		if _, err := s.Run(ctx, call); err != nil {
			t.Fatalf("lowered call %d: %v", i, err)
		}
	}
	if n := settled(t, s); n != 1 {
		t.Errorf("after 8 caller-lowered calls %d pools, want 1 (the operator's)", n)
	}
	if n := pooled(t, s); n != 2 {
		t.Errorf("after 8 caller-lowered calls %d warm containers, want 2", n)
	}
	// A lowered call runs at its own limits, in a container of its own.
	call := hostileCall(`{"mode":"sleep","sleep":"2s"}`)
	call.Limits.Memory = 24 << 20
	done := make(chan error, 1)
	go func() { _, err := s.Run(ctx, call); done <- err }()
	var c container.InspectResponse
	waitFor(t, "the lowered call's container", func() bool {
		cs, err := env.cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelCall+"="+call.ID))})
		if err != nil || len(cs) != 1 {
			return false
		}
		c, err = env.cli.ContainerInspect(ctx, cs[0].ID)
		return err == nil
	})
	if c.HostConfig.Memory != 24<<20 {
		t.Errorf("lowered call runs with memory %d, want %d", c.HostConfig.Memory, 24<<20)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// An operator-shaped call is served warm, by a container renamed after it.
	warm := hostileCall(`{"mode":"sleep","sleep":"2s"}`)
	go func() { _, err := s.Run(ctx, warm); done <- err }()
	waitFor(t, "the warm container renamed after its call", func() bool {
		cs, err := env.cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
			filters.Arg("name", containerName("hostile", warm.ID)), filters.Arg("label", LabelCall+"=pool"))})
		return err == nil && len(cs) == 1
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestPoolsExpire: warm containers are replaced at their maximum age and idle pools
// are removed, without any call coming.
func TestPoolsExpire(t *testing.T) {
	ctx := context.Background()
	s := newSandbox(t, WithWarmPool(2), WithMaxWarmAge(2*time.Second), WithPoolIdle(time.Hour))
	if err := s.Prewarm(ctx, hostileCall(`{"mode":"echo"}`)); err != nil {
		t.Fatal(err)
	}
	first := poolIDs(t, s)
	waitFor(t, "warm containers past their age replaced", func() bool {
		now := poolIDs(t, s)
		for id := range first {
			if now[id] {
				return false
			}
		}
		return len(now) == 2
	})

	idle := newSandbox(t, WithWarmPool(2), WithPoolIdle(2*time.Second))
	if err := idle.Prewarm(ctx, hostileCall(`{"mode":"echo"}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle pool removed", func() bool {
		idle.mu.Lock()
		n := len(idle.pools)
		idle.mu.Unlock()
		return n == 0 && pooled(t, idle) == 0
	})
}
