package container

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/strslice"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/egress"
	"github.com/skillbox-dev/skillbox/manifest"
)

var errTimeout = errors.New("call timed out")

// createTimeout bounds a container create, and a start, which a call's end does not cut
// short.
const createTimeout = 30 * time.Second

// spec is everything that shapes a container before its input: two calls with the
// same spec can share a warm pool. Everything in it comes from the operator (grant,
// approved limits) or the package, except Memory and CPU for a call whose caller
// lowered them: such a call never uses a pool (see Run).
type spec struct {
	Skill string
	Image string
	User  string
	// Volumes are the image's VOLUME paths, each covered by an empty read-only tmpfs.
	Volumes []string
	Command []string
	Env     []string // NAME=value, sorted
	Mounts  []isolation.Mount
	Network []manifest.Origin
	// Intercept are the https origins of brokered secrets: the container gets a CA
	// for them (see CAPath). The secrets themselves are not in the spec.
	Intercept []manifest.Origin
	Memory    int64
	CPU       float64
}

// key identifies the pool a spec belongs to; env values (secrets) enter only hashed.
func (sp *spec) key() string {
	b, _ := json.Marshal(sp)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// instance is one created, attached and started container waiting for its input.
type instance struct {
	id      string
	skill   string
	hijack  types.HijackedResponse
	guard   *egress.Guard
	bind    func(*egress.Guard) // lets the proxy token through, once the call starts
	release func()              // proxy token (and the CA it carries)
	caFile  string              // host file of the container's CA certificate; "" without
	created time.Time
	net     *skillNet
	// removeNow: remove before the call returns, not in the background.
	removeNow bool
}

// withDefaults is isolation's defaults for zero limits, and Docker's CPU floor.
func withDefaults(l isolation.Limits) isolation.Limits {
	l = l.WithDefaults()
	// Below Docker's floor the CFS quota rounds to none: a tiny share must never become
	// an unlimited one, whatever the layers above let through.
	l.CPU = max(l.CPU, manifest.MinCPU)
	return l
}

func (s *Sandbox) specFor(ctx context.Context, call isolation.Call, lim isolation.Limits) (*spec, error) {
	if call.Skill.Manifest == nil {
		return nil, isolation.Errorf(isolation.ReasonInvalidModule, "call %s has no manifest", call.ID)
	}
	img, info, err := s.ensureImage(ctx, call.Skill)
	if err != nil {
		return nil, err
	}
	sp := &spec{
		Skill: call.Skill.Manifest.Name, Image: img, User: info.user, Volumes: info.volumes,
		Mounts: call.Grant.Files, Network: call.Grant.Network,
		Intercept: call.Grant.InterceptOrigins(), // shape the container (its CA's names), so part of its spec
		Memory:    lim.Memory, CPU: lim.CPU,
	}
	if err := checkBrokered(call.Grant); err != nil {
		return nil, err
	}
	if len(sp.Intercept) > 0 && len(sp.Network) == 0 {
		return nil, isolation.Errorf(isolation.ReasonInternal, "brokered secrets for https origins without a network grant")
	}
	if c := call.Skill.Manifest.Sandbox.Container; c != nil {
		sp.Command = c.Command
	}
	for _, m := range sp.Mounts {
		if !path.IsAbs(m.Guest) || path.Clean(m.Guest) != m.Guest || m.Guest == "/" || m.Guest == "/etc/resolv.conf" ||
			!filepath.IsAbs(m.Host) {
			return nil, isolation.Errorf(isolation.ReasonInternal, "grant mount %s=%s: guest and host paths must be absolute and clean", m.Guest, m.Host)
		}
	}
	if s.rwUser != "" && len(rwGrants(sp)) > 0 {
		// What the skill makes in the directory must be the server's to clean.
		sp.User = s.rwUser
	}
	for k, v := range call.Grant.Env {
		if strings.ContainsAny(k, "=\x00") || strings.Contains(v, "\x00") {
			return nil, isolation.Errorf(isolation.ReasonInternal, "env %q cannot be passed to a container", k)
		}
		sp.Env = append(sp.Env, k+"="+v)
	}
	sort.Strings(sp.Env)
	return sp, nil
}

// Run executes one call in a fresh container: from the warm pool when one matches,
// otherwise created now. The container is removed before Run returns on failure, and
// in the background right after a successful reply.
func (s *Sandbox) Run(ctx context.Context, call isolation.Call) (res isolation.Result, err error) {
	start := time.Now()
	lim := withDefaults(call.Limits)
	ctx, cancel := context.WithTimeoutCause(ctx, lim.Timeout, errTimeout)
	defer cancel()
	sp, err := s.specFor(ctx, call, lim)
	if err != nil {
		res.Usage.Wall = time.Since(start)
		return res, ctxErr(ctx, err)
	}
	rw := rwGrants(sp)
	if len(rw) == 0 {
		if qerr := s.refuseQuarantined(readGrants(sp), nil); qerr != nil {
			res.Usage.Wall = time.Since(start)
			return res, qerr
		}
	} else {
		// One call at a time per directory: nothing else writes there between this
		// call's sweep and its reply, nor where the directory's path leads through;
		// and, until the mounts are made, where the read-only grants' paths do (held
		// now, with the rest, so that prepare never waits holding them).
		release, own, aerr := s.grants.hold(ctx, func() *claim {
			c := &claim{}
			for _, g := range rw {
				g.canon = canonical(g.host)
				c.rw = append(c.rw, g.canon)
				c.trail = append(c.trail, trail(g.host)...)
			}
			for _, dir := range readGrants(sp) {
				c.mounting = append(c.mounting, trail(dir)...)
			}
			return c
		}, nil, true)
		if aerr != nil {
			res.Usage.Wall = time.Since(start)
			return res, ctxErr(ctx, &isolation.Error{Reason: isolation.ReasonInternal, Msg: "wait for the read-write directory", Err: aerr})
		}
		defer release() // after the sweep below
		ctx = context.WithValue(ctx, ownClaimKey{}, own)
		if oerr := s.openGrants(rw, readGrants(sp)); oerr != nil {
			res.Usage.Wall = time.Since(start)
			return res, oerr
		}
		defer func() {
			if serr := s.closeGrants(rw); serr != nil {
				serr.Err = err // the call's own failure, if any, stays in the chain
				err = serr
			}
		}()
	}
	var inst *instance
	if s.operatorShaped(call, lim) {
		inst = s.takeWarm(ctx, sp, call.ID)
	}
	if inst == nil {
		inst, err = s.prepare(ctx, sp, call.ID, lim.Timeout)
		if err != nil {
			res.Usage.Wall = time.Since(start)
			return res, ctxErr(ctx, err)
		}
	}
	if own, _ := ctx.Value(ownClaimKey{}).(*claim); own != nil {
		s.grants.mounted(own)
	}
	if inst.bind != nil {
		// The call's own request budget, which its caller may have lowered, and its
		// brokered secrets, which only the Guard ever holds.
		inst.guard = egress.NewGuard(sp.Network, egress.Limits{MaxRequests: lim.Requests, MaxResponseBytes: lim.Response}, s.guardOptions(call.Grant)...)
		inst.bind(inst.guard)
	}
	res, err = s.exec(ctx, inst, call.Input, lim)
	res.Usage.Wall = time.Since(start)
	if inst.guard != nil {
		res.Egress = inst.guard.Records()
		res.Usage.Requests, res.Usage.DeniedRequests = inst.guard.Counts()
	}
	return res, err
}

// rwGrants returns the read-write grants of sp, one per host directory.
func rwGrants(sp *spec) []*rwGrant {
	var gs []*rwGrant
	for _, m := range sp.Mounts {
		if m.Access == manifest.AccessReadWrite && !slices.ContainsFunc(gs, func(g *rwGrant) bool { return g.host == m.Host }) {
			gs = append(gs, &rwGrant{host: m.Host, canon: canonical(m.Host)})
		}
	}
	return gs
}

// readGrants returns the host directories of sp's read-only grants.
func readGrants(sp *spec) []string {
	var dirs []string
	for _, m := range sp.Mounts {
		if m.Access != manifest.AccessReadWrite {
			dirs = append(dirs, m.Host)
		}
	}
	return dirs
}

// ownClaimKey carries, in a call's context, the claim its read-write grants hold.
type ownClaimKey struct{}

// prepare creates, attaches and starts a container for sp; it then blocks on stdin.
// timeout is the call's time limit (unused for a warm container, callID poolCallID).
func (s *Sandbox) prepare(ctx context.Context, sp *spec, callID string, timeout time.Duration) (inst *instance, err error) {
	if !s.track() {
		return nil, isolation.Errorf(isolation.ReasonInternal, "sandbox closed")
	}
	// With a read-write grant the container is removed before the call returns, so
	// the grant's sweep runs when no process of it is left.
	inst = &instance{skill: sp.Skill, created: time.Now(), removeNow: len(rwGrants(sp)) > 0}
	defer func() {
		if err != nil {
			s.remove(inst)
		}
	}()
	if ro := readGrants(sp); len(ro) > 0 {
		// Until the mounts are made: no running call may change where their paths lead.
		// A warm container does not wait; its pool tries again later.
		own, _ := ctx.Value(ownClaimKey{}).(*claim)
		release, _, err := s.grants.hold(ctx, func() *claim {
			c := &claim{}
			for _, dir := range ro {
				c.trail = append(c.trail, trail(dir)...)
			}
			return c
		}, own, callID != poolCallID)
		if err != nil {
			return inst, &isolation.Error{Reason: isolation.ReasonInternal, Msg: "wait for the call that writes in the directory holding a read-only grant", Err: err}
		}
		defer release()
	}
	cfg := &container.Config{
		Image:        sp.Image,
		User:         sp.User,
		Env:          append([]string(nil), sp.Env...),
		Labels:       s.labels(sp.Skill, callID),
		AttachStdin:  true,
		AttachStdout: true,
		AttachStderr: true,
		OpenStdin:    true,
		StdinOnce:    true,
	}
	if len(sp.Command) > 0 {
		cfg.Entrypoint = strslice.StrSlice(sp.Command)
		cfg.Cmd = strslice.StrSlice{}
	}
	pids := s.pidsLimit()
	hc := &container.HostConfig{
		Runtime:        s.runtime,
		NetworkMode:    "none",
		CapDrop:        strslice.StrSlice{"ALL"},
		SecurityOpt:    []string{"no-new-privileges:true"},
		ReadonlyRootfs: true,
		Tmpfs:          map[string]string{"/tmp": "rw,size=16m,mode=1777,noexec,nosuid,nodev"},
		Privileged:     false,
		DNS:            []string{"127.0.0.1"},
		IpcMode:        "private",
		Resources: container.Resources{
			Memory:     sp.Memory,
			MemorySwap: sp.Memory,
			NanoCPUs:   int64(sp.CPU * 1e9),
			PidsLimit:  &pids,
			Ulimits:    []*container.Ulimit{{Name: "nofile", Soft: s.nofile, Hard: s.nofile}},
		},
		LogConfig: container.LogConfig{Type: "none"},
		Mounts: []mount.Mount{{
			Type: mount.TypeBind, Source: s.resolv, Target: "/etc/resolv.conf", ReadOnly: true,
		}},
	}
	for _, m := range sp.Mounts {
		hc.Mounts = append(hc.Mounts, mount.Mount{
			Type: mount.TypeBind, Source: m.Host, Target: m.Guest,
			ReadOnly:    m.Access != manifest.AccessReadWrite,
			BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate},
		})
	}
	var netCfg *network.NetworkingConfig
	if len(sp.Network) > 0 {
		n, err := s.acquireNetwork(ctx, sp.Skill)
		if err != nil {
			return inst, err
		}
		inst.net = n
		var ca *egress.CallCA
		if len(sp.Intercept) > 0 {
			// Made before the container, so its certificate is in place before any TLS
			// stack in it starts; its key stays with the proxy's registration.
			var caMount mount.Mount
			var caVars []string
			ca, inst.caFile, caMount, caVars, err = s.callCA(sp, s.caLife(callID, timeout))
			if err != nil {
				return inst, err
			}
			hc.Mounts = append(hc.Mounts, caMount)
			cfg.Env = append(withoutEnv(cfg.Env, caEnv), caVars...)
		}
		token, bind, release := s.proxy.Reserve(ca)
		inst.bind, inst.release = bind, release
		u := n.proxyURL(token)
		cfg.Env = append(cfg.Env, "HTTP_PROXY="+u, "HTTPS_PROXY="+u, "http_proxy="+u, "https_proxy="+u)
		hc.NetworkMode = container.NetworkMode(n.name)
		netCfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{n.name: {}}}
	}
	// The engine backs an image's VOLUME with a writable volume on its own disk, which
	// the read-only root does not cover: an empty read-only tmpfs takes its place,
	// unless something of ours is mounted there already.
	for _, v := range sp.Volumes {
		if _, ok := hc.Tmpfs[v]; ok || slices.ContainsFunc(hc.Mounts, func(m mount.Mount) bool { return path.Clean(m.Target) == v }) {
			continue
		}
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeTmpfs, Target: v, ReadOnly: true})
	}
	// Not cut short by the call's end: the engine may create a container for a request
	// whose caller has gone, and then nothing would know its id to remove it. The call
	// ends as soon as the id is known (attach fails on the ended context).
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	created, err := s.cli.ContainerCreate(cctx, cfg, hc, netCfg, nil, "skillbox-"+sp.Skill+"-"+randomID())
	ccancel()
	if err != nil {
		return inst, classify(err, "create container")
	}
	inst.id = created.ID
	// Attach before start so nothing the skill writes early is lost.
	inst.hijack, err = s.cli.ContainerAttach(ctx, inst.id, container.AttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return inst, classify(err, "attach container")
	}
	// Nor a start: the daemon goes on making the mounts after a client that gave up, and
	// the read-only grants' claim (held by the caller until this returns) must cover them.
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	err = s.cli.ContainerStart(sctx, inst.id, container.StartOptions{})
	scancel()
	if err != nil {
		return inst, classify(err, "start container")
	}
	if err := ctx.Err(); err != nil {
		return inst, err // the caller has gone: the container is removed as after any failure
	}
	return inst, nil
}

