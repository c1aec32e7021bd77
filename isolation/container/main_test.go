package container

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// The engine and the test image, set up once per test binary run.
var env struct {
	cli       *client.Client
	err       error  // why there is no engine
	hostileID string // image ID of testdata/hostile
	hostile   string // its tag
	binDir    string
	// noFirewall says why the host firewall cannot be used here (iptables needs root);
	// nil where it can. Without it the sandboxes run WithoutHostFirewallUnsafe and the tests
	// that need it skip, saying so.
	noFirewall error
}

// runtimeEnv names the OCI runtime the container tests run under (e.g. runsc); empty
// is the engine's default. `make test` runs this package's tests once with it unset
// and once with runsc.
const runtimeEnv = "SKILLBOX_CONTAINER_RUNTIME"

// withTestRuntime adds the runtime runtimeEnv names, if any, to a sandbox's options.
func withTestRuntime(opts []Option) []Option {
	if rt := os.Getenv(runtimeEnv); rt != "" {
		return append(opts, WithRuntime(rt))
	}
	return opts
}

func TestMain(m *testing.M) {
	// The test binary also plays a watchdog and a server to be killed (watchdog_test.go).
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case watchdogRole:
			os.Exit(watchdogChild(os.Args[2:]))
		case serverRole:
			os.Exit(serverChild(os.Args[2:]))
		}
	}
	if os.Getenv(childDirEnv) != "" { // a child test process (see runAsServer)
		os.Exit(childMain(m))
	}
	code := func() int {
		ctx := context.Background()
		cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = cli.Ping(pctx)
			cancel()
		}
		if err != nil {
			env.err = err
			return m.Run()
		}
		defer cli.Close()
		if rt := os.Getenv(runtimeEnv); rt != "" {
			info, err := cli.Info(ctx)
			if err == nil && info.Runtimes[rt].Path == "" {
				err = fmt.Errorf("the engine has no runtime %q (scripts/docker-runsc.sh registers runsc)", rt)
			}
			if err != nil {
				env.err = err // every test skips, or fails under SKILLBOX_REQUIRE_DOCKER=1
				return m.Run()
			}
			fmt.Fprintf(os.Stderr, "container tests: OCI runtime %s (%s)\n", rt, runtimeEnv)
		}
		env.cli = cli
		if err := iptables(ctx, "-S", "INPUT"); err != nil {
			env.noFirewall = err
			fmt.Fprintf(os.Stderr, "WARNING: host firewall tests will skip: %v\n", err)
		}
		dir, err := os.MkdirTemp("", "skillbox-container-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		env.binDir = dir
		env.hostile = fmt.Sprintf("skillbox-test/hostile:%d", os.Getpid())
		// /owned: a file of the skill's user, which only the read-only root keeps it from
		// writing.
		env.hostileID, err = buildImage(ctx, cli, "./testdata/hostile", "hostile", env.hostile, "COPY --chown=65534:65534 hostile /owned\n")
		if err != nil {
			fmt.Fprintln(os.Stderr, "build test image:", err)
			return 1
		}
		defer cli.ImageRemove(ctx, env.hostileID, image.RemoveOptions{Force: true, PruneChildren: true})
		code := m.Run()
		if code == 0 {
			if left := leftovers(ctx, cli, LabelPID+"="+fmt.Sprint(os.Getpid())); left != "" {
				fmt.Fprintln(os.Stderr, "FAIL: skillbox objects left behind:", left)
				return 1
			}
		}
		return code
	}()
	os.Exit(code)
}

// buildImage compiles a static Go program and builds a FROM scratch image of it
// through the engine's build API. extra is appended to the Dockerfile.
func buildImage(ctx context.Context, cli *client.Client, pkg, bin, tag, extra string) (string, error) {
	dockerfile := "FROM scratch\nCOPY " + bin + " /" + bin + "\nENTRYPOINT [\"/" + bin + "\"]\n" + extra
	return buildImageWith(ctx, cli, pkg, bin, tag, dockerfile)
}

