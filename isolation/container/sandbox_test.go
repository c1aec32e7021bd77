package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// TestHostile runs each hostile behaviour in a fresh container and checks that it
// ends with the right outcome and that its container is gone.
func TestHostile(t *testing.T) {
	s := newSandbox(t)
	ro, rw := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ro, "data.txt"), []byte("granted"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The skill runs as 65534. Both are open to it by their modes, so only the mount's
	// read-only flag can refuse a write (gVisor checks modes first).
	for _, d := range []string{ro, rw} {
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	mounts := func(c *isolation.Call) {
		c.Grant.Files = []isolation.Mount{
			{Guest: "/data", Host: ro, Access: manifest.AccessRead},
			{Guest: "/out", Host: rw, Access: manifest.AccessReadWrite},
		}
	}
	tests := []struct {
		name   string
		input  string
		modify func(*isolation.Call)
		reason isolation.Reason // "" for success
		check  func(t *testing.T, out map[string]any, res isolation.Result, err error)
	}{
		{name: "echo runs as nobody", input: `{"mode":"echo"}`, check: func(t *testing.T, out map[string]any, res isolation.Result, _ error) {
			if out["uid"] != 65534.0 || out["gid"] != 65534.0 {
				t.Errorf("uid/gid = %v/%v, want 65534", out["uid"], out["gid"])
			}
			if !strings.Contains(string(res.Logs), "mode echo") {
				t.Errorf("logs = %q", res.Logs)
			}
			if res.Usage.OutputBytes != int64(len(res.Output)) || res.Usage.Wall <= 0 {
				t.Errorf("usage = %+v", res.Usage)
			}
		}},
		{name: "non-zero exit", input: `{"mode":"fail"}`, reason: isolation.ReasonSkillFailed, check: func(t *testing.T, _ map[string]any, _ isolation.Result, err error) {
			// The stderr tail is the skill's words, for the caller only.
			if !strings.Contains(isolation.SkillMessage(err), "failing on purpose") || strings.Contains(err.Error(), "failing on purpose") {
				t.Errorf("the stderr tail %q should be the skill's words, not in the error %q", isolation.SkillMessage(err), err)
			}
		}},
		{name: "fork bomb hits the pids limit", input: `{"mode":"forkbomb"}`, reason: isolation.ReasonSkillFailed, check: func(t *testing.T, _ map[string]any, _ isolation.Result, err error) {
			if s.GVisor() {
				// The pids cgroup counts gVisor's host tasks; past it gVisor's kernel cannot
				// make a thread and the whole sandbox ends (exit 2), before the skill could
				// say anything more than its first line.
				if words := isolation.SkillMessage(err); strings.Contains(words, "spawned") || !strings.Contains(words, "mode forkbomb") {
					t.Errorf("fork bomb under gVisor: %v (%q), want the sandbox ended", err, words)
				}
				return
			}
			if words := isolation.SkillMessage(err); !strings.Contains(words, "resource temporarily unavailable") && !strings.Contains(words, "thread") {
				t.Errorf("fork bomb stopped for another reason: %v", err)
			}
		}},
		{name: "memory bomb is OOM-killed", input: `{"mode":"membomb"}`, reason: isolation.ReasonMemory},
		{name: "root filesystem is read-only", input: `{"mode":"writeroot"}`, check: func(t *testing.T, out map[string]any, _ isolation.Result, _ error) {
			// A file the skill owns is refused by the read-only root alone.
			if !strings.Contains(out["owned"].(string), "read-only file system") {
				t.Errorf("write to /owned (the skill's) = %q, want read-only file system", out["owned"])
			}
			// A new file in / (root's, 0755): Linux checks the read-only mount first;
			// gVisor checks the directory's mode first, so refuses with EACCES.
			want := "read-only file system"
			if s.GVisor() {
				want = "permission denied"
			}
			if !strings.Contains(out["root"].(string), want) {
				t.Errorf("write to / = %q, want %s", out["root"], want)
			}
			if out["tmp"] != "" {
				t.Errorf("write to /tmp failed: %v", out["tmp"])
			}
		}},
		{name: "dropped capabilities", input: `{"mode":"privileged"}`, check: func(t *testing.T, out map[string]any, _ isolation.Result, _ error) {
			for _, k := range []string{"chown", "raw"} {
				want := "operation not permitted"
				if k == "raw" && s.GVisor() {
					// gVisor on the host's network namespace has no raw sockets at all.
					want = "address family not supported by protocol"
				}
				if !strings.Contains(out[k].(string), want) {
					t.Errorf("%s = %q, want %s", k, out[k], want)
				}
			}
		}},
		{name: "timeout kills", input: `{"mode":"sleep","sleep":"60s"}`, reason: isolation.ReasonTimeout,
			modify: func(c *isolation.Call) { c.Limits.Timeout = 2 * time.Second }},
		{name: "stdout flood", input: `{"mode":"flood"}`, reason: isolation.ReasonOutput, check: func(t *testing.T, _ map[string]any, res isolation.Result, err error) {
			if len(res.Output) != 64<<10 {
				t.Errorf("kept %d bytes of stdout, want exactly the cap", len(res.Output))
			}
			// The budget in the manifest's units, not raw bytes.
			if err == nil || !strings.Contains(err.Error(), "stdout exceeded 64KiB; container killed") {
				t.Errorf("error %v, want the budget as 64KiB", err)
			}
		}},
		{name: "stderr flood", input: `{"mode":"logflood"}`, reason: isolation.ReasonLogs},
		{name: "dns lookup fails inside the container", input: `{"mode":"lookup","name":"example.invalid"}`, check: func(t *testing.T, out map[string]any, _ isolation.Result, _ error) {
			e, _ := out["error"].(string)
			if !strings.Contains(e, "127.0.0.1:53") {
				t.Errorf("lookup error = %q, want a refusal by the container's own loopback", e)
			}
		}},
		{name: "open files are capped", input: `{"mode":"fds"}`, check: func(t *testing.T, out map[string]any, _ isolation.Result, _ error) {
			if out["hard"] != float64(DefaultNofile) || out["soft"] != float64(DefaultNofile) {
				t.Errorf("nofile limit = %v/%v, want %d", out["soft"], out["hard"], DefaultNofile)
			}
			if n, _ := out["opened"].(float64); n >= DefaultNofile || !strings.Contains(fmt.Sprint(out["error"]), "too many open files") {
				t.Errorf("opened %v files (%v), want fewer than %d and EMFILE", out["opened"], out["error"], DefaultNofile)
			}
		}},
		{name: "env holds only the grant", input: `{"mode":"env"}`,
			modify: func(c *isolation.Call) { c.Grant.Env = map[string]string{"LANG": "C.UTF-8"} },
			check: func(t *testing.T, out map[string]any, _ isolation.Result, _ error) {
				var lang bool
				for _, v := range out["env"].([]any) {
					name, _, _ := strings.Cut(v.(string), "=")
					switch name {
					case "LANG":
						lang = v == "LANG=C.UTF-8"
					case "PATH", "HOSTNAME", "HOME": // set by the engine and runc
					default:
						t.Errorf("unexpected env %q", v)
					}
				}
				if !lang {
					t.Errorf("granted LANG missing: %v", out["env"])
				}
			}},
		{name: "read-only mount is readable", input: `{"mode":"read","path":"/data/data.txt"}`, modify: mounts,
			check: func(t *testing.T, out map[string]any, _ isolation.Result, _ error) {
				if out["data"] != "granted" {
					t.Errorf("read = %v", out)
				}
			}},
		{name: "read-only mount cannot be written", input: `{"mode":"write","path":"/data/new.txt"}`, modify: mounts,
			check: func(t *testing.T, out map[string]any, _ isolation.Result, _ error) {
				if !strings.Contains(out["error"].(string), "read-only file system") {
					t.Errorf("write = %v, want read-only file system", out)
				}
				if _, err := os.Stat(filepath.Join(ro, "new.txt")); err == nil {
					t.Error("the file appeared on the host")
				}
			}},
		{name: "read-write mount can be written", input: `{"mode":"write","path":"/out/new.txt"}`, modify: mounts,
			check: func(t *testing.T, out map[string]any, _ isolation.Result, _ error) {
				if out["error"] != "" {
					t.Errorf("write = %v", out)
				}
				if _, err := os.Stat(filepath.Join(rw, "new.txt")); err != nil {
					t.Errorf("file not on the host: %v", err)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			call := hostileCall(tc.input)
			if tc.modify != nil {
				tc.modify(&call)
			}
			res, err := s.Run(context.Background(), call)
			if got := isolation.ReasonOf(err); tc.reason == "" && err != nil || tc.reason != "" && got != tc.reason {
				t.Fatalf("Run = %v (reason %s), want reason %q; logs %q", err, got, tc.reason, tail(res.Logs, 300))
			}
			t.Logf("Run: err=%v output=%.200q", err, res.Output)
			var out map[string]any
			if err == nil {
				out = decode(t, res.Output)
			}
			if tc.check != nil {
				tc.check(t, out, res, err)
			}
			if err != nil {
				// A failed call's container is removed before Run returns.
				assertGone(t, call.ID)
			}
		})
	}
}

func assertGone(t *testing.T, callID string) {
	t.Helper()
	cs, err := env.cli.ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", LabelCall+"="+callID))})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Errorf("container of call %s still exists (%s)", callID, cs[0].State)
	}
}

func TestHardening(t *testing.T) {
	s := newSandbox(t, WithPidsLimit(32))
	call := hostileCall(`{"mode":"sleep","sleep":"30s"}`)
	call.Limits.CPU = 0.5
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _, err := s.Run(ctx, call); done <- err }()
	var c container.InspectResponse
	deadline := time.Now().Add(15 * time.Second)
	for {
		cs, err := env.cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelCall+"="+call.ID))})
		if err == nil && len(cs) == 1 {
			c, err = env.cli.ContainerInspect(ctx, cs[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("container never appeared")
		}
		time.Sleep(50 * time.Millisecond)
	}
	hc := c.HostConfig
	checks := []struct {
		what string
		ok   bool
	}{
		{"user 65534:65534", c.Config.User == "65534:65534"},
		{"cap drop ALL", len(hc.CapDrop) == 1 && hc.CapDrop[0] == "ALL" && len(hc.CapAdd) == 0},
		{"no-new-privileges", len(hc.SecurityOpt) == 1 && strings.HasPrefix(hc.SecurityOpt[0], "no-new-privileges")},
		{"read-only root", hc.ReadonlyRootfs},
		{"not privileged", !hc.Privileged},
		{"network none", hc.NetworkMode == "none"},
		{"memory", hc.Memory == 32<<20 && hc.MemorySwap == 32<<20},
		{"cpu", hc.NanoCPUs == 5e8},
		{"pids", hc.PidsLimit != nil && *hc.PidsLimit == 32+map[bool]int64{true: GVisorPidsAllowance}[s.GVisor()]},
		{"runtime", hc.Runtime == s.Runtime()},
		{"tmpfs /tmp capped", strings.Contains(hc.Tmpfs["/tmp"], "size=16m") && strings.Contains(hc.Tmpfs["/tmp"], "noexec")},
		{"no auto remove", !hc.AutoRemove},
		{"labels", c.Config.Labels[LabelManaged] == "true" && c.Config.Labels[LabelSkill] == "hostile" && c.Config.Labels[LabelInstance] == s.Instance()},
		{"only the resolv.conf mount", len(c.Mounts) == 1 && c.Mounts[0].Destination == "/etc/resolv.conf" && !c.Mounts[0].RW},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("hardening: %s not set: %+v", ch.what, hc)
		}
	}
	cancel()
	err := <-done
	if isolation.ReasonOf(err) != isolation.ReasonCanceled {
		t.Errorf("canceled call = %v, want CANCELED", err)
	}
	assertGone(t, call.ID)
}

func TestBadCalls(t *testing.T) {
	s := newSandbox(t)
	call := hostileCall(`{"mode":"echo"}`)
	call.Skill.Digest = "sha256:" + strings.Repeat("0", 64)
	call.Skill.Manifest.Sandbox.Container.ID = call.Skill.Digest
	_, err := s.Run(context.Background(), call)
	if isolation.ReasonOf(err) != isolation.ReasonInvalidModule {
		t.Fatalf("missing image = %v, want INVALID_CODE", err)
	}
	call.Skill.Digest = "latest"
	_, err = s.Run(context.Background(), call)
	if isolation.ReasonOf(err) != isolation.ReasonInvalidModule {
		t.Fatalf("bad digest = %v, want INVALID_CODE", err)
	}
	for _, m := range []isolation.Mount{{Guest: "data", Host: t.TempDir()}, {Guest: "/data", Host: "rel"}, {Guest: "/", Host: t.TempDir()}} {
		call = hostileCall(`{"mode":"echo"}`)
		call.Grant.Files = []isolation.Mount{m}
		if _, err := s.Run(context.Background(), call); err == nil || !strings.Contains(err.Error(), "absolute and clean") {
			t.Errorf("mount %+v = %v, want refused", m, err)
		}
	}
	call = hostileCall(`{"mode":"echo"}`)
	call.Skill.Manifest.Sandbox.Container.Command = []string{"/does-not-exist"}
	_, err = s.Run(context.Background(), call)
	if err == nil {
		t.Fatal("a missing entrypoint ran")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("missing entrypoint hung: %v", err)
	}
	assertGone(t, call.ID)
}

// tail is the last n bytes of a skill's logs, for failure messages.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
}
