// Package wasm is the wazero sandbox: WASI preview1 modules compiled once per digest,
// no ambient authority, and per-call budgets for time, memory, output, logs and
// outbound requests. A command module (_start) gets a fresh anonymous instance per
// call; a reactor module (_initialize and skillbox_handle) is initialised once per
// instance and put back to its post-initialisation state after every call (pool.go).
package wasm

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/egress"
	"github.com/skillbox-dev/skillbox/manifest"
)

// Sandbox runs WASI command modules in wazero. It is safe for concurrent use.
type Sandbox struct {
	runtime  wazero.Runtime
	cache    wazero.CompilationCache
	resolver egress.Resolver
	logger   *slog.Logger
	base     wazero.ModuleConfig

	// modules holds one *module per code digest. A sync.Map keeps the hot path (a
	// digest already compiled) free of any lock.
	modules sync.Map
	// compiling counts compilations running on their own; Close waits for them.
	compiling sync.WaitGroup
	// pools holds warm reactor instances; nil when pooling is off.
	pools *pools
	// reuseWithoutResetUnsafe is set by tests only (export_test.go), for controls.
	reuseWithoutResetUnsafe bool
	// paths is the guard of another sandbox whose calls can make links (GuardPaths).
	paths atomic.Pointer[pathGuard]
}

type pathGuard struct{ isolation.PathGuard }

// GuardPaths makes every call open its granted directories only while g holds their
// host paths (isolation.PathGuard): the container sandbox's calls can make links in
// their read-write directories, and a wasm grant's host path that leads through one
// must not be opened through a link such a call made. Set it before the first call.
func (s *Sandbox) GuardPaths(g isolation.PathGuard) { s.paths.Store(&pathGuard{g}) }

// openMounts is mountFS under the path guard, if any. It fails with the context's
// error if the call ends while it waits.
func (s *Sandbox) openMounts(ctx context.Context, mounts []isolation.Mount, files *fileTracker) (wazero.FSConfig, []*os.Root, func(), error) {
	if g := s.paths.Load(); g != nil {
		hosts := make([]string, len(mounts))
		for i, m := range mounts {
			hosts[i] = m.Host
		}
		release, err := g.Mounting(ctx, hosts)
		if err != nil {
			return nil, nil, nil, err
		}
		defer release()
	}
	return mountFS(mounts, files)
}

var _ isolation.Sandbox = (*Sandbox)(nil)

// Option configures a Sandbox.
type Option func(*config)

type config struct {
	cacheDir string
	resolver egress.Resolver
	logger   *slog.Logger
	pool     PoolOptions
	noPool   bool
}

// WithCacheDir keeps compiled code on disk under dir, so a restart does not recompile.
func WithCacheDir(dir string) Option { return func(c *config) { c.cacheDir = dir } }

// WithResolver sets the resolver egress guards use for granted names.
func WithResolver(r egress.Resolver) Option { return func(c *config) { c.resolver = r } }

// WithLogger sets where the sandbox reports its own trouble (not the skill's logs).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// New returns a Sandbox with one wazero runtime, WASI and the network host module.
func New(ctx context.Context, opts ...Option) (*Sandbox, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	var cache wazero.CompilationCache
	if c.cacheDir != "" {
		var err error
		if cache, err = wazero.NewCompilationCacheWithDir(c.cacheDir); err != nil {
			return nil, fmt.Errorf("wasm compilation cache %s: %w", c.cacheDir, err)
		}
	} else {
		cache = wazero.NewCompilationCache()
	}
	// CloseOnContextDone is the only way to stop a guest that never calls out (an
	// infinite loop); it costs a check in every loop and function entry.
	rc := wazero.NewRuntimeConfig().
		WithCompilationCache(cache).
		WithCloseOnContextDone(true)
	r := wazero.NewRuntimeWithConfig(ctx, rc)
	if err := instantiateWASI(ctx, r); err != nil {
		_ = r.Close(ctx)
		return nil, fmt.Errorf("instantiate WASI: %w", err)
	}
	if err := instantiateHost(ctx, r); err != nil {
		_ = r.Close(ctx)
		return nil, fmt.Errorf("instantiate host module: %w", err)
	}
	// Defaults are deterministic (fake clocks, fixed random); skills get real ones.
	// The sleep is set per call (Run): wazero's own sleeps uninterruptibly.
	base := wazero.NewModuleConfig().
		WithName("").
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader)
	sb := &Sandbox{runtime: r, cache: cache, resolver: c.resolver, logger: c.logger, base: base}
	if !c.noPool {
		sb.pools = newPools(c.pool)
	}
	return sb, nil
}

