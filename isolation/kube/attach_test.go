package kube

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skillbox-dev/skillbox/isolation"
)

// fakeKubelet stands where a node's kubelet would: the real kube-apiserver proxies
// pods/attach to it (over TLS, to the address and port of the Node object), and it
// serves the stream with the kubelet's own streaming code (k8s.io/cri-streaming). Its
// "container" is a function of stdin. It reports the container's exit through the API
// server as a kubelet does.
type fakeKubelet struct {
	t    *testing.T
	srv  *httptest.Server
	port int
	node string

	mu    sync.Mutex
	paths []string
	stdin []byte
	// skill is the container: it gets stdin and writes; its exit code is then
	// reported in the pod's status.
	skill func(stdin []byte, stdout, stderr io.Writer) int32
}

func newFakeKubelet(t *testing.T) *fakeKubelet {
	t.Helper()
	k := &fakeKubelet{t: t, node: "node-" + randomID()}
	k.srv = httptest.NewUnstartedServer(http.HandlerFunc(k.serve))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k.srv.Listener = ln
	k.srv.StartTLS()
	t.Cleanup(k.srv.Close)
	k.port = ln.Addr().(*net.TCPAddr).Port
	ctx := context.Background()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: k.node}}
	if err := testClient.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testClient.Delete(context.Background(), node) })
	node.Status = corev1.NodeStatus{
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: "127.0.0.1"}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(k.port)}},
		Conditions:      []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
	}
	if err := testClient.Status().Update(ctx, node); err != nil {
		t.Fatal(err)
	}
	return k
}

// serve handles /attach/{namespace}/{pod}/{container}.
func (k *fakeKubelet) serve(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	k.paths = append(k.paths, r.URL.Path)
	k.mu.Unlock()
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(parts) != 4 || parts[0] != "attach" {
		http.NotFound(w, r)
		return
	}
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	remotecommand.ServeAttach(w, r, attacher{k, parts[1]}, parts[2], "", parts[3], opts, 0, 30*time.Second, remotecommand.SupportedStreamingProtocols)
}

type attacher struct {
	k  *fakeKubelet
	ns string
}

func (a attacher) AttachContainer(ctx context.Context, pod, _, container string, in io.Reader, out, errw io.WriteCloser, _ bool, _ <-chan remotecommand.TerminalSize) error {
	stdin, _ := io.ReadAll(in)
	a.k.mu.Lock()
	a.k.stdin = stdin
	a.k.mu.Unlock()
	code := a.k.skill(stdin, out, errw)
	// The container exited: the kubelet reports it in the pod's status. The call
	// may already have ended (a cap passed) and deleted the pod: then nothing is left
	// to report to.
	for {
		var p corev1.Pod
		if err := testClient.Get(context.Background(), clientKey(a.ns, pod), &p); err != nil {
			break
		}
		p.Status = terminated(code, "", "")
		if err := testClient.Status().Update(context.Background(), &p); err == nil || !apierrors.IsConflict(err) {
			break
		}
	}
	return nil
}

// run places pod on the fake node and marks its container running, as the scheduler
// and the kubelet would.
func (k *fakeKubelet) run(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(testCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Pods(pod.Namespace).Bind(context.Background(), &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
		Target:     corev1.ObjectReference{Kind: "Node", Name: k.node}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	setStatus(t, pod, corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.1.2.3", ContainerStatuses: []corev1.ContainerStatus{{
		Name: ContainerName, Image: testImage, Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}}})
}

// TestAttachThroughAPIServer: the input reaches the container's stdin and its stdout
// and stderr come back through the real API server's pods/attach (WebSocket from
// skillbox, translated by the API server to the kubelet's stream), with the call's
// caps and the exit code the kubelet reports.
func TestAttachThroughAPIServer(t *testing.T) {
	needCluster(t)
	ns := namespace(t)
	k := newFakeKubelet(t)
	sb := newSandbox(t, ns)
	cases := []struct {
		name   string
		skill  func(stdin []byte, stdout, stderr io.Writer) int32
		want   isolation.Reason
		output string
		logs   string
	}{
		{"echo", func(in []byte, out, errw io.Writer) int32 {
			io.WriteString(errw, "read "+strconv.Itoa(len(in))+" bytes\n")
			out.Write(bytes.ToUpper(in))
			return 0
		}, "", `{"NAME":"K8S"}`, "read 14 bytes\n"},
		{"exit code", func(in []byte, out, errw io.Writer) int32 {
			io.WriteString(errw, "bad input: no greeting\n")
			return 2
		}, isolation.ReasonSkillFailed, "", "bad input: no greeting\n"},
		{"output over its cap", func(in []byte, out, errw io.Writer) int32 {
			out.Write(bytes.Repeat([]byte("x"), 64<<10))
			return 0
		}, isolation.ReasonOutput, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k.skill = c.skill
			call := testCall("echo", 60*time.Second)
			call.Input = []byte(`{"name":"k8s"}`)
			call.Limits.Output = 16 << 10
			done := start(sb, context.Background(), call)
			pod := podOf(t, sb, call.ID)
			k.run(t, pod)
			o := await(t, done)
			if c.want == "" {
				if o.err != nil {
					t.Fatalf("call failed: %v", o.err)
				}
			} else if r := reasonOf(t, o.err); r != c.want {
				t.Fatalf("reason %s, want %s (%v)", r, c.want, o.err)
			}
			if c.output != "" && string(o.res.Output) != c.output {
				t.Errorf("output %q, want %q", o.res.Output, c.output)
			}
			if c.want == isolation.ReasonOutput && len(o.res.Output) != 16<<10 {
				t.Errorf("%d bytes of output kept, want the cap", len(o.res.Output))
			}
			if c.logs != "" && string(o.res.Logs) != c.logs {
				t.Errorf("logs %q, want %q", o.res.Logs, c.logs)
			}
			if c.want == isolation.ReasonSkillFailed && isolation.SkillMessage(o.err) != "bad input: no greeting" {
				t.Errorf("skill message %q", isolation.SkillMessage(o.err))
			}
			k.mu.Lock()
			stdin, paths := string(k.stdin), k.paths
			k.mu.Unlock()
			if c.want != isolation.ReasonOutput && stdin != `{"name":"k8s"}` {
				t.Errorf("the container read %q from stdin", stdin)
			}
			wantPath := "/attach/" + ns + "/" + pod.Name + "/" + ContainerName
			if len(paths) == 0 || paths[len(paths)-1] != wantPath {
				t.Errorf("kubelet saw %v, want %s", paths, wantPath)
			}
			assertPodGone(t, pod)
			assertClean(t, sb)
		})
	}
}

func clientKey(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }
