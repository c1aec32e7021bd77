// Package server is the gRPC face of the engine (package skillbox.v1): Skills for agent
// frameworks, Admin for operators, plus the standard health and reflection services.
// It is also the one place where a call's machine-readable reason becomes a gRPC code.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/reasons"
	"github.com/skillbox-dev/skillbox/runtime/client"
	"github.com/skillbox-dev/skillbox/runtime/engine"
)

// CallerFunc returns the authenticated identity of the peer of ctx.
type CallerFunc func(ctx context.Context) string

// Server implements skillbox.v1.Skills and skillbox.v1.Admin over an engine.
type Server struct {
	pb.UnimplementedSkillsServer
	pb.UnimplementedAdminServer
	eng    *engine.Engine
	caller CallerFunc
	health *health.Server
	admins map[string]bool

	refusals *refusalLog

	done     chan struct{} // closed by Shutdown: Watch streams end
	shutdown sync.Once

	watchMu  sync.Mutex
	watching map[string]int // open Watch streams per caller
}

// MaxWatchStreams bounds the Skills.Watch streams one caller may hold open at once:
// each holds a goroutine and an engine watcher, and one connection may carry any
// number of streams. A bridge needs one.
const MaxWatchStreams = 16

// Option configures a Server.
type Option func(*Server)

// WithAdmins sets the caller identities allowed to use the Admin service (the kill
// switch, reload, the list of calls). By default only LocalAdmin is.
func WithAdmins(ids ...string) Option {
	return func(s *Server) {
		s.admins = map[string]bool{}
		for _, id := range ids {
			s.admins[id] = true
		}
	}
}

// LocalAdmin is the default admin: a caller on the unix socket with the server's own
// uid (the operator who started it).
func LocalAdmin() string { return "unix:uid=" + strconv.Itoa(os.Getuid()) }

