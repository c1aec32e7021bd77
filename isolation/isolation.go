// Package isolation is the contract between the engine and a sandbox: run one call of
// one skill under a grant and a budget, and report what came out and what it used.
// A sandbox reports; it never calls back into the engine.
package isolation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/reasons"
)

// Sandbox runs calls of skills. Implementations are safe for concurrent use; every
// call gets a fresh instance (wasm), an instance restored to its state after
// initialisation (a wasm reactor), or a fresh container, and nothing survives it.
type Sandbox interface {
	// Run executes one call. On failure it returns a *Error and still fills in the
	// Result's Logs, Usage and Egress as far as the call got.
	Run(ctx context.Context, call Call) (Result, error)
	// Close releases cached compilations, pools and helpers.
	Close(ctx context.Context) error
}

// Preparer is implemented by a sandbox that gets a skill ready when it is installed,
// on the staged copy of the package (skill.Dir), before the store commits it: the wasm
// sandbox compiles the module (refusing one that could never run, and sparing the first
// call the compile time); the container sandbox loads image.tar or pulls the registry
// reference and checks that the image has the signed ID. An error refuses the install.
// Prepare must be idempotent: a skill already prepared returns at once.
type Preparer interface {
	Prepare(ctx context.Context, skill Skill) error
}

// Drainer is implemented by a sandbox that keeps warm instances of a skill: the engine
// drains them when the skill is disabled or its approval changes, so nothing prepared
// for the old state survives. Best effort: an instance that survives is single-use and
// is refused or replaced anyway.
type Drainer interface {
	Drain(ctx context.Context, skill string) error
}

// Warmer is implemented by a sandbox that keeps warm instances: Warm reports how many
// are idle now, for the metrics (skillbox_warm_instances).
type Warmer interface {
	Warm() int
}

// PathGuard is implemented by a sandbox whose running calls can change where a host
// path leads: a container call can make symbolic links in its read-write directories.
// Mounting waits, within ctx, until no running call of that sandbox writes a directory
// any of paths leads through, and keeps it so until release: another sandbox opens
// its grant's host paths in between, so that none is opened through a link a call
// made. It returns ctx's error if ctx ends first.
type PathGuard interface {
	Mounting(ctx context.Context, paths []string) (release func(), err error)
}

// Skill identifies the code to run.
type Skill struct {
	Manifest *manifest.Manifest
	// Dir is the package directory holding the code (module.wasm or image.tar).
	Dir string
	// Digest is the code digest ("sha256:<hex>"): the wasm module's sha256 or the image ID.
	Digest string
}

// Grant is what the call really gets: the manifest's ask, narrowed by the operator.
type Grant struct {
	Network []manifest.Origin
	Files   []Mount
	// Env holds granted env values and resolved plain secrets, by name.
	Env map[string]string
	// Brokered are the secrets the skill uses but never sees: the sandbox's egress
	// Guard adds each to requests for its origins. Their values never go in Env.
	Brokered []BrokeredSecret
}

