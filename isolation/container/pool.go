package container

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// pool holds up to size started containers of one spec, each used once.
type pool struct {
	s     *Sandbox
	sp    *spec
	skill string
	ready chan *instance

	mu      sync.Mutex
	used    time.Time // when a call last took (or tried to take) from it
	filling bool
	closed  bool
	lastErr error          // the last refill failure, for diagnosis
	stop    chan struct{}  // closed by drain: wakes a refill waiting to try again
	fillers sync.WaitGroup // drain waits for a fill in progress
}

// poolCallID is the call label of a warm container, made before its call.
const poolCallID = "pool"

// MaxWarmAge is how long a warm container may wait for its call (the default of
// WithMaxWarmAge). A warm container's program is already running, before any call and
// outside any call's time budget (its memory, CPU and pids limits hold; its network is
// shut until the call starts): an old one is removed and replaced, whether or not a
// call comes.
const MaxWarmAge = 2 * time.Minute

// PoolIdle is how long a pool no call has taken from is kept (the default of
// WithPoolIdle); then its containers are removed and the pool forgotten.
const PoolIdle = 5 * time.Minute

// operatorShaped says whether a call may be served warm: its container would be the
// one the operator's grant shapes. A caller who lowered memory or CPU gets a fresh
// container at those lower limits instead, so callers cannot create pools. (Updating
// a warm container's limits instead would come after its program already ran under
// the higher ones.)
func (s *Sandbox) operatorShaped(call isolation.Call, lim isolation.Limits) bool {
	if s.poolSize <= 0 || call.Granted == (isolation.Limits{}) {
		return false
	}
	g := withDefaults(call.Granted)
	return lim.Memory == g.Memory && lim.CPU == g.CPU
}

// takeWarm returns a ready container for sp, renamed after the call it now serves,
// or nil. A call with no pool for its spec starts one (filled in the background) so
// the next such call is warm.
func (s *Sandbox) takeWarm(ctx context.Context, sp *spec, callID string) *instance {
	if !poolable(sp) {
		return nil
	}
	p := s.poolFor(sp)
	if p == nil {
		return nil
	}
	p.mu.Lock()
	p.used = time.Now()
	p.mu.Unlock()
	defer p.refill()
	for {
		select {
		case inst := <-p.ready:
			if time.Since(inst.created) > s.maxWarmAge {
				s.remove(inst)
				continue
			}
			// Labels cannot change; the name can: it tells which call a pool
			// container served (docker ps, docker events), also after a crash.
			if err := s.cli.ContainerRename(ctx, inst.id, containerName(sp.Skill, callID)); err != nil {
				s.remove(inst)
				return nil
			}
			return inst
		default:
			return nil
		}
	}
}

// containerName is the name of the container serving a call.
func containerName(skill, callID string) string {
	id := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, callID)
	return "skillbox-" + skill + "-call-" + limitString(id, 64)
}

// poolable says whether calls of this spec may be served warm. Not with a read-write
// mount: a warm container runs before its call, and must not be able to change the
// operator's files while no call exists.
func poolable(sp *spec) bool {
	for _, m := range sp.Mounts {
		if m.Access == manifest.AccessReadWrite {
			return false
		}
	}
	return true
}

func (s *Sandbox) poolFor(sp *spec) *pool {
	k := sp.key()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	p := s.pools[k]
	if p == nil {
		if len(s.pools) >= s.maxPools {
			return nil
		}
		p = &pool{s: s, sp: sp, skill: sp.Skill, ready: make(chan *instance, s.poolSize), stop: make(chan struct{}), used: time.Now()}
		s.pools[k] = p
	}
	return p
}

// Prewarm fills the pool for this call's skill, grant and limits and waits until it
// is full, so the next matching calls skip container creation.
func (s *Sandbox) Prewarm(ctx context.Context, call isolation.Call) error {
	if s.poolSize <= 0 {
		return errors.New("prewarm: the warm pool is disabled (WithWarmPool)")
	}
	sp, err := s.specFor(ctx, call, withDefaults(call.Limits))
	if err != nil {
		return err
	}
	if !poolable(sp) {
		return errors.New("prewarm: calls with a read-write file grant are never served warm")
	}
	p := s.poolFor(sp)
	if p == nil {
		return errors.New("prewarm: no pool available (sandbox closed or too many pools)")
	}
	for len(p.ready) < cap(p.ready) {
		inst, err := s.prepare(ctx, sp, poolCallID, 0)
		if err != nil {
			return err
		}
		if !p.put(inst) {
			s.remove(inst)
			return nil
		}
	}
	return nil
}

