package wasm_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/wasm"
	"github.com/skillbox-dev/skillbox/manifest"
)

// pooledCall is a call that may use a pooled instance: its budget is the one granted.
func pooledCall(skill isolation.Skill, input string) isolation.Call {
	return isolation.Call{ID: "rx", Skill: skill, Input: []byte(input), Limits: limits(), Granted: limits()}
}

// runs makes the calls in order on sb and returns their outputs.
func runs(t *testing.T, sb *wasm.Sandbox, calls ...isolation.Call) []string {
	t.Helper()
	var outs []string
	for i, c := range calls {
		res, err := sb.Run(context.Background(), c)
		if err != nil {
			t.Fatalf("call %d: %v (logs %q)", i, err, res.Logs)
		}
		outs = append(outs, string(res.Output))
	}
	return outs
}

// resetAndControl runs the calls twice on the skill: on a sandbox that resets its
// pooled instances (want: every call sees fresh) and on one that reuses them without a
// reset (the control: the leak shows). check judges one run's outputs.
func resetAndControl(t *testing.T, calls []isolation.Call, check func(outs []string) error) {
	t.Helper()
	sb := newSandbox(t)
	if err := check(runs(t, sb, calls...)); err != nil {
		t.Errorf("with the reset: %v", err)
	}
	control := newSandbox(t)
	wasm.ReuseWithoutResetUnsafe(control)
	if err := check(runs(t, control, calls...)); err == nil {
		t.Errorf("the control (reuse without a reset) shows no leak: the test cannot see one")
	}
}

func allEqual(outs []string) error {
	for i, o := range outs {
		if o != outs[0] {
			return errors.New("call " + itoa(i) + " saw " + o + ", the first saw " + outs[0])
		}
	}
	return nil
}

func itoa(i int) string { return string(rune('0' + i)) }

// An unexported mutable global, a static in linear memory and a table entry (a
// reactor as C or Rust builds one) do not cross calls; the instance is reused.
func TestReactorResetsGlobalMemoryTable(t *testing.T) {
	skill := watSkill(t, "rxstate")
	call := pooledCall(skill, "{}")
	resetAndControl(t, []isolation.Call{call, call, call}, func(outs []string) error {
		if outs[0] != "0100" {
			return errors.New("first call saw " + outs[0] + ", want 0100")
		}
		return allEqual(outs)
	})
	sb := newSandbox(t)
	runs(t, sb, call, call)
	if n := wasm.IdleInstances(sb); n != 1 {
		t.Fatalf("after two calls %d idle instances, want the one reused", n)
	}
}

// A grown table and a grown memory cannot be put back: the instance is discarded.
func TestReactorDiscardsGrownInstance(t *testing.T) {
	call := pooledCall(watSkill(t, "rxgrow"), "{}")
	resetAndControl(t, []isolation.Call{call, call}, func(outs []string) error {
		if outs[0] != "11" {
			return errors.New("first call saw " + outs[0])
		}
		return allEqual(outs)
	})
	sb := newSandbox(t)
	runs(t, sb, call)
	if n := wasm.IdleInstances(sb); n != 0 {
		t.Fatalf("a grown instance went back to the pool (%d idle)", n)
	}
}

type leakReport struct {
	Counter    int      `json:"counter"`
	Map        int      `json:"map"`
	Goroutines int      `json:"goroutines"`
	Ticks      int64    `json:"ticks"`
	Files      int      `json:"files"`
	Grown      int      `json:"grown"`
	FD         int      `json:"fd"`
	FDOpen     bool     `json:"fdOpen"`
	Names      []string `json:"names"`
	Errno      uint32   `json:"errno"`
	Data       string   `json:"data"`
}

func reports(outs []string) ([]leakReport, error) {
	var reps []leakReport
	for _, o := range outs {
		var r leakReport
		if err := json.Unmarshal([]byte(o), &r); err != nil {
			return nil, err
		}
		reps = append(reps, r)
	}
	return reps, nil
}

// A Go package variable and a Go map do not cross calls.
func TestReactorGoVariables(t *testing.T) {
	call := pooledCall(goReactor(t, "leak"), `{"do":"count"}`)
	resetAndControl(t, []isolation.Call{call, call, call}, func(outs []string) error {
		reps, err := reports(outs)
		if err != nil {
			return err
		}
		for _, r := range reps {
			if r.Counter != 0 || r.Map != 0 {
				return errors.New("a call saw the counter or map of another: " + outs[len(outs)-1])
			}
		}
		return nil
	})
}

