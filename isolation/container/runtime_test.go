package container

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRuntimeKernel proves which kernel answered a skill's system calls: under runsc
// (SKILLBOX_CONTAINER_RUNTIME=runsc) gVisor's, which reads its own kernel log back to
// an unprivileged process ("Starting gVisor...") and reports a uname release of its
// own; under runc the host's, whose release the test process sees too and whose kernel
// log a process without CAP_SYSLOG may not read.
func TestRuntimeKernel(t *testing.T) {
	s := newSandbox(t)
	want := os.Getenv(runtimeEnv)
	if want != "" && s.Runtime() != want {
		t.Fatalf("Runtime() = %q, want %q", s.Runtime(), want)
	}
	res, err := s.Run(context.Background(), hostileCall(`{"mode":"kernel"}`))
	if err != nil {
		t.Fatalf("Run: %v (logs %q)", err, tail(res.Logs, 300))
	}
	out := decode(t, res.Output)
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		t.Fatal(err)
	}
	hostRelease := cstring(u.Release[:])
	release, _ := out["release"].(string)
	syslog, _ := out["syslog"].(string)
	t.Logf("runtime %s: uname release %q, /proc/version %q, syslog error %q, syslog %.80q",
		s.Runtime(), release, out["procVersion"], out["syslogError"], syslog)
	gvisor := strings.Contains(syslog, "gVisor")
	if s.Runtime() == "runsc" {
		if !gvisor {
			t.Errorf("runtime runsc, but the kernel log %q does not name gVisor", syslog)
		}
		if release == hostRelease {
			t.Errorf("runtime runsc, but uname reports the host's release %q", release)
		}
		return
	}
	if gvisor {
		t.Errorf("runtime %s, but the kernel log names gVisor: %q", s.Runtime(), syslog)
	}
	if release != hostRelease {
		t.Errorf("runtime %s: uname release %q, want the host's %q", s.Runtime(), release, hostRelease)
	}
}

// The runtime every container of the sandbox runs under is the one it was given.
func TestRuntimeOfContainers(t *testing.T) {
	s := newSandbox(t)
	call := hostileCall(`{"mode":"echo"}`)
	inst, err := s.prepare(context.Background(), &spec{Skill: "hostile", Image: env.hostileID, User: nobody}, call.ID, call.Limits.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	ins, ierr := env.cli.ContainerInspect(context.Background(), inst.id)
	s.remove(inst)
	if ierr != nil {
		t.Fatal(ierr)
	}
	if ins.HostConfig.Runtime != s.Runtime() || s.Runtime() == "" {
		t.Errorf("container runtime %q, sandbox runtime %q", ins.HostConfig.Runtime, s.Runtime())
	}
}

// A runtime the engine does not know is refused when the sandbox starts, with the
// names it does know; a path is not a runtime name.
func TestUnknownRuntime(t *testing.T) {
	needEngine(t)
	_, err := New(context.Background(), WithRuntime("no-such-runtime"), WithoutReap())
	if !errors.Is(err, ErrUnknownRuntime) {
		t.Fatalf("New = %v, want ErrUnknownRuntime", err)
	}
	if !strings.Contains(err.Error(), `"no-such-runtime"`) || !strings.Contains(err.Error(), "runc") {
		t.Errorf("error %q should name the runtime asked for and those the engine has", err)
	}
	if _, err := New(context.Background(), WithRuntime("/usr/bin/runsc"), WithoutReap()); err == nil || !strings.Contains(err.Error(), "not a path") {
		t.Errorf("a path as runtime = %v, want refused", err)
	}
}

func cstring(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// BenchmarkRuntime is one cold call (container created, started, input, output,
// removal after the reply) under runc and under runsc, side by side in one run; the
// ratio of the two is gVisor's cost per call. A warm pool hides most of it (see
// BenchmarkWarmPoolCall under SKILLBOX_CONTAINER_RUNTIME=runsc).
func BenchmarkRuntime(b *testing.B) {
	needEngine(b)
	for _, rt := range []string{"runc", "runsc"} {
		b.Run(rt, func(b *testing.B) {
			opts := []Option{WithRuntime(rt)}
			if env.noFirewall != nil {
				opts = append(opts, WithoutHostFirewallUnsafe())
			}
			s, err := New(context.Background(), opts...)
			if errors.Is(err, ErrUnknownRuntime) {
				b.Skipf("SKIPPING: %v", err)
			}
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close(context.Background())
			call := hostileCall(`{"mode":"echo"}`)
			var times []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if _, err := s.Run(context.Background(), call); err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(start))
			}
			b.StopTimer()
			b.ReportMetric(float64(median(times).Microseconds())/1000, "median-ms")
		})
	}
}