// buildImageWith builds a static Go program into an image with the given Dockerfile,
// whose context holds just the binary, named bin.
func buildImageWith(ctx context.Context, cli *client.Client, pkg, bin, tag, dockerfile string) (string, error) {
	// Image IDs are content addresses: without a label of its own, this run's image would
	// be the same image as another run's, and that run's cleanup would delete it.
	dockerfile += "\nLABEL dev.skillbox.test-run=" + filepath.Base(env.binDir) + "\n"
	out := filepath.Join(env.binDir, bin)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	exe, err := os.ReadFile(out)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {bin, 0o755, exe}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			return "", err
		}
		if msg.Error != "" {
			return "", fmt.Errorf("build %s: %s", tag, msg.Error)
		}
	}
	ins, err := cli.ImageInspect(ctx, tag)
	if err != nil {
		return "", err
	}
	return ins.ID, nil
}

// leftovers lists containers and networks carrying label (key=value).
func leftovers(ctx context.Context, cli *client.Client, label string) string {
	f := filters.NewArgs(filters.Arg("label", label))
	var left []string
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return err.Error()
	}
	for _, c := range cs {
		left = append(left, "container "+c.ID[:12]+" "+c.State)
	}
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return err.Error()
	}
	for _, n := range ns {
		// An empty network the engine refuses to remove for an endpoint of a container
		// long gone (moby/moby#42119, Docker 20.10) holds nothing and runs nothing: the
		// sandbox reports it and so does not this check.
		if stale, _ := removeNet(ctx, cli, n.ID, 0); stale {
			continue
		}
		left = append(left, "network "+n.Name)
	}
	return strings.Join(left, ", ")
}

// needEngine skips loudly without an engine, or fails when CI requires one.
func needEngine(t testing.TB) {
	t.Helper()
	if env.cli != nil {
		return
	}
	if os.Getenv("SKILLBOX_REQUIRE_DOCKER") == "1" {
		t.Fatalf("SKILLBOX_REQUIRE_DOCKER=1 but no docker engine answers: %v", env.err)
	}
	t.Skipf("SKIPPING: no docker engine answers (%v); set SKILLBOX_REQUIRE_DOCKER=1 to make this a failure", env.err)
}

// newSandbox returns a Sandbox that is closed at the end of the test, after which
// nothing it created may remain.
func newSandbox(t testing.TB, opts ...Option) *Sandbox {
	t.Helper()
	needEngine(t)
	if env.noFirewall != nil {
		opts = append(opts, WithoutHostFirewallUnsafe())
	}
	s, err := New(context.Background(), withTestRuntime(opts)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
		if left := leftovers(context.Background(), env.cli, LabelInstance+"="+s.Instance()); left != "" {
			t.Errorf("left behind after Close: %s", left)
		}
	})
	return s
}

// hostileCall is a call of the test skill with the given input and tight limits,
// the ones the operator granted (the caller lowers none).
func hostileCall(input string) isolation.Call {
	return isolation.Call{
		ID: "call-" + randomID(),
		Skill: isolation.Skill{
			Manifest: &manifest.Manifest{
				APIVersion: manifest.APIVersion, Name: "hostile", Version: "0.0.1",
				Sandbox: manifest.Sandbox{Container: &manifest.ContainerSandbox{Image: "image.tar", ID: env.hostileID}},
			},
			Digest: env.hostileID,
		},
		Input:   []byte(input),
		Limits:  isolation.Limits{Timeout: 20 * time.Second, Memory: 32 << 20, Output: 64 << 10, Logs: 16 << 10, CPU: 1},
		Granted: isolation.Limits{Timeout: 20 * time.Second, Memory: 32 << 20, Output: 64 << 10, Logs: 16 << 10, CPU: 1},
	}
}

// decode parses a skill's JSON reply.
func decode(t *testing.T, out []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("output is not JSON: %v: %q", err, out)
	}
	return v
}

// needFirewall skips a test that proves what the host firewall does, where iptables
// cannot run (not root): loudly, never silently.
func needFirewall(t *testing.T) {
	t.Helper()
	if env.noFirewall != nil {
		t.Skipf("SKIPPED: the host firewall is unavailable here (%v)", env.noFirewall)
	}
}