// A goroutine a call leaves running is gone in the next call.
func TestReactorGoroutines(t *testing.T) {
	skill := goReactor(t, "leak")
	start, count := pooledCall(skill, `{"do":"goroutine"}`), pooledCall(skill, `{"do":"count"}`)
	resetAndControl(t, []isolation.Call{count, start, count}, func(outs []string) error {
		reps, err := reports(outs)
		if err != nil {
			return err
		}
		if reps[2].Goroutines != reps[0].Goroutines || reps[2].Ticks != 0 {
			return errors.New("the goroutine of call 1 lived on: " + outs[2])
		}
		return nil
	})
}

// Memory grown by Go's allocator discards the instance; the next call sees none of it.
func TestReactorGoGrownMemory(t *testing.T) {
	skill := goReactor(t, "leak")
	grow, count := pooledCall(skill, `{"do":"grow"}`), pooledCall(skill, `{"do":"count"}`)
	resetAndControl(t, []isolation.Call{grow, count}, func(outs []string) error {
		reps, err := reports(outs)
		if err != nil {
			return err
		}
		if reps[1].Grown != 0 || reps[1].Counter != 0 {
			return errors.New("the next call saw the grown memory: " + outs[1])
		}
		return nil
	})
}

// A file a call leaves open on a granted directory is not open in the next call.
func TestReactorOpenFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("secret of call 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	skill := goReactor(t, "leak")
	grant := isolation.Grant{Files: []isolation.Mount{{Guest: "/data", Host: dir, Access: manifest.AccessRead}}}
	open := pooledCall(skill, `{"do":"open","path":"/data/f"}`)
	open.Grant = grant
	sb := newSandbox(t)
	res, err := sb.Run(context.Background(), open)
	if err != nil {
		t.Fatalf("open: %v (%q)", err, res.Logs)
	}
	var r leakReport
	if err := json.Unmarshal(res.Output, &r); err != nil || r.FD < 3 {
		t.Fatalf("open reported %q (%v)", res.Output, err)
	}
	if n := wasm.IdleInstances(sb); n != 0 {
		t.Errorf("an instance with a file left open went back to the pool (%d idle)", n)
	}
	probe := pooledCall(skill, `{"do":"probefd","fd":`+itoa(r.FD)+`}`)
	probe.Grant = grant
	resetAndControl(t, []isolation.Call{open, probe}, func(outs []string) error {
		reps, err := reports(outs)
		if err != nil {
			return err
		}
		if reps[1].FDOpen || reps[1].Files != 0 {
			return errors.New("descriptor " + itoa(reps[0].FD) + " opened by call 1 was open in call 2: " + outs[1])
		}
		return nil
	})
}

// A directory's listing, which wazero caches on the descriptor for fd_readdir's
// cookies, does not cross calls: a call that lists its mount (here after creating a
// file it removes before it ends) is not followed by one that reads the rest of that
// listing from the cache and learns the name. The instance is discarded, never reset.
func TestReactorDirectoryListing(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "public"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	skill := goReactor(t, "leak")
	grant := isolation.Grant{Files: []isolation.Mount{{Guest: "/data", Host: dir, Access: manifest.AccessReadWrite}}}
	first := pooledCall(skill, `{"do":"list","fd":3,"path":"/data/alice-secret.tmp"}`)
	first.Grant = grant
	sb := newSandbox(t)
	out := runs(t, sb, first)
	reps, err := reports(out)
	if err != nil || !slices.Contains(reps[0].Names, "alice-secret.tmp") || !slices.Contains(reps[0].Names, "public") {
		t.Fatalf("the first call's listing of its mount: %q (%v)", out, err)
	}
	if n := wasm.IdleInstances(sb); n != 0 {
		t.Errorf("an instance whose call listed a directory went back to the pool (%d idle)", n)
	}
	next := pooledCall(skill, `{"do":"list","fd":3,"cookie":2}`)
	next.Grant = grant
	resetAndControl(t, []isolation.Call{first, next}, func(outs []string) error {
		reps, err := reports(outs)
		if err != nil {
			return err
		}
		if slices.Contains(reps[1].Names, "alice-secret.tmp") {
			return errors.New("the second call read the first call's listing from the cache: " + outs[1])
		}
		return nil
	})
}

