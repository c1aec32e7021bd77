package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/skillbox-dev/skillbox/isolation"
)

// Reactor skills (skills/ABI.md §5) are WASI reactors: _initialize runs once per
// instance, then the export skillbox_handle serves one call, reading stdin and writing
// stdout and stderr as a command does. An instance serves exactly one call at a time
// and, between calls, is put back to the state it had right after _initialize:
//
//   - linear memory: its bytes are copied back from the image taken after
//     _initialize; a memory that grew is not shrunk, the instance is discarded;
//   - globals: every mutable global (exported for this by rewriteReactor) is set back;
//   - tables: copied back from shadow tables (rewriteReactor); a grown table discards;
//   - host-side WASI state: stdin, stdout, stderr and the guest's sleeps are bound to
//     the call; the descriptor table is checked (fileTracker for files in mounts,
//     fd_fdstat_get for stdio and preopens) and any change discards; clocks and random
//     numbers are the host's real ones and keep no per-instance state.
//
// An instance whose call failed in any way (trap, exit, timeout, cancel, a budget hit)
// is discarded, never reset. Instances are pooled per skill digest, skill name, grant
// and memory budget, so an instance never serves a call with another grant, env or
// mounts; Drain empties a skill's pools.

// PoolOptions bound the warm reactor instances a Sandbox keeps.
type PoolOptions struct {
	PerSkill int           // idle instances kept per pool; zero: 2×GOMAXPROCS
	Total    int           // idle instances kept in all pools; zero: 64
	Idle     time.Duration // an instance idle this long is released; zero: one minute
}

// WithPool bounds the warm instances of reactor skills.
func WithPool(o PoolOptions) Option { return func(c *config) { c.pool = o } }

// WithoutPool runs every call of a reactor skill in a fresh instance, as for a command.
func WithoutPool() Option { return func(c *config) { c.noPool = true } }

func (o PoolOptions) withDefaults() PoolOptions {
	if o.PerSkill <= 0 {
		o.PerSkill = max(2, 2*runtime.GOMAXPROCS(0))
	}
	if o.Total <= 0 {
		o.Total = 64
	}
	if o.Idle <= 0 {
		o.Idle = time.Minute
	}
	return o
}

// The reactor's exports the host calls.
const (
	exportInitialize = "_initialize"
	exportHandle     = "skillbox_handle"
)

// pools is the sandbox's set of reactor pools.
type pools struct {
	opts PoolOptions
	zero [imageChunk]byte // all zeros, never written: what memory images compare with

	mu     sync.Mutex
	byKey  map[string]*pool
	idle   int // idle instances in all pools
	closed bool

	janitor     sync.Once
	stop        chan struct{}
	janitorDone chan struct{}
}

// pool holds the idle instances of one skill under one grant.
type pool struct {
	skill   string // the skill's name, for Drain
	idle    []*instance
	drained bool
}

func newPools(o PoolOptions) *pools {
	return &pools{opts: o.withDefaults(), byKey: map[string]*pool{}, stop: make(chan struct{}), janitorDone: make(chan struct{})}
}

// poolKey names the pool a call may take an instance from: the code, the skill's name
// (argv[0]), everything the grant puts into an instance (env, mounts; network and
// brokered secrets too, though an instance holds none of them) and the memory budget
// the instance was made under.
func poolKey(call isolation.Call, memLimit uint64) string {
	// The fields, each with its length, go into one buffer hashed once: a call of a
	// skill without env or mounts costs no allocation but the key itself.
	var arr [256]byte
	buf := arr[:0]
	w := func(s string) {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	w(call.Skill.Digest)
	if call.Skill.Manifest != nil {
		w(call.Skill.Manifest.Name)
	}
	buf = binary.LittleEndian.AppendUint64(buf, 8) // as w would write it
	buf = binary.LittleEndian.AppendUint64(buf, memLimit)
	w("env")
	if len(call.Grant.Env) > 0 {
		keys := make([]string, 0, len(call.Grant.Env))
		for k := range call.Grant.Env {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			w(k)
			w(call.Grant.Env[k])
		}
	}
	w("files")
	for _, m := range call.Grant.Files {
		w(m.Guest)
		w(m.Host)
		w(string(m.Access))
	}
	w("network")
	for _, o := range call.Grant.Network {
		w(fmt.Sprint(o))
	}
	// Brokered secrets live in the call's egress guard, not in the instance; they are
	// in the key so that a rotated secret or a changed grant is another pool all the
	// same. The key is a digest held in memory only.
	w("brokered")
	for _, b := range call.Grant.Brokered {
		w(b.Name)
		w(b.Header)
		w(b.Value)
		w(b.Secret)
		for _, o := range b.Origins {
			w(fmt.Sprint(o))
		}
	}
	sum := sha256.Sum256(buf)
	clear(buf) // the buffer held the brokered values
	return string(sum[:])
}

// get takes an idle instance of the pool under key, or nil.
func (p *pools) get(key string) *instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	pl := p.byKey[key]
	if pl == nil || len(pl.idle) == 0 {
		return nil
	}
	inst := pl.idle[len(pl.idle)-1]
	pl.idle[len(pl.idle)-1] = nil
	pl.idle = pl.idle[:len(pl.idle)-1]
	p.idle--
	return inst
}