// New returns a Server; caller names the peer of each request (for approvals' callers
// lists, Admin authorization and the audit log).
func New(eng *engine.Engine, caller CallerFunc, opts ...Option) *Server {
	s := &Server{eng: eng, caller: caller, health: health.NewServer(), admins: map[string]bool{LocalAdmin(): true},
		refusals: newRefusalLog(eng, refusalWindow), done: make(chan struct{}),
		watching: map[string]int{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Reasons the server refuses a call for itself, before the engine, each with its
// category in categoryOf.
const (
	// ReasonNotAdmin is the ErrorDetail reason of an Admin call by a caller who is not
	// an admin.
	ReasonNotAdmin reasons.Reason = "NOT_ADMIN"
	// ReasonUnauthenticated is the reason of the audit record of a call refused because
	// its peer could not be authenticated. The transport refuses such a call with the
	// status alone: an unknown peer gets no ErrorDetail.
	ReasonUnauthenticated reasons.Reason = "UNAUTHENTICATED"
)

// categoryOf is the category of any reason a reply of this server can carry: the
// server's own here, the engine's and the sandbox's from engine.CategoryOf.
func categoryOf(r reasons.Reason) reasons.Category {
	switch r {
	case ReasonNotAdmin:
		return reasons.PermissionDenied
	case ReasonUnauthenticated:
		return reasons.Unauthenticated
	}
	return engine.CategoryOf(r)
}

// admin refuses Admin calls from callers not listed as admins: any agent that may
// invoke skills must not be able to lift the operator's kill switch. Refusals are
// audited (coalesced per caller: see refusalLog).
func (s *Server) admin(ctx context.Context) (string, error) {
	who := s.who(ctx)
	method, _ := grpc.Method(ctx)
	if err := s.CheckAdmin(ctx, who, method); err != nil {
		return who, detailed(ReasonNotAdmin, err.Error(), "", "")
	}
	return who, nil
}

// CheckAdmin is the one rule of who may act as an operator, for every door: who must
// be one of the server's admins (WithAdmins, else LocalAdmin). A refusal is audited
// like an Admin call's (coalesced per caller), what naming the action ("console
// disable"), and returned as one line in the operator's words.
func (s *Server) CheckAdmin(ctx context.Context, who, what string) error {
	if s.admins[who] {
		return nil
	}
	msg := who + " may not use the Admin service"
	s.refusals.note(ctx, who, ReasonNotAdmin, what, msg)
	return errors.New(msg)
}

// Unauthenticated audits a call the transport refused before it reached this server
// (no or a wrong token, no client certificate): peer is what is known of it
// ("unix:uid=N", "tcp:IP"), method the RPC, err the refusal. Coalesced per peer (see
// refusalLog), so a peer cannot flood the log. Pass it as the transport's Refused hook.
func (s *Server) Unauthenticated(ctx context.Context, peer, method string, err error) {
	s.refusals.note(ctx, peer, ReasonUnauthenticated, method, status.Convert(err).Message())
}

// StreamWorkers is how many goroutines of a grpc.Server made with GRPCOptions take
// calls in turn. A call on a worker usually finds its stack already grown to what the
// engine's path needs: schema validation, the sandbox, the audit log (a collection
// halves an idle worker's stack when it uses little of it). A goroutine made per call
// starts small and grows, copying its stack several times a call (≈ 10 % of a pooled
// call's CPU at 32 callers). A call that finds every worker busy (a long Watch holds
// one) gets a goroutine of its own, as without workers: none waits for a worker. Idle
// workers take calls in turn, so more workers than concurrent calls only spread the
// calls over more stacks: 32 measured best at 32 callers, 64 and 16 about halfway
// between it and none (docs/rationale.md).
const StreamWorkers = 32

// MaxConnectionIdle is how long a gRPC connection may carry no call before the server
// closes it (GOAWAY; grpc-go's default is never). Idle means no RPC open on it: a Watch
// or WatchPending stream, or a call waiting for an approver, keeps a connection in use
// however long it lasts. It bounds how long a peer that connected and makes no call (or
// only refused ones) holds a descriptor. The close is graceful and a grpc-go client
// dials again on its next call, so a client that pauses pays one handshake; 5 minutes is
// longer than the pauses of a person at the CLI or of an agent between steps.
const MaxConnectionIdle = 5 * time.Minute

// MaxConcurrentStreams bounds the RPCs open at once on one gRPC connection (grpc-go's
// server default is no bound). Each is a goroutine, and a stream may wait for its
// request message for ever before any interceptor authenticates it, so without a bound
// one connection could hold goroutines without end. A client multiplexes all its calls
// on one connection: 16 Watch streams (MaxWatchStreams), and calls running or waiting
// for an approver, at most engine.DefaultMaxConcurrent (64) each per skill; 1024 is 16
// skills at that limit on one connection. Past it a client's call is not refused: the
// bound is advertised in HTTP/2 SETTINGS and a grpc-go client waits for a stream to end
// before opening another. StreamWorkers is per server, this bound per connection: a
// stream admitted takes a worker or a goroutine of its own as before.
const MaxConcurrentStreams = 1024

// HandshakeTimeout bounds how long a connection may take to complete its handshake (TLS
// and the HTTP/2 preface) before the server closes it, as the HTTP doors' 10 s do
// (grpc-go's default is 120 s): until then it holds one of the listener's bounded
// places (transport.MaxGRPCConns) without having sent anything.
const HandshakeTimeout = 10 * time.Second

// GRPCOptions are the settings of the grpc.Server that serves this package's services,
// besides the listener's (transport.Listen): pass both to grpc.NewServer. Ping
// enforcement is grpc-go's default, which bounds a ping flood: a client that pings
// more often than every 5 minutes while a call is open (every 2 hours with none), when
// the server has sent nothing in between, is sent GOAWAY (too_many_pings) at the third
// such ping and disconnected.
func GRPCOptions() []grpc.ServerOption {
	return grpcOptions(MaxConnectionIdle, MaxConcurrentStreams)
}

func grpcOptions(idle time.Duration, streams uint32) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.NumStreamWorkers(StreamWorkers),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: idle}),
		grpc.MaxConcurrentStreams(streams),
		grpc.ConnectionTimeout(HandshakeTimeout),
	}
}

// Register adds Skills, Admin, health and reflection to g.
func (s *Server) Register(g *grpc.Server) {
	pb.RegisterSkillsServer(g, s)
	pb.RegisterAdminServer(g, s)
	healthpb.RegisterHealthServer(g, s.health)
	reflection.Register(g)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus("skillbox.v1.Skills", healthpb.HealthCheckResponse_SERVING)
}

// Shutdown marks the server as not serving, so health checks fail while calls drain,
// ends the Watch streams, and writes the refusals it was still counting.
func (s *Server) Shutdown() {
	s.shutdown.Do(func() { close(s.done) })
	s.health.Shutdown()
	s.refusals.flush()
}

