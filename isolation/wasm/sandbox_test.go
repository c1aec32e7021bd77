package wasm_test

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/isolation"
)

func TestEcho(t *testing.T) {
	sb := newSandbox(t)
	res, err := sb.Run(context.Background(), isolation.Call{ID: "1", Skill: watSkill(t, "echo"), Input: []byte(`{"x":"y"}`), Limits: limits()})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Output) != `{"x":"y"}` || res.Usage.OutputBytes != 9 {
		t.Fatalf("output %q, bytes %d", res.Output, res.Usage.OutputBytes)
	}
	if res.Usage.PeakMemory != 1<<16 {
		t.Fatalf("peak memory %d, want one page", res.Usage.PeakMemory)
	}
	if res.Usage.Wall <= 0 {
		t.Fatal("no wall time")
	}
}

func TestGoGuestEcho(t *testing.T) {
	sb := newSandbox(t)
	res, err := sb.Run(context.Background(), isolation.Call{ID: "1", Skill: goSkill(t, "echo"), Input: []byte(`"go"`), Limits: limits()})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Output) != `"go"` {
		t.Fatalf("output %q", res.Output)
	}
}

// Every hostile module ends with a clear error, and the same Sandbox then runs a
// good module fine.
func TestHostileModules(t *testing.T) {
	sb := newSandbox(t)
	tests := []struct {
		name   string
		skill  func(testing.TB) isolation.Skill
		input  string
		limits func(*isolation.Limits)
		reason isolation.Reason
		msg    string // substring of the error
		words  string // the skill's own words, for the caller only (never in msg)
		check  func(*testing.T, isolation.Result)
	}{
		{name: "infinite loop", skill: wat("loop"), reason: isolation.ReasonTimeout, msg: "time budget",
			limits: func(l *isolation.Limits) { l.Timeout = 200 * time.Millisecond },
			check: func(t *testing.T, r isolation.Result) {
				if r.Usage.Wall > 5*time.Second {
					t.Errorf("loop ran %v", r.Usage.Wall)
				}
			}},
		{name: "4 GiB memory declared", skill: wat("bigmem"), reason: isolation.ReasonMemory, msg: "module declares 4GiB of memory, the budget is "},
		{name: "4 GiB memory not exported", skill: wat("hiddenmem"), reason: isolation.ReasonMemory, msg: "initial memory"},
		{name: "memory grows without end", skill: wat("growmem"), reason: isolation.ReasonMemory, msg: "memory budget of 8MiB",
			limits: func(l *isolation.Limits) { l.Memory = 8 << 20 },
			check: func(t *testing.T, r isolation.Result) {
				// 1 page, then 16 pages a grow: the last grow that fit ends at 113 pages.
				if r.Usage.PeakMemory != 113<<16 {
					t.Errorf("peak %d, want 113 pages", r.Usage.PeakMemory)
				}
			}},
		{name: "go guest allocates without end", skill: goSkill1("probe"), input: `{"op":"hog"}`, reason: isolation.ReasonMemory,
			limits: func(l *isolation.Limits) { l.Memory = 32 << 20 },
			check: func(t *testing.T, r isolation.Result) {
				if r.Usage.PeakMemory > 32<<20 || r.Usage.PeakMemory < 16<<20 {
					t.Errorf("peak %d", r.Usage.PeakMemory)
				}
			}},
		{name: "stdout flood", skill: wat("stdoutflood"), reason: isolation.ReasonOutput, msg: "output budget of 10KB",
			limits: func(l *isolation.Limits) { l.Output = 10000 },
			check: func(t *testing.T, r isolation.Result) {
				if len(r.Output) != 10000 {
					t.Errorf("kept %d bytes of stdout", len(r.Output))
				}
			}},
		{name: "stderr flood", skill: wat("stderrflood"), reason: isolation.ReasonLogs, msg: "log budget of 5KB",
			limits: func(l *isolation.Limits) { l.Logs = 5000 },
			check: func(t *testing.T, r isolation.Result) {
				if len(r.Logs) != 5000 {
					t.Errorf("kept %d bytes of stderr", len(r.Logs))
				}
			}},
		{name: "trap", skill: wat("trap"), reason: isolation.ReasonSkillFailed, msg: "unreachable"},
		{name: "non-zero exit", skill: wat("exit"), reason: isolation.ReasonSkillFailed, msg: "exited with code 3 after writing 25 bytes to stderr",
			words: "bad input: no name",
			check: func(t *testing.T, r isolation.Result) {
				if string(r.Logs) != "noise\nbad input: no name\n" {
					t.Errorf("logs %q", r.Logs)
				}
			}},
		{name: "table declared too large", skill: wat("bigtable"), reason: isolation.ReasonInvalidModule, msg: "tables declare 2097152 entries"},
		{name: "unknown import", skill: wat("unknownimport"), reason: isolation.ReasonInvalidModule, msg: "env.launch_missiles"},
		{name: "network import without grant", skill: wat("netimport"), reason: isolation.ReasonNotGranted, msg: "network"},
		{name: "no _start", skill: wat("nostart"), reason: isolation.ReasonInvalidModule, msg: "_start"},
		{name: "digest mismatch", skill: func(tb testing.TB) isolation.Skill {
			s := watSkill(tb, "echo")
			s.Digest = "sha256:" + strings.Repeat("0", 64)
			return s
		}, reason: isolation.ReasonInvalidModule, msg: "expected sha256:0000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := limits()
			if tc.limits != nil {
				tc.limits(&l)
			}
			input := tc.input
			if input == "" {
				input = "{}"
			}
			res, err := sb.Run(context.Background(), isolation.Call{ID: tc.name, Skill: tc.skill(t), Input: []byte(input), Limits: l})
			ie := requireReason(t, err, tc.reason)
			if !strings.Contains(ie.Error(), tc.msg) {
				t.Errorf("error %q does not contain %q", ie.Error(), tc.msg)
			}
			// Skills echo their input on stderr: it goes to the caller, not into the
			// message that is logged.
			if ie.SkillMsg != tc.words || (tc.words != "" && strings.Contains(ie.Error(), tc.words)) {
				t.Errorf("skill's words %q, error %q; want words %q and an error without them", ie.SkillMsg, ie.Error(), tc.words)
			}
			if tc.check != nil {
				tc.check(t, res)
			}
			requireEcho(t, sb)
		})
	}
}

