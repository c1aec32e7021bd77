package cli

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// A real server started with --metrics: before any call the series an operator alerts
// on are there at zero, the build and the skills are described, and /healthz answers
// 200 while serving and 503 once the drain starts. After calls, outcomes are one
// convention (lower case).
func TestMetricsAtZeroAndHealth(t *testing.T) {
	bin := signBuildCLI(t)
	op := newOperatorHome(t, bin)
	pkg := writeWasmSkill(t, op.work, "sl", filepath.Join("..", "..", "isolation", "wasm", "testdata", "sleep.wasm"), "limits: {timeout: 15m}\n")
	op.must("pack", pkg)
	op.must("sign", pkg, "--key", filepath.Join(op.work, "release.key"))
	op.must("install", pkg)
	op.must("approve", "sl", "--yes", "--by", "test")
	srv, srvLog := startServer(t, op, "--no-container", "--metrics", "127.0.0.1:0", "--drain", "3s")

	var addr string
	waitUntil(t, "the metrics address", func() bool {
		m := regexp.MustCompile(`metrics on http://([0-9.:]+)/metrics`).FindStringSubmatch(srvLog.String())
		if m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}

	if code, body := get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz while serving: %d %q", code, body)
	}
	_, body := get("/metrics")
	for _, want := range []string{
		`skillbox_egress_decisions_total{decision="allowed",skill="echo"} 0`,
		`skillbox_egress_decisions_total{decision="denied",skill="echo"} 0`,
		`skillbox_budget_exhausted_total{kind="time",skill="echo"} 0`,
		`skillbox_budget_exhausted_total{kind="memory",skill="echo"} 0`,
		`skillbox_verification_failures_total{reason="signature"} 0`,
		`skillbox_verification_failures_total{reason="code-digest"} 0`,
		`skillbox_skills{state="installed"} 2`,
		`skillbox_skills{state="approved"} 2`,
		`skillbox_skills{state="disabled"} 0`,
		`skillbox_warm_instances{sandbox="wasm"} 0`,
		`skillbox_audit_append_failures_total 0`,
		`skillbox_audit_append_seconds_count `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics before any call lack %q", want)
		}
	}
	if !regexp.MustCompile(`skillbox_build_info\{commit="[^"]*",goversion="go1\.[^"]+",version="[^"]+"\} 1`).MatchString(body) {
		t.Errorf("no skillbox_build_info:\n%s", grepLines(body, "build_info"))
	}

	op.must("invoke", "echo", "--input", `{"a":1}`)
	signRunCLI(t, bin, op.env, "invoke", "echo", "--input", `[]`) // INVALID_INPUT
	op.must("disable", "echo")
	_, body = get("/metrics")
	for _, want := range []string{
		`skillbox_calls_total{door="grpc",outcome="ok",skill="echo"} 1`,
		`skillbox_calls_total{door="grpc",outcome="invalid_input",skill="echo"} 1`,
		`skillbox_skills{state="disabled"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics after calls lack %q:\n%s", want, grepLines(body, "skillbox_calls_total", "skillbox_skills"))
		}
	}
	if regexp.MustCompile(`outcome="[^"]*[A-Z][^"]*"`).MatchString(body) {
		t.Errorf("an outcome label in upper case:\n%s", grepLines(body, "outcome="))
	}

	// Draining: a call in flight holds the drain open while /healthz says 503.
	inv := exec.Command(bin, "invoke", "sl", "--input", "{}")
	inv.Env = append(os.Environ(), op.env...)
	if err := inv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inv.Process.Kill(); _ = inv.Wait() })
	waitUntil(t, "the call to be in flight", func() bool {
		return strings.Contains(signRunCLI(t, bin, op.env, "calls").stdout, " sl ")
	})
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "/healthz to answer 503 while draining", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			t.Fatalf("/healthz during the drain: %v (server log: %s)", err, srvLog)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	if err := srv.Wait(); err != nil {
		t.Fatalf("serve: %v: %s", err, srvLog)
	}
}

// grepLines returns body's lines containing any of subs, for failure messages.
func grepLines(body string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		for _, s := range subs {
			if strings.Contains(l, s) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