func (s *Server) who(ctx context.Context) string {
	if s.caller == nil {
		return "unknown"
	}
	return s.caller(ctx)
}

// List implements Skills.List.
// With callable set it lists what the caller may call now (engine.Callable, the MCP
// door's rule); otherwise every skill, less those whose approval's callers leave out a
// caller who is not an admin (admins see everything they manage).
func (s *Server) List(ctx context.Context, req *pb.ListSkillsRequest) (*pb.ListSkillsResponse, error) {
	who := s.who(ctx)
	var infos []engine.SkillInfo
	var err error
	if req.GetCallable() {
		infos, err = s.eng.Callable(ctx, who)
	} else {
		infos, err = s.eng.List(ctx)
	}
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.ListSkillsResponse{}
	for _, in := range infos {
		if !s.admins[who] && in.HiddenFrom(who) {
			continue
		}
		out.Skills = append(out.Skills, skillInfo(in))
	}
	return out, nil
}

// Watch implements Skills.Watch: one message at once, one after each change of the
// engine's state, until the caller goes or the server shuts down.
func (s *Server) Watch(_ *pb.WatchSkillsRequest, stream pb.Skills_WatchServer) error {
	who := s.who(stream.Context())
	s.watchMu.Lock()
	if s.watching[who] >= MaxWatchStreams {
		s.watchMu.Unlock()
		return detailed(engine.ReasonBusy, fmt.Sprintf("%s has %d Watch streams open, the most one caller may hold; close one first", who, MaxWatchStreams), "", "")
	}
	s.watching[who]++
	s.watchMu.Unlock()
	defer func() {
		s.watchMu.Lock()
		if s.watching[who]--; s.watching[who] == 0 {
			delete(s.watching, who)
		}
		s.watchMu.Unlock()
	}()
	changed, stop := s.eng.Watch()
	defer stop()
	for {
		if err := stream.Send(&pb.SkillsChanged{}); err != nil {
			return err
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-s.done:
			return nil
		case <-changed:
		}
	}
}

// Get implements Skills.Get.
func (s *Server) Get(ctx context.Context, req *pb.GetSkillRequest) (*pb.SkillInfo, error) {
	in, err := s.eng.Get(ctx, req.GetName(), req.GetPin())
	if err != nil {
		return nil, toStatus(err)
	}
	return skillInfo(*in), nil
}

// Invoke implements Skills.Invoke.
func (s *Server) Invoke(ctx context.Context, req *pb.InvokeRequest) (*pb.InvokeResponse, error) {
	// The engine checks the name and the limits, and records a refusal: the door only
	// converts.
	res, err := s.eng.Invoke(ctx, engine.Request{
		Skill:  req.GetName(),
		Pin:    req.GetPin(),
		Input:  []byte(req.GetInputJson()),
		Caller: s.who(ctx),
		Limits: lowerLimits(req.GetLimits()),
		Door:   "grpc",
		// Headers go out at once: a caller reading them (grpc.ClientStream.Header)
		// learns that the call waits for a person before the answer comes.
		Waiting: func(p engine.PendingRequest) {
			_ = grpc.SendHeader(ctx, metadata.Pairs(
				client.MetadataPendingCall, p.ID,
				client.MetadataPendingExpires, p.Expires.UTC().Format(time.RFC3339)))
		},
	})
	if err != nil {
		return nil, callStatus(err, res)
	}
	out := &pb.InvokeResponse{
		OutputJson: string(res.Output), // UTF-8: the engine checked it is JSON
		// A protobuf string must be UTF-8; a skill's stderr need not be.
		Logs: text(string(res.Logs)),
		// LogsTruncated stays false: a sandbox fails a call whose stderr passes its
		// budget (LOG_LIMIT), so the logs of a reply are never cut. Logs that fill the
		// budget exactly are whole.
		Usage:          usage(res.Usage),
		AuditId:        res.AuditID,
		CallId:         res.CallID,
		Version:        res.Version,
		ManifestDigest: res.ManifestDigest,
		Limits:         limits(res.Limits),
	}
	for _, r := range res.Egress {
		out.Egress = append(out.Egress, &pb.EgressRecord{
			Time: r.Time.UTC().Format(time.RFC3339Nano), Method: text(r.Method), Url: text(r.URL),
			Allowed: r.Allowed, Reason: text(r.Reason), Status: int32(r.Status), Bytes: r.Bytes,
		})
	}
	return out, nil
}