// InterceptOrigins are the https origins of g's brokered secrets, each once, sorted:
// the egress proxy terminates TLS for them (and only them), so a sandbox whose call
// has any gives it a CA made for the call, named for exactly these hosts.
func (g Grant) InterceptOrigins() []manifest.Origin {
	var out []manifest.Origin
	for _, b := range g.Brokered {
		for _, o := range b.Origins {
			if strings.EqualFold(o.Scheme, "https") && !slices.Contains(out, o) {
				out = append(out, o)
			}
		}
	}
	slices.SortFunc(out, func(a, b manifest.Origin) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// BrokeredSecret is one secret added at egress. The Guard sets Header to Value on every
// request (and redirect hop) whose origin is under Origins, after the policy has let
// it through, replacing any header of that name the skill set; a request to any other
// origin never carries it. Responses, output, logs and audit records have Secret (in
// the forms Redactor knows) replaced by Placeholder(Name).
type BrokeredSecret struct {
	Name    string
	Origins []manifest.Origin
	Header  string // canonical or not; a valid HTTP token, never hop-by-hop, Host or Proxy-*
	Value   string // the full header value, already formatted (e.g. "Bearer abc")
	// Secret is the value as the operator granted it, before formatting: what
	// redaction looks for (Value holds it). Empty means Value.
	Secret string
}

// Mount binds a guest path to a host directory.
type Mount struct {
	Guest  string // absolute, clean path the skill sees
	Host   string // absolute host directory
	Access manifest.Access
}

// Limits is the effective per-call budget: min(manifest, grant, caller).
//
// Every sandbox reads a zero (or negative) field the same way, as the default below
// (see WithDefaults): never as "unlimited" and never as "nothing allowed". The one
// exception is Requests, where zero means what it says: no request may be made, with
// or without a network grant. The engine always passes limits computed from the
// manifest, whose own defaults are the same values, so a zero field reaches a sandbox
// only from a caller that builds a Call by hand.
//
// Timeout is wall-clock time from Run's entry: it covers the sandbox's preparation
// (compiling a module, loading an image, creating and starting a container) as well
// as the skill's run. Run returns within Timeout plus the time the sandbox needs to
// stop the skill and remove what the call created (for wasm, at once; for a
// container, the engine's kill and remove, usually under a second), whether or not
// the preparation finished; preparation cut short may go on in the background for the
// next call.
//
// A sandbox may start the skill's clock again when preparation that is not the
// skill's own ends (the wasm sandbox does after compiling a module, so a compile never
// eats a call's budget); it then reports the wait as Usage.Compile, and Run returns
// within twice Timeout plus the stop time.
type Limits struct {
	Timeout  time.Duration // zero: DefaultTimeout
	Memory   int64         // bytes; zero: DefaultMemory
	Output   int64         // stdout bytes; zero: DefaultOutput
	Logs     int64         // stderr bytes; zero: DefaultLogs
	CPU      float64       // cores; zero: DefaultCPU (a sandbox that cannot meter CPU ignores it)
	Requests int           // outbound requests; zero: none may be made, even with a network grant
	Response int64         // bytes of one response body read from the network; zero: DefaultResponse, at most Memory
}

// The budget a zero Limits field stands for, the same in every sandbox. They are the
// manifest's defaults (a manifest without a limits section asks for these), and the
// stderr and response caps the engine gives every call.
const (
	DefaultTimeout  = time.Duration(manifest.DefaultTimeout)
	DefaultMemory   = int64(manifest.DefaultMemory)
	DefaultOutput   = int64(manifest.DefaultOutput)
	DefaultLogs     = 64 << 10
	DefaultCPU      = manifest.DefaultCPU
	DefaultResponse = 8 << 20
)

// WithDefaults returns l with every zero or negative field but Requests replaced by
// its default; a negative Requests becomes zero. Every sandbox calls it first in Run,
// so a zero means the same everywhere.
func (l Limits) WithDefaults() Limits {
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	if l.Memory <= 0 {
		l.Memory = DefaultMemory
	}
	if l.Output <= 0 {
		l.Output = DefaultOutput
	}
	if l.Logs <= 0 {
		l.Logs = DefaultLogs
	}
	if !(l.CPU > 0) { // NaN too
		l.CPU = DefaultCPU
	}
	if l.Requests < 0 {
		l.Requests = 0
	}
	if l.Response <= 0 {
		l.Response = min(DefaultResponse, l.Memory)
	}
	return l
}

// Call is one invocation.
type Call struct {
	ID     string // unique per call; names containers and audit records
	Skill  Skill
	Input  []byte // JSON, already validated against the input schema
	Grant  Grant
	Limits Limits
	// Granted is the budget before the caller lowered it: min(manifest, grant). A
	// sandbox that keeps warm instances shapes them by Granted, never by Limits, so a
	// caller cannot make it keep more; a call whose Limits are lower is served by a
	// fresh instance. Zero means unknown: no warm instance is used.
	Granted Limits
}

// Result is what came out of a call and what it used.
type Result struct {
	Output []byte // stdout
	Logs   []byte // stderr, capped
	Usage  Usage
	Egress []EgressRecord
}

// Usage is what one call consumed.
type Usage struct {
	// Wall is the call's own wall-clock time. A sandbox that had to compile or load
	// the skill's code first reports that wait as Compile, apart from Wall.
	Wall           time.Duration
	Compile        time.Duration
	PeakMemory     int64
	OutputBytes    int64
	Requests       int // requests that went out
	DeniedRequests int
}

// EgressRecord is one outbound request decision. Method, URL and Reason are bounded
// in length, valid UTF-8 and free of control characters, so a record can go into the
// audit log and a reply as it is.
type EgressRecord struct {
	Time    time.Time
	Method  string
	URL     string
	Allowed bool
	Denial  Denial // what kind of refusal, empty when allowed
	Reason  string // why denied (or how an allowed request failed), in words
	Status  int    // HTTP status when the request was made
	Bytes   int64  // response bytes read
	// Secrets names the brokered secrets attached to this request (never their values).
	Secrets []string
}

// Denial is the kind of an egress refusal: callers branch on it, never on Reason.
type Denial string

// Kinds of egress refusal.
const (
	// DenialNotGranted is a refusal by the origin policy: the origin is not granted,
	// the dialled address is refused, or a redirect chain is too long.
	DenialNotGranted Denial = "NOT_GRANTED"
	// DenialRequestLimit is an attempt made after the call's request budget was spent.
	DenialRequestLimit Denial = "REQUEST_LIMIT"
)

// Reason is the machine-readable cause of a failed call (the one vocabulary of
// package reasons; the engine and the doors add their own words to it).
type Reason = reasons.Reason

// Reasons a sandbox fails a call for, each with its category in CategoryOf. A sandbox
// uses these and no others, so every door can map what any sandbox reports.
const (
	ReasonTimeout       Reason = "TIMEOUT"       // wall-clock budget
	ReasonMemory        Reason = "MEMORY"        // memory budget
	ReasonOutput        Reason = "OUTPUT_LIMIT"  // stdout budget
	ReasonLogs          Reason = "LOG_LIMIT"     // stderr budget
	ReasonRequests      Reason = "REQUEST_LIMIT" // outbound request budget
	ReasonEgressDenied  Reason = "EGRESS_DENIED" // a request to an origin not granted
	ReasonNotGranted    Reason = "NOT_GRANTED"   // the code needs a capability it was not granted (e.g. a network import)
	ReasonInvalidModule Reason = "INVALID_CODE"  // the module or image cannot be run
	ReasonSkillFailed   Reason = "SKILL_FAILED"  // trap, non-zero exit, crash
	ReasonCanceled      Reason = "CANCELED"      // the caller or the kill switch ended the call
	ReasonInternal      Reason = "INTERNAL"      // the sandbox itself failed
)

// CategoryOf is the category of a sandbox reason, and Internal for any other (the
// engine's CategoryOf covers its own words and asks this one for the rest).
func CategoryOf(r Reason) reasons.Category {
	switch r {
	case ReasonTimeout:
		return reasons.DeadlineExceeded
	case ReasonMemory, ReasonOutput, ReasonLogs, ReasonRequests:
		return reasons.ResourceExhausted
	case ReasonEgressDenied, ReasonNotGranted:
		return reasons.PermissionDenied
	case ReasonInvalidModule, ReasonSkillFailed:
		return reasons.Aborted
	case ReasonCanceled:
		return reasons.Canceled
	}
	return reasons.Internal // ReasonInternal and anything undeclared
}

// Error is a failed call with its reason.
type Error struct {
	Reason Reason
	Msg    string // one line for the user; it may be logged and audited
	// SkillMsg is the skill's own words about its failure (the end of its stderr,
	// bounded). Skills echo their input there ("bad input: ..."), so it is the
	// caller's data, like the output and logs: it goes back to the caller only and is
	// kept out of Msg and Error(), and so out of every log.
	SkillMsg string
	Err      error // underlying cause, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Msg, e.Err)
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// SkillMessage returns the skill's own words carried by err (the first SkillMsg in
// its chain), or "". Only a reply to the caller may include them.
func SkillMessage(err error) string {
	var e *Error
	for errors.As(err, &e) {
		if e.SkillMsg != "" {
			return e.SkillMsg
		}
		err = e.Err
	}
	return ""
}

// SkillExited is the error of a skill that exited with a non-zero code after writing
// stderr. Its message names the code and how much was written; the last line of
// stderr is the skill's own words, carried for the caller only. Every sandbox builds
// the failure this one way.
func SkillExited(code int64, stderr []byte) *Error {
	msg := fmt.Sprintf("skill exited with code %d", code)
	if len(stderr) > 0 {
		msg += fmt.Sprintf(" after writing %d bytes to stderr", len(stderr))
	}
	return &Error{Reason: ReasonSkillFailed, Msg: msg, SkillMsg: lastLine(stderr)}
}

// lastLine is the last non-empty line of b, at most 512 bytes, valid UTF-8.
func lastLine(b []byte) string {
	s := strings.TrimRight(string(b), "\r\n\t ")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 512 {
		s = "…" + s[len(s)-512:]
	}
	return strings.ToValidUTF8(s, "?")
}

// Errorf builds an *Error.
func Errorf(reason Reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the reason carried by err, or ReasonInternal.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ReasonInternal
}