// put gives a reset instance back, or closes it when its pool is full or drained,
// the sandbox is closed, or all pools together hold their bound.
func (p *pools) put(key string, inst *instance) {
	p.mu.Lock()
	pl := p.byKey[key]
	keep := !p.closed && pl != nil && !pl.drained && inst.gen == pl && len(pl.idle) < p.opts.PerSkill && p.idle < p.opts.Total
	if keep {
		inst.idleSince = time.Now()
		pl.idle = append(pl.idle, inst)
		p.idle++
	}
	p.mu.Unlock()
	if !keep {
		inst.close()
		return
	}
	p.janitor.Do(func() { go p.sweep() })
}

// poolFor returns the pool under key, made if needed; instances record it, so one
// made before a Drain never goes back into the pool that replaced it.
func (p *pools) poolFor(key, skill string) *pool {
	p.mu.Lock()
	defer p.mu.Unlock()
	pl := p.byKey[key]
	if pl == nil {
		pl = &pool{skill: skill}
		if !p.closed {
			p.byKey[key] = pl
		}
	}
	return pl
}

// drain closes the idle instances of the skill's pools; instances in use are closed
// when their call ends.
func (p *pools) drain(skill string) {
	p.mu.Lock()
	var gone []*instance
	for k, pl := range p.byKey {
		if pl.skill == skill {
			pl.drained = true
			gone = append(gone, pl.idle...)
			p.idle -= len(pl.idle)
			pl.idle = nil
			delete(p.byKey, k)
		}
	}
	p.mu.Unlock()
	for _, inst := range gone {
		inst.close()
	}
}

// close releases every idle instance and stops the sweeper.
func (p *pools) close() {
	p.mu.Lock()
	p.closed = true
	var gone []*instance
	for k, pl := range p.byKey {
		pl.drained = true
		gone = append(gone, pl.idle...)
		pl.idle = nil
		delete(p.byKey, k)
	}
	p.idle = 0
	p.mu.Unlock()
	for _, inst := range gone {
		inst.close()
	}
	started := true
	p.janitor.Do(func() { started = false })
	close(p.stop)
	if started {
		<-p.janitorDone
	}
}

// sweep releases instances idle longer than opts.Idle, until the pools close.
func (p *pools) sweep() {
	defer close(p.janitorDone)
	t := time.NewTicker(max(p.opts.Idle/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			var gone []*instance
			p.mu.Lock()
			for _, pl := range p.byKey {
				kept := pl.idle[:0]
				for _, inst := range pl.idle {
					if now.Sub(inst.idleSince) >= p.opts.Idle {
						gone = append(gone, inst)
						p.idle--
					} else {
						kept = append(kept, inst)
					}
				}
				clear(pl.idle[len(kept):])
				pl.idle = kept
			}
			p.mu.Unlock()
			for _, inst := range gone {
				inst.close()
			}
		}
	}
}

// idleCount is the number of idle instances in all pools (for tests).
func (p *pools) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.idle
}

// instanceIO binds an instance's stdio and sleeps to the call it serves.
type instanceIO struct {
	ctx            context.Context
	stdin          bytes.Reader
	stdout, stderr *cappedWriter
}

func (o *instanceIO) Read(p []byte) (int, error) { return o.stdin.Read(p) }

type stdoutOf struct{ o *instanceIO }

func (w stdoutOf) Write(p []byte) (int, error) {
	if w.o.stdout == nil {
		return len(p), nil // between calls (never reached: no guest code runs then)
	}
	return w.o.stdout.Write(p)
}

type stderrOf struct{ o *instanceIO }

func (w stderrOf) Write(p []byte) (int, error) {
	if w.o.stderr == nil {
		return len(p), nil
	}
	return w.o.stderr.Write(p)
}