// Disable implements Admin.Disable.
func (s *Server) Disable(ctx context.Context, req *pb.DisableRequest) (*pb.DisableResponse, error) {
	who, err := s.admin(ctx)
	if err != nil {
		return nil, err
	}
	prev, was := s.eng.DisabledReason(req.GetName())
	n, err := s.eng.Disable(engine.WithDoor(ctx, "grpc"), req.GetName(), who, req.GetReason())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.DisableResponse{CancelledCalls: int32(n), WasDisabled: was, PreviousReason: prev}, nil
}

// Enable implements Admin.Enable.
func (s *Server) Enable(ctx context.Context, req *pb.EnableRequest) (*pb.EnableResponse, error) {
	who, err := s.admin(ctx)
	if err != nil {
		return nil, err
	}
	_, was := s.eng.DisabledReason(req.GetName())
	if err := s.eng.Enable(engine.WithDoor(ctx, "grpc"), req.GetName(), who); err != nil {
		return nil, toStatus(err)
	}
	return &pb.EnableResponse{WasDisabled: was}, nil
}

// Reload implements Admin.Reload.
func (s *Server) Reload(ctx context.Context, _ *pb.ReloadRequest) (*pb.ReloadResponse, error) {
	who, err := s.admin(ctx)
	if err != nil {
		return nil, err
	}
	n, err := s.eng.Reload(ctx, who)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.ReloadResponse{Skills: int32(n)}, nil
}

// Calls implements Admin.Calls.
func (s *Server) Calls(ctx context.Context, _ *pb.CallsRequest) (*pb.CallsResponse, error) {
	if _, err := s.admin(ctx); err != nil {
		return nil, err
	}
	out := &pb.CallsResponse{}
	for _, c := range s.eng.Calls() {
		out.Calls = append(out.Calls, &pb.Call{CallId: c.ID, Skill: c.Skill, Version: c.Version,
			Caller: c.Caller, Started: c.Started.UTC().Format(time.RFC3339Nano)})
	}
	return out, nil
}