// wasiENOTSUP is WASI preview1's errno "not supported".
const wasiENOTSUP = 58

// instantiateWASI defines WASI preview1 in r as wazero implements it, but for
// fd_renumber, which always fails ENOTSUP: wazero grows its descriptor table to hold
// the number the guest names as the new descriptor, up to 2^31-1 entries (16 GiB of
// host memory, outside every budget) for one call by a guest with any file grant. Its
// only use is moving a file the guest opened onto another number (stdio and granted
// directories cannot be moved), which WASI programs rarely do and can do without.
func instantiateWASI(ctx context.Context, r wazero.Runtime) error {
	b := r.NewHostModuleBuilder(wasi_snapshot_preview1.ModuleName)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	_, err := b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
			stack[0] = wasiENOTSUP
		}), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}).
		WithParameterNames("fd", "to").
		Export("fd_renumber").
		Instantiate(ctx)
	return err
}

// Close releases the runtime and every compiled module, after the compilations under
// way have ended.
func (s *Sandbox) Close(ctx context.Context) error {
	s.compiling.Wait()
	if s.pools != nil {
		s.pools.close()
	}
	err := s.runtime.Close(ctx)
	if cerr := s.cache.Close(ctx); err == nil {
		err = cerr
	}
	return err
}

// module is one compiled digest; ready closes when compiled (or failed).
type module struct {
	ready    chan struct{}
	compiled wazero.CompiledModule
	err      error
	usesNet  bool   // imports the skillbox host module
	minMem   uint64 // declared minimum memory in bytes
	kind     string // KindCommand or KindReactor
	plan     *reactorPlan

	cfgOnce sync.Once
	cfgName string
	cfg     wazero.ModuleConfig // the base config with argv[0] = cfgName
}

// config is the base module config with argv[0] set to the skill name, built once per
// module: every With* call on a wazero config copies it.
func (m *module) config(base wazero.ModuleConfig, name string) wazero.ModuleConfig {
	m.cfgOnce.Do(func() {
		m.cfgName, m.cfg = name, base
		if name != "" {
			m.cfg = base.WithArgs(name)
		}
	})
	if name == m.cfgName {
		return m.cfg
	}
	if name == "" {
		return base
	}
	return base.WithArgs(name)
}

// compile returns the compiled module for the skill, compiling it at most once per
// digest even when many calls ask at once. The compilation runs on its own and is not
// cancelled with ctx: wazero cannot stop one, so a caller that gives up (its call's
// timeout) returns at once, and the module is ready for the next call.
func (s *Sandbox) compile(ctx context.Context, skill isolation.Skill) (*module, error) {
	if skill.Digest == "" {
		return nil, isolation.Errorf(isolation.ReasonInvalidModule, "skill has no code digest")
	}
	if v, ok := s.modules.Load(skill.Digest); ok {
		m := v.(*module)
		if err := wait(ctx, m); err != nil {
			return nil, err
		}
		if m.err == nil {
			return m, nil
		}
	}
	m := &module{ready: make(chan struct{})}
	if v, loaded := s.modules.LoadOrStore(skill.Digest, m); loaded {
		other := v.(*module)
		if err := wait(ctx, other); err != nil {
			return nil, err
		}
		if other.err == nil {
			return other, nil
		}
		// Failures are not cached: the next call tries again (the file may be fixed).
		s.modules.CompareAndDelete(skill.Digest, other)
		return nil, other.err
	}
	s.compiling.Add(1)
	go func() {
		defer s.compiling.Done()
		m.err = m.build(context.WithoutCancel(ctx), s.runtime, skill)
		if m.err != nil {
			s.modules.CompareAndDelete(skill.Digest, m)
		}
		close(m.ready)
	}()
	if err := wait(ctx, m); err != nil {
		return nil, err
	}
	if m.err != nil {
		return nil, m.err
	}
	return m, nil
}

// Prepare compiles the skill's module ahead of its first call (and into the on-disk
// cache, when the sandbox has one), and refuses a module that could never run: bad
// bytes, unknown imports, no _start.
func (s *Sandbox) Prepare(ctx context.Context, skill isolation.Skill) error {
	_, err := s.compile(ctx, skill)
	return err
}

