package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// A pool keeps at most PerSkill idle instances: with three real instances of one skill
// under one grant given back, the third is closed, not kept. (Sequential calls never
// hold more than one instance, so the instances are made here directly, as concurrent
// calls would make them.)
func TestPoolPerSkillBound(t *testing.T) {
	ctx := context.Background()
	sb, err := New(ctx, WithPool(PoolOptions{PerSkill: 2, Total: 10, Idle: time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(ctx)
	data, err := os.ReadFile("testdata/rxtiny.wasm")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	skill := isolation.Skill{
		Manifest: &manifest.Manifest{Name: "tiny", Sandbox: manifest.Sandbox{Wasm: &manifest.WasmSandbox{Module: "rxtiny.wasm"}}},
		Dir:      "testdata",
		Digest:   "sha256:" + hex.EncodeToString(sum[:]),
	}
	lim := isolation.Limits{Timeout: time.Minute, Memory: 16 << 20, Output: 1 << 20, Logs: 1 << 20}
	call := isolation.Call{ID: "bound", Skill: skill, Limits: lim, Granted: lim}
	m, err := sb.compile(ctx, skill)
	if err != nil {
		t.Fatal(err)
	}
	key := poolKey(call, uint64(lim.Memory))
	var insts []*instance
	for range 3 {
		st := &callState{}
		inst, err := sb.newInstance(ctx, m, call, st, uint64(lim.Memory), true)
		if err != nil {
			t.Fatal(err)
		}
		if inst.image == nil {
			t.Fatal("rxtiny's instance has no snapshot: it cannot be pooled")
		}
		inst.unbind()
		inst.gen = sb.pools.poolFor(key, "tiny")
		insts = append(insts, inst)
	}
	for _, inst := range insts {
		sb.pools.put(key, inst)
	}
	if n := sb.pools.idleCount(); n != 2 {
		t.Fatalf("%d idle instances in a pool bounded to 2", n)
	}
	if insts[0].mod.IsClosed() || insts[1].mod.IsClosed() || !insts[2].mod.IsClosed() {
		t.Fatalf("closed: %v %v %v; want only the third", insts[0].mod.IsClosed(), insts[1].mod.IsClosed(), insts[2].mod.IsClosed())
	}
	// A call takes one of them and gives it back.
	res, err := sb.Run(ctx, isolation.Call{ID: "after", Skill: skill, Input: []byte("hi"), Limits: lim, Granted: lim})
	if err != nil || string(res.Output) != "hi" {
		t.Fatalf("%q %v", res.Output, err)
	}
	if n := sb.pools.idleCount(); n != 2 {
		t.Fatalf("%d idle instances after a pooled call, want 2", n)
	}
}