func classify(err error, what string) error {
	if errdefs.IsInvalidParameter(err) || errdefs.IsNotFound(err) {
		return &isolation.Error{Reason: isolation.ReasonInvalidModule, Msg: what, Err: err}
	}
	return &isolation.Error{Reason: isolation.ReasonInternal, Msg: what, Err: err}
}

// capWriter collects up to max bytes and fails past it.
type capWriter struct {
	buf    []byte
	max    int64
	reason isolation.Reason
}

type overflow struct{ reason isolation.Reason }

func (o overflow) Error() string { return "over the " + string(o.reason) }

func (w *capWriter) Write(p []byte) (int, error) {
	if int64(len(w.buf)+len(p)) > w.max {
		w.buf = append(w.buf, p[:w.max-int64(len(w.buf))]...)
		return 0, overflow{w.reason}
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// exec sends the input to a started container, collects stdout and stderr under
// their caps and waits for the exit. Every instance passed in is removed.
func (s *Sandbox) exec(ctx context.Context, inst *instance, input []byte, lim isolation.Limits) (res isolation.Result, err error) {
	stdout := &capWriter{max: lim.Output, reason: isolation.ReasonOutput}
	stderr := &capWriter{max: lim.Logs, reason: isolation.ReasonLogs}
	clean := true // the container ended normally: remove it in the background
	copied := make(chan error, 1)
	copyDone := false
	defer func() {
		if clean && !inst.removeNow {
			go s.remove(inst)
		} else {
			s.remove(inst) // kills it and closes the stream, which ends the copy
		}
		if !copyDone {
			<-copied
		}
		res.Output, res.Logs = stdout.buf, stderr.buf
		res.Usage.OutputBytes = int64(len(stdout.buf))
	}()
	// Wait on a context of our own: the exit must be seen even as ctx ends.
	wctx, wcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer wcancel()
	waitC, waitErr := s.cli.ContainerWait(wctx, inst.id, container.WaitConditionNotRunning)

	go func() {
		_, err := stdcopy.StdCopy(stdout, stderr, inst.hijack.Reader)
		copied <- err
	}()
	// The write is not waited for: a skill may exit without reading its input, and
	// a large input must not block past the call's deadline.
	go func() {
		if _, err := inst.hijack.Conn.Write(input); err == nil {
			_ = inst.hijack.CloseWrite()
		}
	}()
	select {
	case err := <-copied:
		copyDone = true
		var ov overflow
		if errors.As(err, &ov) {
			clean = false
			what := "stdout"
			max := lim.Output
			if ov.reason == isolation.ReasonLogs {
				what, max = "stderr", lim.Logs
			}
			return res, isolation.Errorf(ov.reason, "%s exceeded %s; container killed", what, manifest.Size(max).Words())
		}
		if err != nil && !errors.Is(err, io.EOF) {
			clean = false
			return res, &isolation.Error{Reason: isolation.ReasonInternal, Msg: "read output", Err: err}
		}
	case <-ctx.Done():
		clean = false
		return res, ctxErr(ctx, nil)
	}
	var code int64
	select {
	case w := <-waitC:
		code = w.StatusCode
		if w.Error != nil {
			clean = false
			return res, isolation.Errorf(isolation.ReasonInternal, "wait container: %s", w.Error.Message)
		}
	case err := <-waitErr:
		clean = false
		return res, &isolation.Error{Reason: isolation.ReasonInternal, Msg: "wait container", Err: err}
	case <-ctx.Done():
		clean = false
		return res, ctxErr(ctx, nil)
	}
	if code == 0 {
		return res, nil
	}
	clean = false
	if s.oomKilled(context.WithoutCancel(ctx), inst.id, code) {
		return res, isolation.Errorf(isolation.ReasonMemory, "memory limit of %s reached; container killed", manifest.Size(lim.Memory).Words())
	}
	// The end of stderr is the skill's own words, for its caller only: skills echo
	// their input there.
	return res, isolation.SkillExited(code, stderr.buf)
}

// oomKilled says whether the kernel's OOM killer ended the container. The skill is
// the container's pid 1, which nothing inside its pid namespace can SIGKILL, and the
// sandbox kills only calls whose context ended (handled before this): a SIGKILL exit
// (137) is the OOM killer even when Docker has not marked it, which on cgroup v1 it
// sometimes never does. (A skill that calls exit(137) itself is reported as MEMORY.)
// Any other exit is asked about, for an OOM kill of one of the skill's children.
func (s *Sandbox) oomKilled(ctx context.Context, id string, code int64) bool {
	if code == 137 {
		return true
	}
	ins, err := s.cli.ContainerInspect(ctx, id)
	return err == nil && ins.State != nil && ins.State.OOMKilled
}

// ctxErr turns the end of the call's context into its reason.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		// A dial or read bounded by the context's deadline can fail with "i/o timeout"
		// an instant before the context itself reports it: past the deadline, the
		// failure is the deadline's.
		dl, ok := ctx.Deadline()
		if !ok || time.Now().Before(dl) {
			return err
		}
		<-ctx.Done()
	}
	if errors.Is(context.Cause(ctx), errTimeout) {
		return &isolation.Error{Reason: isolation.ReasonTimeout, Msg: "call exceeded its time limit; container killed", Err: err}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &isolation.Error{Reason: isolation.ReasonTimeout, Msg: "caller's deadline passed; container killed", Err: err}
	}
	return &isolation.Error{Reason: isolation.ReasonCanceled, Msg: "call canceled; container killed", Err: err}
}

// track counts one more instance (or filler) that Close must wait for; it refuses
// once the sandbox is closed. Every tracked instance is removed exactly once.
func (s *Sandbox) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.removals.Add(1)
	return true
}

// remove kills and removes an instance's container, releasing its proxy token and
// network. It retries, as the engine can be briefly busy; what still fails is left
// to Reap.
func (s *Sandbox) remove(inst *instance) {
	defer s.removals.Done()
	if inst.hijack.Conn != nil {
		inst.hijack.Close()
	}
	if inst.id != "" {
		for attempt := 0; attempt < 5; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := s.cli.ContainerRemove(ctx, inst.id, container.RemoveOptions{Force: true, RemoveVolumes: true})
			cancel()
			if err == nil || isGone(err) {
				break
			}
			time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
		}
	}
	if inst.release != nil {
		inst.release()
	}
	if inst.caFile != "" {
		_ = os.Remove(inst.caFile)
	}
	if inst.net != nil {
		s.releaseNetwork(inst.net)
	}
}

func isGone(err error) bool {
	return errdefs.IsNotFound(err) || strings.Contains(err.Error(), "is already in progress")
}