// wait blocks until m is compiled or the caller gives up.
func wait(ctx context.Context, m *module) error {
	select {
	case <-m.ready:
		return nil
	case <-ctx.Done():
		return ended(context.Cause(ctx), 0)
	}
}

func (m *module) build(ctx context.Context, r wazero.Runtime, skill isolation.Skill) error {
	name := "module.wasm"
	if skill.Manifest != nil && skill.Manifest.Sandbox.Wasm != nil && skill.Manifest.Sandbox.Wasm.Module != "" {
		name = skill.Manifest.Sandbox.Wasm.Module
	}
	code, err := os.ReadFile(filepath.Join(skill.Dir, filepath.FromSlash(name)))
	if err != nil {
		return &isolation.Error{Reason: isolation.ReasonInvalidModule, Msg: "read module", Err: err}
	}
	// The cache is keyed by digest, so the bytes must be the ones the digest names.
	if got := manifest.DigestOf(code).String(); got != skill.Digest {
		return isolation.Errorf(isolation.ReasonInvalidModule, "module %s has digest %s, expected %s", name, got, skill.Digest)
	}
	if code, err = capTables(code); err != nil {
		return &isolation.Error{Reason: isolation.ReasonInvalidModule, Msg: "module tables", Err: err}
	}
	declared := ""
	if skill.Manifest != nil && skill.Manifest.Sandbox.Wasm != nil {
		declared = skill.Manifest.Sandbox.Wasm.Kind
	}
	if m.kind, err = KindOf(code); err != nil {
		return &isolation.Error{Reason: isolation.ReasonInvalidModule, Msg: "module exports", Err: err}
	}
	if declared != "" && declared != m.kind {
		return isolation.Errorf(isolation.ReasonInvalidModule, "the manifest says sandbox.wasm.kind %s but the module is a %s", declared, m.kind)
	}
	if m.kind == KindReactor {
		if code, m.plan, err = rewriteReactor(code); err != nil {
			return &isolation.Error{Reason: isolation.ReasonInvalidModule, Msg: "read reactor module", Err: err}
		}
	}
	cm, err := r.CompileModule(ctx, code)
	if err != nil {
		return &isolation.Error{Reason: isolation.ReasonInvalidModule, Msg: "compile module", Err: err}
	}
	if err := m.inspect(cm); err != nil {
		_ = cm.Close(ctx)
		return err
	}
	m.compiled = cm
	return nil
}

// inspect refuses what cannot run here before any instance exists: imports other than
// WASI and the skillbox module, imported memories, and modules without _start.
func (m *module) inspect(cm wazero.CompiledModule) error {
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		switch mod {
		case wasi_snapshot_preview1.ModuleName:
		case hostModule:
			if name != "http_request" && name != "http_response" {
				return isolation.Errorf(isolation.ReasonInvalidModule, "module imports unknown function %s.%s", mod, name)
			}
			m.usesNet = true
		default:
			return isolation.Errorf(isolation.ReasonInvalidModule, "module imports unknown function %s.%s", mod, name)
		}
	}
	if len(cm.ImportedMemories()) > 0 {
		return isolation.Errorf(isolation.ReasonInvalidModule, "module imports a memory; it must define its own")
	}
	exports := cm.ExportedFunctions()
	switch m.kind {
	case KindCommand:
		if f, ok := exports["_start"]; !ok || len(f.ParamTypes()) != 0 || len(f.ResultTypes()) != 0 {
			return isolation.Errorf(isolation.ReasonInvalidModule, "module exports no _start: not a WASI command")
		}
	case KindReactor:
		if f := exports[exportInitialize]; len(f.ParamTypes()) != 0 || len(f.ResultTypes()) != 0 {
			return isolation.Errorf(isolation.ReasonInvalidModule, "the reactor's %s must take and return nothing", exportInitialize)
		}
		if f := exports[exportHandle]; len(f.ParamTypes()) != 0 || len(f.ResultTypes()) != 1 || f.ResultTypes()[0] != api.ValueTypeI32 {
			return isolation.Errorf(isolation.ReasonInvalidModule, "the reactor's %s must take nothing and return an i32 exit status", exportHandle)
		}
	}
	for _, mem := range cm.ExportedMemories() {
		m.minMem = max(m.minMem, uint64(mem.Min())<<16)
	}
	return nil
}

