package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
	sandboxv1 "sigs.k8s.io/agent-sandbox/api/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/egress"
	"github.com/skillbox-dev/skillbox/manifest"
)

var errTimeout = errors.New("call timed out")

// deleteTimeout bounds the removal of one call's objects, which the call's end does
// not cut short.
const deleteTimeout = 30 * time.Second

// Run executes one call as a fresh workload and deletes it before returning.
func (s *Sandbox) Run(ctx context.Context, call isolation.Call) (res isolation.Result, err error) {
	start := time.Now()
	defer func() { res.Usage.Wall = time.Since(start) }()
	lim := withDefaults(call.Limits)
	ctx, cancel := context.WithTimeoutCause(ctx, lim.Timeout, errTimeout)
	defer cancel()
	if !s.track() {
		return res, isolation.Errorf(isolation.ReasonInternal, "sandbox closed")
	}
	defer s.calls.Done()
	sp, err := s.specFor(call, lim)
	if err != nil {
		return res, err
	}
	if sp.network {
		var ca *egress.CallCA
		if len(sp.intercept) > 0 {
			// The pod may start late: the CA lasts as long as its workload may.
			if ca, err = egress.NewCallCA(sp.intercept, lim.Timeout+s.backstop); err != nil {
				return res, &isolation.Error{Reason: isolation.ReasonInternal, Msg: "make the call's CA", Err: err}
			}
			sp.caPEM = ca.CertPEM()
			if len(s.roots) > 0 {
				sp.caPEM = append(append(sp.caPEM, '\n'), s.roots...)
			}
		}
		token, bind, release := s.proxy.Reserve(ca) // release drops the CA's keys
		defer release()
		guard := egress.NewGuard(call.Grant.Network, egress.Limits{MaxRequests: lim.Requests, MaxResponseBytes: lim.Response}, s.guardOptions(call.Grant)...)
		bind(guard)
		defer func() {
			res.Egress = guard.Records()
			res.Usage.Requests, res.Usage.DeniedRequests = guard.Counts()
		}()
		u := "http://skillbox:" + token + "@" + s.proxyAddr
		for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
			sp.env[k] = u
		}
	}
	// Deleted whatever happens, even after the caller has gone: nothing of a call
	// outlives it.
	defer s.cleanup(context.WithoutCancel(ctx), sp)
	if len(sp.env) > 0 {
		if err := s.create(ctx, s.secret(sp)); err != nil {
			return res, ctxErr(ctx, err)
		}
	}
	w := s.workload(sp)
	if err := s.create(ctx, w); err != nil {
		return res, ctxErr(ctx, err)
	}
	if len(sp.env) > 0 {
		if err := s.own(ctx, sp, w); err != nil {
			return res, ctxErr(ctx, err)
		}
	}
	ob := s.observe(ctx, sp)
	st, err := ob.until(ctx, func(st *callState) bool { return st.attachable() || st.terminal() })
	if err != nil {
		return res, ctxErr(ctx, ob.why(err))
	}
	// The stream ends as soon as either cap is passed (client-go's copy drops the
	// writer's error, so the writers say it themselves).
	sctx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	stdout := &capWriter{max: lim.Output, reason: isolation.ReasonOutput, over: stopStream}
	stderr := &capWriter{max: lim.Logs, reason: isolation.ReasonLogs, over: stopStream}
	defer func() {
		res.Output, res.Logs = stdout.bytes(), stderr.bytes()
		res.Usage.OutputBytes = int64(len(res.Output))
	}()
	if !st.terminal() {
		aerr := s.attach(sctx, st.pod.Name, call.Input, stdout, stderr)
		for _, w := range []*capWriter{stdout, stderr} {
			if w.overflowed() {
				what := map[isolation.Reason]string{isolation.ReasonOutput: "stdout", isolation.ReasonLogs: "stderr"}[w.reason]
				return res, isolation.Errorf(w.reason, "%s exceeded %s; pod deleted", what, manifest.Size(w.max).Words())
			}
		}
		if aerr != nil {
			if ctx.Err() != nil {
				return res, ctxErr(ctx, aerr)
			}
			// The stream can break as the container exits: its state says more.
			if st2, werr := ob.until(ctx, (*callState).terminal); werr == nil {
				return res, st2.outcome(lim, stderr.bytes())
			}
			return res, &isolation.Error{Reason: isolation.ReasonInternal, Msg: "attach to the pod", Err: aerr}
		}
		if st, err = ob.until(ctx, (*callState).terminal); err != nil {
			return res, ctxErr(ctx, ob.why(err))
		}
	}
	return res, st.outcome(lim, stderr.bytes())
}