// A reactor whose _initialize lists a mount is never pooled: the listing it cached
// would be every call's starting state, and no reset can see it. The same reactor
// without that listing is pooled (the control).
func TestReactorInitListingNotPooled(t *testing.T) {
	dir := t.TempDir()
	skill := goReactor(t, "leak")
	for _, tc := range []struct {
		env  map[string]string
		idle int
	}{{nil, 1}, {map[string]string{"LEAK_INIT_LIST": "/data"}, 0}} {
		c := pooledCall(skill, `{"do":"count"}`)
		c.Grant = isolation.Grant{Env: tc.env, Files: []isolation.Mount{{Guest: "/data", Host: dir, Access: manifest.AccessRead}}}
		sb := newSandbox(t)
		runs(t, sb, c)
		if n := wasm.IdleInstances(sb); n != tc.idle {
			t.Errorf("env %v: %d idle instances after one call, want %d", tc.env, n, tc.idle)
		}
	}
}

// A call that closes its stdout leaves the next call's stdout open.
func TestReactorClosedStdout(t *testing.T) {
	skill := goReactor(t, "leak")
	closeOut, count := pooledCall(skill, `{"do":"closestdout"}`), pooledCall(skill, `{"do":"count"}`)
	resetAndControl(t, []isolation.Call{closeOut, count}, func(outs []string) error {
		if _, err := reports(outs); err != nil {
			return errors.New("the call after one that closed stdout wrote " + strconv.Quote(outs[1]))
		}
		return nil
	})
}

// An instance is never shared between grants: another env is another pool, and Drain
// empties the skill's pools.
func TestReactorPoolPerGrant(t *testing.T) {
	skill := watSkill(t, "rxstate")
	a, b := pooledCall(skill, "{}"), pooledCall(skill, "{}")
	a.Grant.Env = map[string]string{"TOKEN": "a"}
	b.Grant.Env = map[string]string{"TOKEN": "b"}
	sb := newSandbox(t)
	runs(t, sb, a, b, a, b)
	if n := wasm.IdleInstances(sb); n != 2 {
		t.Fatalf("%d idle instances after calls under two grants, want one per grant", n)
	}
	if err := sb.Drain(context.Background(), skill.Manifest.Name); err != nil {
		t.Fatal(err)
	}
	if n := wasm.IdleInstances(sb); n != 0 {
		t.Fatalf("%d idle instances after Drain", n)
	}
	// A call whose budget is lower than the grant's gets a fresh instance.
	low := pooledCall(skill, "{}")
	low.Limits.Memory /= 2
	runs(t, sb, low)
	if n := wasm.IdleInstances(sb); n != 0 {
		t.Fatalf("a call with a lowered budget left a pooled instance (%d idle)", n)
	}
}

// A failed call (exit, trap, timeout, kill switch, budget) discards its instance and
// the next call is served as if fresh.
func TestReactorFailedCallsDiscard(t *testing.T) {
	skill := goReactor(t, "leak")
	sb := newSandbox(t)
	count := pooledCall(skill, `{"do":"count"}`)
	runs(t, sb, count)
	if n := wasm.IdleInstances(sb); n != 1 {
		t.Fatalf("%d idle after a clean call", n)
	}
	_, err := sb.Run(context.Background(), pooledCall(skill, `{"do":"exit"}`))
	if ie := requireReason(t, err, isolation.ReasonSkillFailed); ie.Msg != "skill exited with code 7" {
		t.Fatalf("exit: %v", err)
	}
	if n := wasm.IdleInstances(sb); n != 0 {
		t.Fatalf("an instance that exited went back to the pool (%d idle)", n)
	}
	// The kill switch during a call: the instance is discarded, never pooled.
	runs(t, sb, count)
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(50*time.Millisecond, func() { cancel(errors.New("kill switch")) })
	_, err = sb.Run(ctx, pooledCall(skill, `{"do":"sleep"}`))
	requireReason(t, err, isolation.ReasonCanceled)
	if n := wasm.IdleInstances(sb); n != 0 {
		t.Fatalf("a killed call's instance went back to the pool (%d idle)", n)
	}
	reps, err := reports(runs(t, sb, count))
	if err != nil || reps[0].Counter != 0 {
		t.Fatalf("after failures the next call saw %+v (%v)", reps, err)
	}
}