// WatchPending implements Admin.WatchPending: the pending calls now, then again after
// each change, until the client goes or the server stops approvals.
func (s *Server) WatchPending(_ *pb.WatchPendingRequest, stream pb.Admin_WatchPendingServer) error {
	ctx := stream.Context()
	who, err := s.admin(ctx)
	if err != nil {
		return err
	}
	changed, stop := s.eng.WatchPending()
	defer stop()
	for {
		if err := stream.Send(pendingSnapshot(s.eng.Pending(), time.Now(), who)); err != nil {
			return err
		}
		select {
		case _, ok := <-changed:
			if !ok {
				return detailed(engine.ReasonUnavailable, "the server is shutting down", "", "")
			}
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// Decide implements Admin.Decide; the engine judges the approver.
func (s *Server) Decide(ctx context.Context, req *pb.DecideRequest) (*pb.DecideResponse, error) {
	who, err := s.admin(ctx)
	if err != nil {
		return nil, err
	}
	var allow bool
	switch req.GetDecision() {
	case pb.Decision_DECISION_ALLOW:
		allow = true
	case pb.Decision_DECISION_DENY:
	default:
		return nil, detailed(engine.ReasonInvalidInput, "decision: want DECISION_ALLOW or DECISION_DENY", "decision", "")
	}
	if err := s.eng.Decide(engine.WithDoor(ctx, "grpc"), engine.Decision{ID: req.GetId(), By: who, Allow: allow, Reason: req.GetReason(), Digest: req.GetDigest()}); err != nil {
		return nil, toStatus(err)
	}
	return &pb.DecideResponse{}, nil
}

func pendingSnapshot(reqs []engine.PendingRequest, now time.Time, watcher string) *pb.PendingSnapshot {
	out := &pb.PendingSnapshot{Requests: make([]*pb.PendingRequest, 0, len(reqs))}
	for _, p := range reqs {
		mayDecide := watcher != p.Caller && slices.Contains(p.Approvers, watcher)
		out.Requests = append(out.Requests, &pb.PendingRequest{
			Id: p.ID, Skill: p.Skill, Version: p.Version, ManifestDigest: p.ManifestDigest, CodeDigest: p.CodeDigest,
			Signer: p.Signer, Caller: p.Caller, Door: p.Door, InputJson: string(p.Input), InputSha256: p.InputSHA256,
			Limits: limits(p.Limits), Approvers: p.Approvers, Reason: p.Reason, Review: p.Review,
			Requested: p.Requested.UTC().Format(time.RFC3339Nano), Expires: p.Expires.UTC().Format(time.RFC3339Nano),
			TimeLeftMs: p.TimeLeft(now).Milliseconds(), Digest: p.Digest, MayDecide: &mayDecide,
		})
	}
	return out
}

// codeOf is the one mapping from a category of failure to a gRPC code (every reason
// has a category: see categoryOf). Another door maps the same categories to its own
// statuses.
func codeOf(c reasons.Category) codes.Code {
	switch c {
	case reasons.InvalidArgument:
		return codes.InvalidArgument
	case reasons.Unauthenticated:
		return codes.Unauthenticated
	case reasons.PermissionDenied:
		return codes.PermissionDenied
	case reasons.NotFound:
		return codes.NotFound
	case reasons.ResourceExhausted:
		return codes.ResourceExhausted
	case reasons.DeadlineExceeded:
		return codes.DeadlineExceeded
	case reasons.FailedPrecondition:
		return codes.FailedPrecondition
	case reasons.Aborted:
		return codes.Aborted
	case reasons.Canceled:
		return codes.Canceled
	case reasons.Unavailable:
		return codes.Unavailable
	}
	return codes.Internal
}

// toStatus turns an engine or sandbox error into a status with an ErrorDetail.
func toStatus(err error) error { return callStatus(err, nil) }

// callStatus is toStatus for a call that may have run: res, when not nil, is what it
// left, and its id, usage and the end of its logs go into the detail too.
func callStatus(err error, res *engine.Result) error {
	if err == nil {
		return nil
	}
	reason := engine.ReasonOf(err)
	// The reason decides first: a sandbox stopped by its own budget or by the kill
	// switch wraps context.Canceled too, and must not read as the caller's cancel.
	if reason == isolation.ReasonInternal && errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, engine.OneLine(err.Error()))
	}
	// The caller's reply carries the skill's own last words; the audit log does not.
	d := &pb.ErrorDetail{Reason: string(reason), Message: engine.CallerMessage(err)}
	var e *engine.Error
	if errors.As(err, &e) {
		d.Field, d.AuditId = e.Field, e.AuditID
	}
	if res != nil {
		d.CallId, d.Usage = res.CallID, usage(res.Usage)
		d.Logs, d.LogsTruncated = logsTail(res.Logs, MaxDetailLogs)
	}
	return withDetail(d)
}

// MaxDetailLogs bounds the logs a failed call's ErrorDetail carries: the detail
// travels in the reply's trailers, which proxies cap at a few tens of KiB.
const MaxDetailLogs = 4 << 10

// logsTail is the end of logs as valid UTF-8 (a proto string must be), at most limit
// bytes, starting on a character and, when a newline is in the first quarter of the
// tail, after it; and whether anything was cut.
func logsTail(logs []byte, limit int) (string, bool) {
	s := text(string(logs))
	if len(s) <= limit {
		return s, false
	}
	tail := s[len(s)-limit:]
	for len(tail) > 0 && !utf8.RuneStart(tail[0]) {
		tail = tail[1:]
	}
	if i := strings.IndexByte(tail[:len(tail)/4], '\n'); i >= 0 {
		tail = tail[i+1:]
	}
	return tail, true
}

// text is s as a protobuf string may hold it: UTF-8, each bad byte sequence replaced
// by U+FFFD. What a skill wrote or asked for (its stderr, a URL it requested) need
// not be UTF-8, and a reply that cannot be marshalled never reaches the caller.
func text(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// detailed is a refusal with no call behind it (see withDetail).
func detailed(reason reasons.Reason, msg, field, auditID string) error {
	return withDetail(&pb.ErrorDetail{Reason: string(reason), Message: msg, Field: field, AuditId: auditID})
}

// withDetail is the one way a refusal leaves the server: its code from the reason's
// category, and the message bounded to one line (engine.OneLine) whatever produced it.
func withDetail(d *pb.ErrorDetail) error {
	d.Message = engine.OneLine(d.Message)
	st := status.New(codeOf(categoryOf(reasons.Reason(d.Reason))), d.Message)
	if withDetail, err := st.WithDetails(d); err == nil {
		st = withDetail
	}
	return st.Err()
}

// lowerLimits converts the wire's limits; the engine judges them (negative, below a
// floor). Only what the conversion itself could get wrong is handled here.
func lowerLimits(l *pb.Limits) manifest.Limits {
	if l == nil {
		return manifest.Limits{}
	}
	// A timeout beyond any manifest's cannot lower anything, and any negative one is
	// refused alike; clamping both ends first keeps the conversion to nanoseconds from
	// overflowing into some other value (a huge negative one into a positive one).
	ms := max(min(l.GetTimeoutMs(), time.Duration(manifest.MaxTimeout).Milliseconds()+1), -1)
	return manifest.Limits{
		Timeout:  manifest.Duration(time.Duration(ms) * time.Millisecond),
		Memory:   manifest.Size(l.GetMemoryBytes()),
		Output:   manifest.Size(l.GetOutputBytes()),
		CPU:      l.GetCpu(),
		Requests: int(min(l.GetRequests(), manifest.MaxRequests+1)),
	}
}

func limits(l isolation.Limits) *pb.Limits {
	return &pb.Limits{TimeoutMs: l.Timeout.Milliseconds(), MemoryBytes: l.Memory, OutputBytes: l.Output,
		Cpu: l.CPU, Requests: int64(l.Requests)}
}

func usage(u isolation.Usage) *pb.Usage {
	return &pb.Usage{WallMs: u.Wall.Milliseconds(), PeakMemoryBytes: u.PeakMemory, OutputBytes: u.OutputBytes,
		Requests: int64(u.Requests), DeniedRequests: int64(u.DeniedRequests), CompileMs: u.Compile.Milliseconds()}
}

// SkillInfo is a skill as the Skills service describes it: what `skillbox skills`
// prints, from a server or, offline, from the skill home.
func SkillInfo(in engine.SkillInfo) *pb.SkillInfo { return skillInfo(in) }

func skillInfo(in engine.SkillInfo) *pb.SkillInfo {
	m := in.Entry.Manifest
	out := &pb.SkillInfo{
		Name:           m.Name,
		Version:        m.Version,
		Description:    m.Description,
		InputSchema:    schemaJSON(m.Input),
		OutputSchema:   schemaJSON(m.Output),
		Limits:         limits(in.Limits),
		ManifestDigest: in.Entry.ManifestDigest,
		CodeDigest:     in.Entry.CodeDigest,
		Approved:       in.Approved,
		State:          pb.State_STATE_ENABLED,
		Capabilities:   &pb.Capabilities{},
	}
	if in.Disabled {
		out.State = pb.State_STATE_DISABLED
	}
	if in.Pending != nil {
		out.PendingVersion = in.Pending.Version
	}
	// The wire enum spells each kind SANDBOX_KIND_<KIND>; a kind it does not know yet
	// is UNSPECIFIED.
	out.Sandbox = pb.SandboxKind(pb.SandboxKind_value["SANDBOX_KIND_"+strings.ToUpper(m.Sandbox.Kind())])
	if in.Approved {
		g := in.Approval.Grant
		out.Signer = in.Approval.Signer
		for _, o := range g.Network {
			out.Capabilities.Network = append(out.Capabilities.Network, o.String())
		}
		for _, f := range g.Files {
			acc := pb.Access_ACCESS_READ
			if f.Access == manifest.AccessReadWrite {
				acc = pb.Access_ACCESS_READ_WRITE
			}
			out.Capabilities.Files = append(out.Capabilities.Files, &pb.FileAccess{Path: f.Path, Access: acc})
		}
		for n := range g.Env {
			out.Capabilities.Env = append(out.Capabilities.Env, n)
		}
		for n := range g.Secrets {
			out.Capabilities.Secrets = append(out.Capabilities.Secrets, n)
		}
		// Where each brokered secret really goes: the manifest's origins narrowed by
		// the grant's secretOrigins and network (what approval.Effective sends).
		for _, b := range g.Granted(m).Capabilities.Brokered {
			bs := &pb.BrokeredSecret{Name: b.Name, Header: b.Header}
			for _, o := range b.Origins {
				bs.Origins = append(bs.Origins, o.String())
			}
			out.Capabilities.BrokeredSecrets = append(out.Capabilities.BrokeredSecrets, bs)
		}
	}
	return out
}

func schemaJSON(s map[string]any) string {
	if s == nil {
		return "{}"
	}
	b, err := json.Marshal(s)
	if err != nil {
		return "{}"
	}
	return string(b)
}