// instance is one reactor instance with what restoring it needs.
type instance struct {
	mod     api.Module
	handle  api.Function
	stack   [1]uint64 // handle's result
	mem     callMemory
	io      instanceIO
	files   fileTracker
	roots   []*os.Root // the mounts' roots, in the grant's order
	closeFS func()

	// The state after _initialize (snapshot), when the instance can be reused.
	gen       *pool // the pool it was made for
	image     *memImage
	globals   []api.MutableGlobal
	gvals     []uint64
	tablesRst api.Function
	probe     api.Function
	fds       []fdState
	idleSince time.Time
}

// fdState is what fd_fdstat_get said about one descriptor after _initialize.
type fdState struct {
	errno uint64
	stat  [24]byte
}

// bind gives the instance to one call: its context (for sleeps), input, output and
// logs.
func (inst *instance) bind(ctx context.Context, st *callState, input []byte) {
	o := &inst.io
	o.ctx, o.stdout, o.stderr = ctx, &st.stdout, &st.stderr
	o.stdin.Reset(input)
}

// unbind ends the call's hold on the instance.
func (inst *instance) unbind() {
	o := &inst.io
	o.ctx, o.stdout, o.stderr = nil, nil, nil
	o.stdin.Reset(nil)
}

func (inst *instance) close() {
	if inst.mod != nil {
		_ = inst.mod.Close(context.Background())
	}
	if inst.closeFS != nil {
		inst.closeFS()
	}
	inst.image = nil
}

// mountsCurrent reports whether each granted host path still names the directory the
// instance holds open for it. The roots are opened when the instance is made, and a
// pooled instance serves calls long after: a path whose link was pointed elsewhere, or
// whose directory was moved away and made again, must reach the call as it would a
// fresh instance, never as the directory it named before. The pool key holds the paths,
// so mounts are the instance's own in number and order.
func (inst *instance) mountsCurrent(mounts []isolation.Mount) bool {
	for i, r := range inst.roots {
		held, err := r.Stat(".")
		if err != nil {
			return false
		}
		now, err := os.Stat(mounts[i].Host)
		if err != nil || !os.SameFile(held, now) {
			return false
		}
	}
	return true
}

// newInstance instantiates the reactor and runs _initialize within the call (its
// output and logs go to the call, its memory counts against the call's budget), but
// with an empty stdin: the state _initialize leaves is what every later call of a
// pooled instance starts from, whoever makes it, so no call's input may reach it.
// (A fresh instance gets the same empty stdin: a skill behaves the same pooled or
// not.) Nor does it get the network: its requests would go out under this call's
// egress guard, charged to and audited as this caller (noNetInInit). The caller binds
// the call's input before the handler runs.
// When snapshot is set and the module allows it, it then records the state to
// restore after every call; inst.image is nil when it could not.
func (s *Sandbox) newInstance(ctx context.Context, m *module, call isolation.Call, st *callState, memLimit uint64, snapshot bool) (inst *instance, err error) {
	inst = &instance{}
	inst.mem.limit = memLimit
	inst.bind(ctx, st, nil)
	name := ""
	if call.Skill.Manifest != nil {
		name = call.Skill.Manifest.Name
	}
	o := &inst.io
	cfg := m.config(s.base, name).
		WithStartFunctions().
		WithNanosleep(func(ns int64) { sleep(o.ctx, ns) }).
		WithStdin(o).
		WithStdout(stdoutOf{o}).
		WithStderr(stderrOf{o})
	for k, v := range call.Grant.Env {
		cfg = cfg.WithEnv(k, v)
	}
	if len(call.Grant.Files) > 0 {
		fsc, roots, closeFS, err := s.openMounts(ctx, call.Grant.Files, &inst.files)
		if err != nil {
			return inst, err
		}
		inst.roots, inst.closeFS = roots, closeFS
		cfg = cfg.WithFSConfig(fsc)
	}
	defer func() {
		if err != nil {
			inst.close() // the caller still reads its memory's state
		}
	}()
	// No network while the instance is made (noNetInInit): neither for the module's
	// start function, which runs as it is instantiated, nor for _initialize. A request
	// is refused, never sent.
	nctx := initNet(ctx)
	actx := experimental.WithMemoryAllocator(nctx, &inst.mem)
	if inst.mod, err = instantiateOnly(actx, s.runtime, m.compiled, cfg, &inst.mem); err != nil {
		return inst, err
	}
	if _, err = inst.mod.ExportedFunction(exportInitialize).Call(nctx); err != nil {
		return inst, err
	}
	inst.handle = inst.mod.ExportedFunction(exportHandle)
	// A file _initialize left open has an offset and flags no reset can restore, a
	// directory it listed a cached listing.
	if !snapshot || m.plan == nil || m.plan.unpoolable != "" || !inst.files.onlyRoots() {
		return inst, nil
	}
	if err := inst.snapshot(m.plan, 3+len(call.Grant.Files), &s.pools.zero); err != nil {
		s.logger.Debug("reactor instance cannot be reused", "skill", name, "why", err.Error())
		inst.image = nil
	}
	return inst, nil
}