// A module that says it is a reactor but is a command (or the reverse) is refused.
func TestReactorKindDeclared(t *testing.T) {
	sb := newSandbox(t)
	skill := watSkill(t, "echo")
	skill.Manifest.Sandbox.Wasm.Kind = manifest.WasmReactor
	err := sb.Prepare(context.Background(), skill)
	requireReason(t, err, isolation.ReasonInvalidModule)
	rx := watSkill(t, "rxstate")
	rx.Manifest.Sandbox.Wasm.Kind = manifest.WasmReactor
	if err := sb.Prepare(context.Background(), rx); err != nil {
		t.Fatalf("a declared reactor: %v", err)
	}
}

// All pools together keep at most Total idle instances: calls under three grants (three
// pools) with Total 2 leave two, and the next calls still run.
func TestReactorPoolTotalBound(t *testing.T) {
	skill := watSkill(t, "rxtiny")
	sb := newSandbox(t, wasm.WithPool(wasm.PoolOptions{Total: 2, Idle: time.Hour}))
	var calls []isolation.Call
	for _, v := range []string{"a", "b", "c"} {
		c := pooledCall(skill, "hi")
		c.Grant.Env = map[string]string{"TOKEN": v}
		calls = append(calls, c)
	}
	outs := runs(t, sb, calls...)
	if n := wasm.IdleInstances(sb); n != 2 {
		t.Fatalf("%d idle instances in all pools, bounded to 2", n)
	}
	outs = append(outs, runs(t, sb, calls...)...)
	if n := wasm.IdleInstances(sb); n != 2 {
		t.Fatalf("%d idle instances after more calls, bounded to 2", n)
	}
	for i, o := range outs {
		if o != "hi" {
			t.Fatalf("call %d: %q", i, o)
		}
	}
}

// An instance idle for longer than Idle is released.
func TestReactorPoolIdleRelease(t *testing.T) {
	skill := watSkill(t, "rxtiny")
	sb := newSandbox(t, wasm.WithPool(wasm.PoolOptions{Idle: 20 * time.Millisecond}))
	runs(t, sb, pooledCall(skill, "hi"))
	if n := wasm.IdleInstances(sb); n != 1 {
		t.Fatalf("%d idle instances after a call, want 1", n)
	}
	// Not a timed assertion: the release must come, however long the sweeper takes.
	deadline := time.Now().Add(30 * time.Second)
	for wasm.IdleInstances(sb) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("an idle instance was never released")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out := runs(t, sb, pooledCall(skill, "again")); out[0] != "again" {
		t.Fatalf("after the release: %q", out[0])
	}
}

// A pooled instance holds its mounts open from the call that made it. A call it serves
// later sees the directory its grant's host path names at that call, as a fresh instance
// would: not the one the path named before a link was pointed elsewhere or the directory
// moved away (an operator taking a directory out of a grant that way).
func TestReactorMountFollowsHostPath(t *testing.T) {
	base := t.TempDir()
	a, b, link := filepath.Join(base, "a"), filepath.Join(base, "b"), filepath.Join(base, "current")
	for dir, data := range map[string]string{a: "A", b: "B"} {
		must(t, os.Mkdir(dir, 0o755))
		must(t, os.WriteFile(filepath.Join(dir, "f"), []byte(data), 0o644))
	}
	must(t, os.Symlink(a, link))
	read := pooledCall(goReactor(t, "leak"), `{"do":"read","path":"/data/f"}`)
	read.Grant = isolation.Grant{Files: []isolation.Mount{{Guest: "/data", Host: link, Access: manifest.AccessRead}}}
	sb := newSandbox(t)
	saw := func() string {
		t.Helper()
		reps, err := reports(runs(t, sb, read))
		if err != nil {
			t.Fatal(err)
		}
		return reps[0].Data
	}
	if got := saw(); got != "A" {
		t.Fatalf("first call read %q", got)
	}
	if n := wasm.IdleInstances(sb); n != 1 {
		t.Fatalf("%d idle instances after a clean call, want 1 (the test needs a pooled one)", n)
	}
	must(t, os.Remove(link))
	must(t, os.Symlink(b, link))
	if got := saw(); got != "B" {
		t.Errorf("after the link was pointed at b, a call read %q from the directory it named before", got)
	}
	must(t, os.Rename(b, b+".old"))
	must(t, os.Mkdir(b, 0o755))
	must(t, os.WriteFile(filepath.Join(b, "f"), []byte("C"), 0o644))
	if got := saw(); got != "C" {
		t.Errorf("after b was moved away and made again, a call read %q from the old one", got)
	}
}