// put adds a prepared instance unless the pool is closed or full.
func (p *pool) put(inst *instance) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	select {
	case p.ready <- inst:
		return true
	default:
		return false
	}
}

// refill tops the pool up in the background; one filler per pool at a time.
func (p *pool) refill() {
	p.mu.Lock()
	if p.filling || p.closed {
		p.mu.Unlock()
		return
	}
	if !p.s.track() {
		p.mu.Unlock()
		return
	}
	p.filling = true
	p.fillers.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.fillers.Done()
		defer p.s.removals.Done()
		backoff := 200 * time.Millisecond
		for {
			for len(p.ready) < cap(p.ready) && !p.isClosed() {
				inst, err := p.s.prepare(p.s.bg, p.sp, poolCallID, 0)
				if err != nil {
					// A busy engine can fail a create: back off (at most maxRefillBackoff
					// between tries) and try again rather than leave the pool short.
					p.mu.Lock()
					p.lastErr = err
					p.mu.Unlock()
					select {
					case <-time.After(backoff):
					case <-p.stop:
					case <-p.s.bg.Done():
					}
					backoff = min(2*backoff, maxRefillBackoff)
					continue
				}
				backoff = 200 * time.Millisecond
				if !p.put(inst) {
					p.s.remove(inst)
					break
				}
			}
			// A call may have taken a container after the loop saw the pool full and
			// before filling is cleared (its refill call then returned at once): look
			// again under the lock before stopping.
			p.mu.Lock()
			if !p.closed && p.s.bg.Err() == nil && len(p.ready) < cap(p.ready) {
				p.mu.Unlock()
				continue
			}
			p.filling = false
			p.mu.Unlock()
			return
		}
	}()
}

// maxRefillBackoff bounds the wait between failed refills: a pool keeps trying until
// it is drained or the sandbox closes.
const maxRefillBackoff = 5 * time.Second

func (p *pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed || p.s.bg.Err() != nil
}

// drain closes the pool and removes its containers, including one being added.
func (p *pool) drain(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		close(p.stop)
	}
	p.closed = true
	p.mu.Unlock()
	p.fillers.Wait()
	for {
		select {
		case inst := <-p.ready:
			p.s.remove(inst)
		default:
			return ctx.Err()
		}
	}
}

// janitor enforces the pools' time limits until the sandbox closes: every tick it
// forgets idle pools (removing their containers) and replaces warm containers past
// their age. It does not depend on calls coming.
func (s *Sandbox) janitor(every time.Duration) {
	defer close(s.janitorDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.bg.Done():
			return
		case <-t.C:
			s.expire()
		}
	}
}

func (s *Sandbox) expire() {
	var idle, live []*pool
	s.mu.Lock()
	for k, p := range s.pools {
		p.mu.Lock()
		unused := time.Since(p.used)
		p.mu.Unlock()
		if unused > s.poolIdle {
			delete(s.pools, k)
			idle = append(idle, p)
		} else {
			live = append(live, p)
		}
	}
	s.mu.Unlock()
	for _, p := range idle {
		_ = p.drain(s.bg)
	}
	for _, p := range live {
		p.dropOld()
	}
}

// dropOld removes the pool's containers older than the maximum age and refills it.
func (p *pool) dropOld() {
	var young []*instance
	old := 0
	for n := len(p.ready); n > 0; n-- {
		select {
		case inst := <-p.ready:
			if time.Since(inst.created) > p.s.maxWarmAge {
				p.s.remove(inst)
				old++
			} else {
				young = append(young, inst)
			}
		default:
		}
	}
	for _, inst := range young {
		if !p.put(inst) {
			p.s.remove(inst)
		}
	}
	if old > 0 {
		p.refill()
	}
}

// Warm reports the started containers waiting in all pools (isolation.Warmer).
func (s *Sandbox) Warm() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.pools {
		n += len(p.ready)
	}
	return n
}