// Run executes one call: a command in a fresh instance, a reactor in a pooled
// instance restored to its post-initialisation state (or a fresh one). Zero limits
// are isolation's defaults. Waiting for the module's compilation is bounded by the
// timeout but not charged to it: the budget starts again when the module is ready,
// and the wait is reported as Usage.Compile, apart from Usage.Wall.
func (s *Sandbox) Run(ctx context.Context, call isolation.Call) (res isolation.Result, err error) {
	start := time.Now()
	defer func() { res.Usage.Wall = time.Since(start) }()
	lim := call.Limits.WithDefaults()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// A timer on the one cancel context costs fewer allocations than a second,
	// deadline context; the cause tells a timeout from a cancel.
	t := time.AfterFunc(lim.Timeout, func() { cancel(causeTimeout) })
	defer t.Stop()

	m, err := s.compile(ctx, call.Skill)
	if err != nil {
		if r := isolation.ReasonOf(err); r == isolation.ReasonTimeout || r == isolation.ReasonCanceled {
			err = ended(context.Cause(ctx), lim.Timeout) // the budget in the words
			if ie, ok := err.(*isolation.Error); ok && ie.Reason == isolation.ReasonTimeout && context.Cause(ctx) == causeTimeout {
				ie.Msg += " while the module was still compiling (the compilation goes on for the next call)"
			}
		}
		res.Usage.Compile = time.Since(start)
		start = time.Now()
		return res, err
	}
	if waited := time.Since(start); waited > time.Millisecond {
		// The compilation is not the skill's: its budget starts now.
		res.Usage.Compile = waited
		if t.Stop() {
			t.Reset(lim.Timeout)
		}
		start = time.Now()
	}
	if m.usesNet && len(call.Grant.Network) == 0 {
		return res, isolation.Errorf(isolation.ReasonNotGranted, "module imports the %s network functions but the call has no network grant", hostModule)
	}
	// One allocation holds the call's memory cap and both capped writers.
	st := &callState{}
	mem, stdout, stderr := &st.mem, &st.stdout, &st.stderr
	mem.limit = uint64(min(lim.Memory, 1<<32)) // at most the wasm32 maximum
	if m.minMem > mem.limit {
		return res, isolation.Errorf(isolation.ReasonMemory, "module declares %s of memory, the budget is %s", size(m.minMem), size(mem.limit))
	}

	*stdout = cappedWriter{limit: lim.Output, cause: causeOutput, cancel: cancel}
	*stderr = cappedWriter{limit: lim.Logs, cause: causeLogs, cancel: cancel}

	var cn *callNet
	if len(call.Grant.Network) > 0 {
		var gopts []egress.Option
		if s.resolver != nil {
			gopts = append(gopts, egress.WithResolver(s.resolver))
		}
		if len(call.Grant.Brokered) > 0 {
			// The host function is the only way out, so every request it sends gets
			// the secrets listed for its origin, and every response comes back redacted.
			gopts = append(gopts, egress.WithSecrets(call.Grant.Brokered))
		}
		cn = &callNet{
			guard:   egress.NewGuard(call.Grant.Network, egress.Limits{MaxRequests: lim.Requests, MaxResponseBytes: lim.Response}, gopts...),
			maxBody: lim.Response,
		}
		ctx = context.WithValue(ctx, callNetKey{}, cn)
	}
	defer func() {
		res.Logs = stderr.buf
		res.Usage.PeakMemory = int64(mem.peak)
		res.Usage.OutputBytes = int64(len(stdout.buf))
		if cn != nil {
			res.Egress = cn.guard.Records()
			res.Usage.Requests, res.Usage.DeniedRequests = cn.guard.Counts()
		}
	}()

	if m.kind == KindReactor {
		runErr := s.runReactor(ctx, m, call, lim, st)
		res.Output = stdout.buf
		if runErr == nil && !stdout.over && !stderr.over && context.Cause(ctx) == nil {
			return res, nil
		}
		return res, classify(ctx, lim.Timeout, runErr, mem, stdout, stderr)
	}

	name := ""
	if call.Skill.Manifest != nil {
		name = call.Skill.Manifest.Name
	}
	// A guest asleep in poll_oneoff (time.Sleep, thread::sleep, nanosleep) is in a
	// host call, where close-on-done cannot reach it: the sleep itself ends with the
	// call. The stdin reader is in memory and never blocks.
	sleepCtx := ctx
	cfg := m.config(s.base, name).
		WithNanosleep(func(ns int64) { sleep(sleepCtx, ns) }).
		WithStdin(bytes.NewReader(call.Input)).
		WithStdout(stdout).
		WithStderr(stderr)
	for k, v := range call.Grant.Env {
		cfg = cfg.WithEnv(k, v)
	}
	if len(call.Grant.Files) > 0 {
		fsc, _, closeFS, err := s.openMounts(ctx, call.Grant.Files, &fileTracker{})
		if err != nil {
			return res, classify(ctx, lim.Timeout, err, mem, stdout, stderr)
		}
		defer closeFS()
		cfg = cfg.WithFSConfig(fsc)
	}

	ctx = experimental.WithMemoryAllocator(ctx, mem)
	runErr := instantiate(ctx, s.runtime, m.compiled, cfg, mem)
	res.Output = stdout.buf
	// A guest may ignore the failed write and exit 0 before it notices the cancel,
	// or carry on after a host call the end of the call cut short (a sleep, a
	// request) and exit 0: the budget was still broken.
	if runErr == nil && !stdout.over && !stderr.over && context.Cause(ctx) == nil {
		return res, nil
	}
	return res, classify(ctx, lim.Timeout, runErr, mem, stdout, stderr)
}