// snapshot records the state after _initialize: tables into their shadows, globals,
// the descriptor table and the memory image.
func (inst *instance) snapshot(plan *reactorPlan, fds int, zero *[imageChunk]byte) error {
	ctx := context.Background()
	if plan.tables > 0 {
		save := inst.mod.ExportedFunction(exportTablesSave)
		inst.tablesRst = inst.mod.ExportedFunction(exportTablesRest)
		if res, err := save.Call(ctx); err != nil || res[0] != 0 {
			return fmt.Errorf("a table grew during _initialize (%v)", err)
		}
	}
	for _, g := range plan.globals {
		mg, ok := inst.mod.ExportedGlobal(exportGlobalPrefix + strconv.FormatUint(uint64(g), 10)).(api.MutableGlobal)
		if !ok {
			return fmt.Errorf("global %d is not exported as mutable", g)
		}
		inst.globals = append(inst.globals, mg)
		inst.gvals = append(inst.gvals, mg.Get())
	}
	image := takeImage(inst.mem.buf, zero)
	if plan.fdChanges {
		inst.probe = inst.mod.ExportedFunction(exportFDProbe)
		if len(inst.mem.buf) < 24 {
			return fmt.Errorf("memory too small to probe descriptors")
		}
		for fd := range fds {
			st, err := inst.probeFD(uint32(fd))
			if err != nil {
				return err
			}
			inst.fds = append(inst.fds, st)
		}
		image.restore(inst.mem.buf) // the probes wrote at address 0
	}
	inst.image = image
	inst.files.setMark()
	return nil
}

// probeFD asks fd_fdstat_get about fd through the module's own import; the result is
// written at address 0, which the restore copies back.
func (inst *instance) probeFD(fd uint32) (fdState, error) {
	res, err := inst.probe.Call(context.Background(), uint64(fd), 0)
	if err != nil {
		return fdState{}, err
	}
	st := fdState{errno: res[0]}
	copy(st.stat[:], inst.mem.buf[:24])
	return st, nil
}

// reset puts the instance back to its state after _initialize, or says why it
// cannot ("" when it did). The instance must have ended its call normally.
func (inst *instance) reset() string {
	switch {
	case inst.image == nil:
		return "no snapshot"
	case len(inst.mem.buf) != inst.image.size:
		return "memory grew"
	case !inst.files.atMark():
		return "files opened or closed"
	case inst.files.listedSinceMark():
		return "a directory was listed"
	}
	for fd, want := range inst.fds {
		got, err := inst.probeFD(uint32(fd))
		if err != nil || got != want {
			return "descriptor " + strconv.Itoa(fd) + " changed"
		}
	}
	if inst.tablesRst != nil {
		if res, err := inst.tablesRst.Call(context.Background()); err != nil || res[0] != 0 {
			return "a table grew"
		}
	}
	inst.image.restore(inst.mem.buf)
	for i, g := range inst.globals {
		g.Set(inst.gvals[i])
	}
	inst.mem.hit = false
	return ""
}

// instantiateOnly instantiates without running any start function.
func instantiateOnly(ctx context.Context, r wazero.Runtime, cm wazero.CompiledModule, cfg wazero.ModuleConfig, mem *callMemory) (mod api.Module, err error) {
	defer func() {
		if p := recover(); p != nil {
			if mem.refusedInitial {
				err = isolation.Errorf(isolation.ReasonMemory, "module's initial memory is over the budget of %s", size(mem.limit))
				return
			}
			err = isolation.Errorf(isolation.ReasonInternal, "wazero panicked: %v", p)
		}
	}()
	return r.InstantiateModule(ctx, cm, cfg)
}

var _ isolation.Drainer = (*Sandbox)(nil)

// Drain releases the idle instances of the skill (by name) in every pool; an instance
// serving a call now is closed when the call ends, never pooled again.
func (s *Sandbox) Drain(_ context.Context, skill string) error {
	if s.pools != nil {
		s.pools.drain(skill)
	}
	return nil
}

// Warm reports the idle reactor instances in all pools (isolation.Warmer); 0 when
// pooling is off.
func (s *Sandbox) Warm() int {
	if s.pools == nil {
		return 0
	}
	s.pools.mu.Lock()
	defer s.pools.mu.Unlock()
	return s.pools.idle
}