func (s *Sandbox) guardOptions(g isolation.Grant) []egress.Option {
	opts := append([]egress.Option(nil), s.guardOpts...)
	if len(g.Brokered) > 0 {
		opts = append(opts, egress.WithSecrets(g.Brokered))
	}
	return opts
}

// create creates obj, putting an API refusal in the operator's words.
func (s *Sandbox) create(ctx context.Context, obj client.Object) error {
	if err := s.c.Create(ctx, obj); err != nil {
		kind := strings.ToLower(fmt.Sprintf("%T", obj))
		kind = kind[strings.LastIndexByte(kind, '.')+1:]
		return &isolation.Error{Reason: isolation.ReasonInternal, Msg: fmt.Sprintf("create %s %s/%s: %s", kind, s.ns, obj.GetName(), apiWords(err)), Err: err}
	}
	return nil
}

// apiWords says what an API error means for the operator, RBAC denials first.
func apiWords(err error) string {
	switch {
	case apierrors.IsForbidden(err):
		return "the server's service account is not allowed to (RBAC: give its Role the verb on that resource, see deploy/): " + err.Error()
	case apierrors.IsUnauthorized(err):
		return "the API server did not accept skillbox's credentials: " + err.Error()
	case meta.IsNoMatchError(err):
		return "the API server does not serve that kind (is its CRD installed?): " + err.Error()
	}
	return err.Error()
}

// own makes the call's workload the owner of its Secret, so that the cluster's garbage
// collector removes the Secret with the workload (the Job's TTL, the Sandbox's
// shutdown time) should skillbox die before cleanup: the Secret is made first, for the
// pod needs it to start, and would otherwise stay for good, plain secrets and all.
// The reference does not block the workload's deletion (that would need more RBAC).
func (s *Sandbox) own(ctx context.Context, sp *callSpec, w client.Object) error {
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: sp.name, Namespace: s.ns}}
	base := sec.DeepCopy()
	if err := controllerutil.SetOwnerReference(w, sec, s.c.Scheme()); err != nil {
		return &isolation.Error{Reason: isolation.ReasonInternal, Msg: "own the call's Secret", Err: err}
	}
	if err := s.c.Patch(ctx, sec, client.MergeFrom(base)); err != nil {
		return &isolation.Error{Reason: isolation.ReasonInternal, Msg: fmt.Sprintf("make %s/%s the owner of the call's Secret: %s", s.ns, sp.name, apiWords(err)), Err: err}
	}
	return nil
}

// cleanup deletes the call's workload (its pod with it) and Secret.
func (s *Sandbox) cleanup(ctx context.Context, sp *callSpec) {
	ctx, cancel := context.WithTimeout(ctx, deleteTimeout)
	defer cancel()
	bg := client.PropagationPolicy(metav1.DeletePropagationBackground)
	zero := client.GracePeriodSeconds(0)
	w := s.workload(sp)
	errs := []error{ignoreGone(s.c.Delete(ctx, w, bg, zero))}
	// The pod at once, not when the garbage collector gets to it. A Sandbox's
	// controller can make its pod again until it has seen the Sandbox go (it reads a
	// cache that can lag the deletion): deleting the pod a second time once the
	// workload is gone (or after a short wait) narrows that window, and a pod made
	// later still is owned by the gone workload, which the cluster's garbage collector
	// removes.
	pods := func() error {
		return ignoreGone(s.c.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(s.ns),
			client.MatchingLabels{LabelCall: sp.callID, LabelInstance: s.instance}, zero))
	}
	errs = append(errs, pods())
	s.awaitGone(ctx, w, workloadGoneWait)
	errs = append(errs, pods())
	if len(sp.env) > 0 {
		errs = append(errs, ignoreGone(s.c.Delete(ctx, s.secret(sp))))
	}
	if err := errors.Join(errs...); err != nil {
		s.log.Warn("kubernetes sandbox: could not delete a call's objects; the cluster's backstop removes them", "workload", sp.name, "err", err)
	}
}