// runReactor serves the call with a reactor instance: a pooled one when the call may
// use the pool (its memory budget is the one granted), else a fresh one. It returns
// the guest's error, with a non-zero exit status as a *sys.ExitError, and leaves the
// memory's peak and budget hit in st.mem: the instance itself may serve another call
// as soon as it is back in the pool. It goes back only after a call that ended
// cleanly and a complete reset.
func (s *Sandbox) runReactor(ctx context.Context, m *module, call isolation.Call, lim isolation.Limits, st *callState) error {
	memLimit := st.mem.limit
	pooled := s.pools != nil && m.plan != nil && m.plan.unpoolable == "" &&
		call.Granted.Memory > 0 && call.Granted.WithDefaults().Memory == lim.Memory
	var key string
	var inst *instance
	if pooled {
		key = poolKey(call, memLimit)
		for inst = s.pools.get(key); inst != nil && !inst.mountsCurrent(call.Grant.Files); inst = s.pools.get(key) {
			s.logger.Debug("reactor instance discarded", "skill", skillName(call), "why", "a granted host path names another directory now")
			inst.close()
		}
	}
	if inst == nil {
		// A new instance: its _initialize runs within this call, without its input.
		var err error
		if inst, err = s.newInstance(ctx, m, call, st, memLimit, pooled); err != nil {
			st.mem.peak, st.mem.hit, st.mem.refusedInitial = inst.mem.peak, inst.mem.hit, inst.mem.refusedInitial
			return err
		}
		if pooled {
			inst.gen = s.pools.poolFor(key, skillName(call))
		}
	}
	inst.bind(ctx, st, call.Input)
	inst.mem.peak = uint64(len(inst.mem.buf))
	// The stack the export's result comes back on is the instance's: no allocation.
	inst.stack[0] = 0
	err := inst.handle.CallWithStack(ctx, inst.stack[:])
	st.mem.peak, st.mem.hit = inst.mem.peak, inst.mem.hit
	inst.unbind()
	if err == nil && inst.stack[0] != 0 {
		err = sys.NewExitError(uint32(inst.stack[0]))
	}
	clean := err == nil && !st.stdout.over && !st.stderr.over && !st.mem.hit && context.Cause(ctx) == nil
	if pooled && clean {
		why := ""
		if !s.reuseWithoutResetUnsafe {
			why = inst.reset()
		}
		if why == "" {
			s.pools.put(key, inst)
			return nil
		}
		s.logger.Debug("reactor instance discarded", "skill", skillName(call), "why", why)
	}
	inst.close()
	return err
}

func skillName(call isolation.Call) string {
	if call.Skill.Manifest != nil {
		return call.Skill.Manifest.Name
	}
	return ""
}

