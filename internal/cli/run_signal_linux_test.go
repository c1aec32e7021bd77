package cli

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// run DIR stops on SIGTERM and SIGINT while the skill sleeps in a host call (WASI
// poll_oneoff, what time.Sleep becomes), and says so, instead of sleeping on.
func TestRunStopsOnSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	bin := buildCLI(t)
	dir := runSkillDir(t, "sleep.wasm", "limits:\n  timeout: 15m\n")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(bin, "run", dir, "--input", `{"name":"x"}`)
			cmd.Env = append(os.Environ(), "SKILLBOX_HOME="+t.TempDir())
			// Nothing outlives the test, even a test killed for hanging.
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			type exit struct {
				last string // the last stderr line
				err  error
			}
			first, exited := make(chan string, 1), make(chan exit, 1)
			go func() {
				sc := bufio.NewScanner(stderr)
				var last string
				for sc.Scan() {
					if last == "" {
						first <- sc.Text()
					}
					last = sc.Text()
				}
				exited <- exit{last, cmd.Wait()}
			}()
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			select {
			case l := <-first:
				if !strings.Contains(l, "UNVERIFIED") {
					t.Fatalf("first stderr line %q", l)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("run DIR printed nothing in 20s")
			}
			time.Sleep(300 * time.Millisecond) // into the guest's hour-long sleep
			sent := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			var e exit
			select {
			case e = <-exited:
			case <-time.After(20 * time.Second):
				t.Fatalf("run DIR still running 20s after %v", sig)
			}
			var exitErr *exec.ExitError
			if !errors.As(e.err, &exitErr) || exitErr.ExitCode() != 1 {
				t.Fatalf("exit %v, want code 1", e.err)
			}
			if took := time.Since(sent); took > 2*time.Second {
				t.Fatalf("run DIR took %v to stop after %v", took, sig)
			}
			if want := "run echo: call canceled: " + sig.String() + " signal received (CANCELED)"; !strings.HasSuffix(e.last, want) {
				t.Fatalf("last stderr line %q, want %q", e.last, want)
			}
		})
	}
}