// workloadGoneWait bounds how long cleanup waits for a deleted workload to go before
// deleting its pod a second time (neither a Sandbox nor a Job has a finalizer of its
// own, but a cluster may add one; what stays is then the cluster's backstop's).
const workloadGoneWait = 5 * time.Second

// awaitGone waits, at most d, until obj is no longer found.
func (s *Sandbox) awaitGone(ctx context.Context, obj client.Object, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	key := client.ObjectKeyFromObject(obj)
	for {
		if err := s.c.Get(ctx, key, obj); apierrors.IsNotFound(err) || ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// attach streams the input to the container's stdin (then closes it) and its stdout
// and stderr into the writers, over the API server's pods/attach: WebSocket first,
// SPDY for servers that do not speak it.
func (s *Sandbox) attach(ctx context.Context, pod string, input []byte, stdout, stderr io.Writer) error {
	req := s.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(s.ns).Name(pod).SubResource("attach").
		VersionedParams(&corev1.PodAttachOptions{Container: ContainerName, Stdin: true, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(s.cfg, "GET", req.URL().String())
	if err != nil {
		return err
	}
	spdy, err := remotecommand.NewSPDYExecutor(s.cfg, "POST", req.URL())
	if err != nil {
		return err
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return err
	}
	return ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: bytes.NewReader(input), Stdout: stdout, Stderr: stderr})
}

// callState is what the cluster says of one call: its pod and (BackendSandbox) its
// Sandbox, as last seen.
type callState struct {
	pod *corev1.Pod
	sbx *sandboxv1.Sandbox
	// gone names what of the call was deleted by someone else (Drain, an operator,
	// the cluster's expiry) while the call was running; "" while nothing was.
	gone    string
	expires time.Time // the Sandbox's shutdownTime, once seen
}

func (st *callState) container() *corev1.ContainerStatus {
	if st.pod == nil {
		return nil
	}
	for i := range st.pod.Status.ContainerStatuses {
		if st.pod.Status.ContainerStatuses[i].Name == ContainerName {
			return &st.pod.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// attachable: the skill's container runs.
func (st *callState) attachable() bool {
	cs := st.container()
	return st.pod != nil && st.pod.Status.Phase == corev1.PodRunning && cs != nil && cs.State.Running != nil
}

// terminal: the call is over, one way or another, as far as the cluster says.
func (st *callState) terminal() bool {
	if st.gone != "" {
		return true
	}
	if st.sbx != nil {
		for _, c := range st.sbx.Status.Conditions {
			if c.Type == string(sandboxv1.SandboxConditionFinished) && c.Status == metav1.ConditionTrue {
				return true
			}
			if c.Type == string(sandboxv1.SandboxConditionReady) && c.Reason == sandboxv1.SandboxReasonExpired {
				return true
			}
		}
	}
	if cs := st.container(); cs != nil {
		if cs.State.Terminated != nil {
			return true
		}
		if w := cs.State.Waiting; w != nil && unrunnable[w.Reason] {
			return true
		}
	}
	return st.pod != nil && (st.pod.Status.Phase == corev1.PodSucceeded || st.pod.Status.Phase == corev1.PodFailed)
}

// unrunnable are the waiting reasons of a container that will not start by waiting.
var unrunnable = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true, "ErrImageNeverPull": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true,
}

// outcome is the call's result from a terminal state.
func (st *callState) outcome(lim isolation.Limits, stderr []byte) error {
	if st.gone != "" {
		if !st.expires.IsZero() && !time.Now().Before(st.expires) {
			return isolation.Errorf(isolation.ReasonTimeout, "the cluster expired the sandbox before the call ended")
		}
		return isolation.Errorf(isolation.ReasonCanceled, "the call's %s was deleted while it ran (the skill was disabled, or someone removed it)", st.gone)
	}
	if st.sbx != nil {
		for _, c := range st.sbx.Status.Conditions {
			if c.Type == string(sandboxv1.SandboxConditionReady) && c.Reason == sandboxv1.SandboxReasonExpired {
				return isolation.Errorf(isolation.ReasonTimeout, "the cluster expired the sandbox before the call ended")
			}
		}
	}
	if cs := st.container(); cs != nil {
		if t := cs.State.Terminated; t != nil {
			switch {
			case t.Reason == "OOMKilled":
				return isolation.Errorf(isolation.ReasonMemory, "memory limit of %s reached; pod killed", manifest.Size(lim.Memory).Words())
			case t.ExitCode == 0:
				return nil
			}
			if len(stderr) == 0 && t.Message != "" {
				stderr = []byte(t.Message)
			}
			return isolation.SkillExited(int64(t.ExitCode), stderr)
		}
		if w := cs.State.Waiting; w != nil && unrunnable[w.Reason] {
			reason := isolation.ReasonInvalidModule
			if strings.HasPrefix(w.Reason, "Create") {
				reason = isolation.ReasonInternal
			}
			return isolation.Errorf(reason, "the pod's container cannot start: %s: %s", w.Reason, oneLine(w.Message))
		}
	}
	if st.pod != nil {
		switch {
		case st.pod.Status.Reason == "DeadlineExceeded":
			return isolation.Errorf(isolation.ReasonTimeout, "the cluster ended the pod at its deadline")
		case st.pod.Status.Phase == corev1.PodSucceeded:
			return nil
		}
	}
	if st.sbx != nil {
		for _, c := range st.sbx.Status.Conditions {
			if c.Type == string(sandboxv1.SandboxConditionFinished) && c.Status == metav1.ConditionTrue {
				if c.Reason == sandboxv1.SandboxReasonPodSucceeded {
					return nil
				}
				return &isolation.Error{Reason: isolation.ReasonSkillFailed, Msg: "the sandbox's pod failed: " + oneLine(c.Message)}
			}
		}
	}
	return &isolation.Error{Reason: isolation.ReasonSkillFailed, Msg: "the pod failed"}
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// observer follows a call's pod (and Sandbox) through watches.
type observer struct {
	st      callState
	updates chan func(*callState)
	errc    chan error
}

// observe starts watching the call's objects until ctx ends.
func (s *Sandbox) observe(ctx context.Context, sp *callSpec) *observer {
	ob := &observer{updates: make(chan func(*callState), 16), errc: make(chan error, 2)}
	sel := client.MatchingLabels{LabelCall: sp.callID, LabelInstance: s.instance}
	go s.follow(ctx, ob, &corev1.PodList{}, []client.ListOption{client.InNamespace(s.ns), sel}, func(o any, deleted bool) func(*callState) {
		p := o.(*corev1.Pod)
		return func(st *callState) {
			if deleted {
				st.pod, st.gone = p, "pod"
				return
			}
			st.pod = p
		}
	})
	if s.backend == BackendSandbox {
		go s.follow(ctx, ob, &sandboxv1.SandboxList{}, []client.ListOption{client.InNamespace(s.ns),
			client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", sp.name)}},
			func(o any, deleted bool) func(*callState) {
				x := o.(*sandboxv1.Sandbox)
				return func(st *callState) {
					if x.Spec.ShutdownTime != nil {
						st.expires = x.Spec.ShutdownTime.Time
					}
					if deleted {
						st.sbx, st.gone = x, "sandbox"
						return
					}
					st.sbx = x
				}
			})
	}
	return ob
}

// why adds to err what the cluster last said of a call that never got going: the
// Sandbox's Ready condition (e.g. a pod the controller could not create: a missing
// RuntimeClass, a quota) or the pod's scheduling condition.
func (ob *observer) why(err error) error {
	var said []string
	if x := ob.st.sbx; x != nil {
		for _, c := range x.Status.Conditions {
			if c.Type == string(sandboxv1.SandboxConditionReady) && c.Status != metav1.ConditionTrue && c.Message != "" {
				said = append(said, "sandbox: "+oneLine(c.Message))
			}
		}
	}
	if p := ob.st.pod; p != nil {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue && c.Message != "" {
				said = append(said, "pod: "+oneLine(c.Message))
			}
		}
	} else if ob.st.sbx != nil || err != nil {
		said = append(said, "no pod was created")
	}
	if len(said) == 0 {
		return err
	}
	return fmt.Errorf("%s: %w", strings.Join(said, "; "), err)
}

// until applies updates until done says so, ctx ends or a watch fails.
func (ob *observer) until(ctx context.Context, done func(*callState) bool) (*callState, error) {
	for {
		if done(&ob.st) {
			return &ob.st, nil
		}
		select {
		case u := <-ob.updates:
			u(&ob.st)
		case err := <-ob.errc:
			return nil, &isolation.Error{Reason: isolation.ReasonInternal, Msg: "watch the call's workload: " + apiWords(err), Err: err}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// follow lists then watches one kind, sending each object seen as an update, and
// watches again from the last version when the API server ends a watch.
func (s *Sandbox) follow(ctx context.Context, ob *observer, list client.ObjectList, opts []client.ListOption, update func(o any, deleted bool) func(*callState)) {
	send := func(u func(*callState)) bool {
		select {
		case ob.updates <- u:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for ctx.Err() == nil {
		l := list.DeepCopyObject().(client.ObjectList)
		if err := s.c.List(ctx, l, opts...); err != nil {
			if ctx.Err() == nil {
				ob.errc <- err
			}
			return
		}
		items, _ := meta.ExtractList(l)
		for _, it := range items {
			if !send(update(it, false)) {
				return
			}
		}
		w, err := s.c.Watch(ctx, list.DeepCopyObject().(client.ObjectList), append(opts, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: l.GetResourceVersion(), AllowWatchBookmarks: false}})...)
		if err != nil {
			if ctx.Err() == nil {
				ob.errc <- err
			}
			return
		}
		for ev := range w.ResultChan() {
			switch ev.Type {
			case watch.Added, watch.Modified, watch.Deleted:
				if !send(update(ev.Object, ev.Type == watch.Deleted)) {
					w.Stop()
					return
				}
			case watch.Error:
				// Expired resource version and the like: list again.
			}
		}
		w.Stop()
	}
}

// capWriter collects up to max bytes; past it, it keeps the first max, fails the
// write and calls over (once). It is written from the stream's goroutine and read
// after the stream ended, or from the watch as the call ends: hence the lock.
type capWriter struct {
	mu     sync.Mutex
	buf    []byte
	max    int64
	reason isolation.Reason
	over   func()
	passed bool
}

func (w *capWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.passed {
		return 0, errOverflow
	}
	if int64(len(w.buf)+len(p)) > w.max {
		w.buf = append(w.buf, p[:w.max-int64(len(w.buf))]...)
		w.passed = true
		if w.over != nil {
			w.over()
		}
		return 0, errOverflow
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

var errOverflow = errors.New("over the call's cap")

func (w *capWriter) overflowed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.passed
}

func (w *capWriter) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]byte(nil), w.buf...)
}

// ctxErr turns the end of the call's context into its reason.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	if errors.Is(context.Cause(ctx), errTimeout) {
		return &isolation.Error{Reason: isolation.ReasonTimeout, Msg: "call exceeded its time limit; workload deleted", Err: err}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &isolation.Error{Reason: isolation.ReasonTimeout, Msg: "caller's deadline passed; workload deleted", Err: err}
	}
	return &isolation.Error{Reason: isolation.ReasonCanceled, Msg: "call canceled; workload deleted", Err: err}
}