// sleep is the guest's sleep: like time.Sleep, but it returns as soon as the call's
// context ends. The guest then stops at its next function entry or loop.
func sleep(ctx context.Context, ns int64) {
	if ns <= 0 {
		return
	}
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// instantiate runs the module's _start in a fresh instance and closes it.
func instantiate(ctx context.Context, r wazero.Runtime, cm wazero.CompiledModule, cfg wazero.ModuleConfig, mem *callMemory) (err error) {
	defer func() {
		// Backstop: wazero indexes the initial memory the allocator returns, so a
		// refused initial size (a memory the pre-check could not see) panics there.
		if p := recover(); p != nil {
			if mem.refusedInitial {
				err = isolation.Errorf(isolation.ReasonMemory, "module's initial memory is over the budget of %s", size(mem.limit))
				return
			}
			err = isolation.Errorf(isolation.ReasonInternal, "wazero panicked: %v", p)
		}
	}()
	mod, err := r.InstantiateModule(ctx, cm, cfg)
	if mod != nil {
		_ = mod.Close(context.Background()) // the call's context may be done
	}
	return err
}

// classify turns what ended the guest into an *isolation.Error. A call ended by its
// context says why in the caller's words; wazero's "module closed with context
// canceled" is how it ended, not why.
func classify(ctx context.Context, timeout time.Duration, runErr error, mem *callMemory, stdout, stderr *cappedWriter) error {
	var ie *isolation.Error
	if errors.As(runErr, &ie) {
		return ie
	}
	if cause := context.Cause(ctx); cause != nil {
		switch cause {
		case causeOutput:
			return isolation.Errorf(isolation.ReasonOutput, "skill wrote more than its output budget of %s", manifest.Size(stdout.limit).Words())
		case causeLogs:
			return isolation.Errorf(isolation.ReasonLogs, "skill wrote more than its log budget of %s", manifest.Size(stderr.limit).Words())
		}
		return ended(cause, timeout)
	}
	// A writer over budget may not have been noticed before the guest exited.
	if stdout.over {
		return isolation.Errorf(isolation.ReasonOutput, "skill wrote more than its output budget of %s", manifest.Size(stdout.limit).Words())
	}
	if stderr.over {
		return isolation.Errorf(isolation.ReasonLogs, "skill wrote more than its log budget of %s", manifest.Size(stderr.limit).Words())
	}
	if mem.hit {
		return isolation.Errorf(isolation.ReasonMemory, "skill ran out of its memory budget of %s", size(mem.limit))
	}
	var exit *sys.ExitError
	if errors.As(runErr, &exit) {
		// The skill's last words are for its caller, not the audit log.
		return isolation.SkillExited(int64(exit.ExitCode()), stderr.buf)
	}
	return isolation.Errorf(isolation.ReasonSkillFailed, "skill trapped: %s", firstLine(runErr.Error()))
}

// ended says why a call's context ended, in the caller's words: its time budget
// (timeout), the caller's deadline or cancel, or the cause the caller gave (the kill
// switch, a signal).
func ended(cause error, timeout time.Duration) *isolation.Error {
	switch {
	case cause == causeTimeout:
		return isolation.Errorf(isolation.ReasonTimeout, "call exceeded its time budget of %s", manifest.Duration(timeout))
	case cause == context.DeadlineExceeded:
		return isolation.Errorf(isolation.ReasonTimeout, "the caller's deadline passed before the call ended")
	case cause == context.Canceled:
		return isolation.Errorf(isolation.ReasonCanceled, "call canceled by the caller")
	case errors.Is(cause, context.DeadlineExceeded):
		return &isolation.Error{Reason: isolation.ReasonTimeout, Msg: "the caller's deadline passed before the call ended", Err: cause}
	}
	return &isolation.Error{Reason: isolation.ReasonCanceled, Msg: "call canceled", Err: cause}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// mountFS builds the guest's file system from the granted mounts, each on its own
// os.Root, returned in the mounts' order. The returned func closes the roots.
func mountFS(mounts []isolation.Mount, files *fileTracker) (wazero.FSConfig, []*os.Root, func(), error) {
	fsc := wazero.NewFSConfig()
	roots := make([]*os.Root, 0, len(mounts))
	closeAll := func() {
		for _, r := range roots {
			_ = r.Close()
		}
	}
	for _, mt := range mounts {
		f, root, err := newMountFS(mt.Host, mt.Access == manifest.AccessReadWrite, files)
		if err != nil {
			closeAll()
			return nil, nil, nil, &isolation.Error{Reason: isolation.ReasonInternal, Msg: "open granted directory for " + mt.Guest, Err: err}
		}
		roots = append(roots, root)
		fsc = fsc.(sysfs.FSConfig).WithSysFSMount(f, mt.Guest)
	}
	return fsc, roots, closeAll, nil
}

// size writes a byte count in the manifest's units ("16MiB"), as budgets are written.
// Memory sizes here are at most 4GiB (wasm32).
func size(n uint64) string { return manifest.Size(min(n, 1<<40)).Words() }