func wat(name string) func(testing.TB) isolation.Skill {
	return func(tb testing.TB) isolation.Skill { return watSkill(tb, name) }
}

func goSkill1(name string) func(testing.TB) isolation.Skill {
	return func(tb testing.TB) isolation.Skill { return goSkill(tb, name) }
}

func TestCallerCancel(t *testing.T) {
	sb := newSandbox(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := sb.Run(ctx, isolation.Call{ID: "c", Skill: watSkill(t, "loop"), Input: []byte("{}"), Limits: limits()})
	requireReason(t, err, isolation.ReasonCanceled)
	requireEcho(t, sb)
}

type probeOut struct {
	OK    bool     `json:"ok"`
	Data  string   `json:"data"`
	Error string   `json:"error"`
	Env   []string `json:"env"`
	Args  []string `json:"args"`
}

func runProbe(t *testing.T, sb *isolation.Sandbox, call isolation.Call) probeOut {
	t.Helper()
	res, err := (*sb).Run(context.Background(), call)
	if err != nil {
		t.Fatalf("probe: %v (logs %q)", err, res.Logs)
	}
	var out probeOut
	if err := json.Unmarshal(res.Output, &out); err != nil {
		t.Fatalf("probe output %q: %v", res.Output, err)
	}
	return out
}

func TestEnvAndArgs(t *testing.T) {
	t.Setenv("SKILLBOX_TEST_SECRET", "host-only")
	var sb isolation.Sandbox = newSandbox(t)
	skill := goSkill(t, "probe")

	out := runProbe(t, &sb, isolation.Call{ID: "1", Skill: skill, Input: []byte(`{"op":"env"}`), Limits: limits()})
	if len(out.Env) != 0 {
		t.Errorf("ungranted call sees env %q", out.Env)
	}
	if len(out.Args) != 1 || out.Args[0] != "test-skill" {
		t.Errorf("args %q, want only the skill name", out.Args)
	}

	out = runProbe(t, &sb, isolation.Call{ID: "2", Skill: skill, Input: []byte(`{"op":"env"}`), Limits: limits(),
		Grant: isolation.Grant{Env: map[string]string{"LANG": "C.UTF-8"}}})
	if len(out.Env) != 1 || out.Env[0] != "LANG=C.UTF-8" {
		t.Errorf("granted env %q, want only LANG", out.Env)
	}
}

func TestConcurrentCalls(t *testing.T) {
	sb := newSandbox(t)
	skill := watSkill(t, "echo")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := []byte(strings.Repeat("x", i+1))
			res, err := sb.Run(context.Background(), isolation.Call{ID: "c", Skill: skill, Input: in, Limits: limits()})
			if err == nil && string(res.Output) != string(in) {
				err = &isolation.Error{Reason: isolation.ReasonInternal, Msg: "crossed output " + string(res.Output)}
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// A table cannot be grown outside the memory budget: table.grow past the cap the
// sandbox puts on every table fails inside the guest, and the host allocates nothing.
func TestTableGrowIsCapped(t *testing.T) {
	sb := newSandbox(t)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := sb.Run(context.Background(), isolation.Call{ID: "t", Skill: watSkill(t, "tablegrow"), Input: []byte("{}"), Limits: limits()})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Output) != `{"grew":false}` {
		t.Fatalf("output %s: the table grew by 64 Mi entries", res.Output)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("the host allocated %d MiB during the call", grew>>20)
	}
}
