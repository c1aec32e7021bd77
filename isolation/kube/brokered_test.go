package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/isolation/egress"
	"github.com/skillbox-dev/skillbox/manifest"
)

// TestBrokeredHTTPSCA: a call with a brokered secret for an https origin gets a CA made
// for it. Its certificate (never its key), followed by the roots, is one key of the
// call's Secret, mounted read-only at CAPath, and SSL_CERT_FILE and the other CA
// variables point there; the secret's value is in no object. The test then does what
// the pod's TLS stack would: with only the Secret's contents (the proxy URL with the
// call's token, the CA file), it reaches the origin through skillbox's proxy, which
// terminates TLS with a certificate of the call's CA and adds the secret.
func TestBrokeredHTTPSCA(t *testing.T) {
	needCluster(t)
	ns := namespace(t)
	var seen atomic.Value
	upstream := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Get("Authorization"))
		io.WriteString(w, "ok")
	}))
	defer upstream.Close()
	upstreamRoots := x509.NewCertPool()
	upstreamRoots.AddCert(upstream.Certificate())
	_, portStr, _ := net.SplitHostPort(upstream.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)
	origin := manifest.Origin{Scheme: "https", Host: "127.0.0.1", Port: port}

	proxy := egress.NewProxy()
	defer proxy.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go proxy.Serve(ln)
	roots := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: upstream.Certificate().Raw})
	sb := newSandbox(t, ns, WithEgressProxy(proxy, ln.Addr().String(), "skillbox", map[string]string{"app": "skillbox"}),
		WithGuardOptions(egress.WithTLSConfig(&tls.Config{RootCAs: upstreamRoots})), WithPodRoots(roots))

	const secret = "s3cr3t-value-never-in-the-cluster"
	call := testCall("fetch", 30*time.Second)
	call.Limits.Requests = 2
	call.Grant = isolation.Grant{Network: []manifest.Origin{origin},
		Env: map[string]string{"SSL_CERT_FILE": "/image/own.pem", "GREETING": "hi"},
		Brokered: []isolation.BrokeredSecret{{Name: "API_TOKEN", Origins: []manifest.Origin{origin},
			Header: "Authorization", Value: "Bearer " + secret, Secret: secret}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := start(sb, ctx, call)
	pod := podOf(t, sb, call.ID)
	var l corev1.SecretList
	if err := testClient.List(ctx, &l, client.InNamespace(ns), client.MatchingLabels{LabelCall: call.ID}); err != nil || len(l.Items) != 1 {
		t.Fatalf("the call's Secret: %v (%d)", err, len(l.Items))
	}
	sec := l.Items[0]

	// The CA: a certificate authority's certificate, then the roots; no key anywhere.
	caFile := sec.Data[KeyCA]
	block, rest := pem.Decode(caFile)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s does not start with a certificate: %q", KeyCA, caFile)
	}
	caCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !caCert.IsCA {
		t.Fatalf("the call's CA: %v (IsCA %v)", err, caCert != nil && caCert.IsCA)
	}
	if !strings.Contains(string(rest), string(roots)) {
		t.Error("the roots do not follow the call's CA")
	}
	spec, _ := json.Marshal(pod.Spec)
	for k, v := range sec.Data {
		if strings.Contains(string(v), "PRIVATE KEY") || strings.Contains(string(v), secret) {
			t.Errorf("Secret key %s holds a private key or the brokered secret", k)
		}
	}
	if strings.Contains(string(spec), secret) {
		t.Error("the pod spec holds the brokered secret")
	}
	for _, k := range egress.CAEnv {
		if string(sec.Data[k]) != CAPath {
			t.Errorf("%s=%q, want %s (a granted value of the same name is replaced)", k, sec.Data[k], CAPath)
		}
	}

	// The pod: the CA key of the Secret as a read-only file; env by reference only.
	c := pod.Spec.Containers[0]
	var vol *corev1.Volume
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == caVolume {
			vol = &pod.Spec.Volumes[i]
		}
	}
	if vol == nil || vol.Secret == nil || vol.Secret.SecretName != sec.Name || len(vol.Secret.Items) != 1 ||
		vol.Secret.Items[0].Key != KeyCA || vol.Secret.Items[0].Path != path.Base(CAPath) {
		t.Fatalf("CA volume %+v", vol)
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		if m.Name == caVolume {
			mounted = m.MountPath == path.Dir(CAPath) && m.ReadOnly
		}
	}
	if !mounted {
		t.Errorf("CA mount %+v: want %s read-only", c.VolumeMounts, path.Dir(CAPath))
	}
	names := map[string]bool{}
	for _, e := range c.Env {
		if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != sec.Name ||
			e.ValueFrom.SecretKeyRef.Key != e.Name {
			t.Errorf("env %+v: want a reference to the Secret's key of the same name", e)
		}
		names[e.Name] = true
	}
	if names[KeyCA] || !names["SSL_CERT_FILE"] || !names["HTTPS_PROXY"] || !names["GREETING"] {
		t.Errorf("env names %v", names)
	}
	checkHardened(t, pod.Spec, withDefaults(call.Limits), "")

	// What the pod's TLS stack would do, with only what the Secret gives it.
	proxyURL, err := url.Parse(string(sec.Data["HTTPS_PROXY"]))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caFile) {
		t.Fatal("the CA file holds no certificate a TLS stack can load")
	}
	var issuer string
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: pool,
		VerifyConnection: func(cs tls.ConnectionState) error {
			issuer = cs.PeerCertificates[0].Issuer.String()
			return nil
		}}}}
	resp, err := hc.Get(origin.String() + "/x")
	if err != nil {
		t.Fatalf("through the proxy with the call's CA: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if issuer != caCert.Subject.String() {
		t.Errorf("the proxy's certificate was issued by %q, not the call's CA %q", issuer, caCert.Subject)
	}
	if got, _ := seen.Load().(string); got != "Bearer "+secret {
		t.Errorf("the origin got Authorization %q; want the brokered secret", got)
	}

	cancel()
	if o := await(t, done); reasonOf(t, o.err) != isolation.ReasonCanceled {
		t.Errorf("reason %v, want CANCELED", o.err)
	}
	assertPodGone(t, pod)
	assertClean(t, sb)
	// The call is over: its token no longer opens the proxy.
	if resp, err := hc.Get(origin.String() + "/y"); err == nil {
		resp.Body.Close()
		t.Error("the proxy served a request after the call ended")
	}
}

// TestFileGrantRefused: a file grant is refused in one line naming why, before any
// object is made.
func TestFileGrantRefused(t *testing.T) {
	needCluster(t)
	sb := newSandbox(t, namespace(t))
	call := testCall("files", 10*time.Second)
	call.Grant.Files = []isolation.Mount{{Guest: "/data", Host: "/srv/data", Access: manifest.AccessRead}}
	_, err := sb.Run(context.Background(), call)
	if reasonOf(t, err) != isolation.ReasonNotGranted || strings.Contains(err.Error(), "\n") ||
		!strings.Contains(err.Error(), "file grants are refused on Kubernetes (a hostPath volume would break the pod's isolation") {
		t.Errorf("got %v", err)
	}
	assertClean(t, sb)
}
