package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func appendN(t testing.TB, l *Log, n int) {
	t.Helper()
	for i := range n {
		_, err := l.Append(context.Background(), Record{
			Event: EventInvokeEnd, Caller: "uid:1000", Skill: "http-fetch", Version: "1.2.0",
			ManifestDigest: "sha256:aa", CodeDigest: "sha256:bb", CallID: fmt.Sprintf("c%d", i),
			Outcome: "ok", Usage: &Usage{WallMS: 3, OutputBytes: 10},
			Details: map[string]any{"i": i},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func newLog(t testing.TB, n int) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, n)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, strings.SplitAfter(string(b), "\n")[:n]
}

func TestAppendVerifyReopen(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	id, err := l.Append(context.Background(), Record{Event: EventInstall, Skill: "x"})
	if err != nil || id != "1" {
		t.Fatalf("first append id=%q err=%v", id, err)
	}
	l.Close()
	if _, err := l.Append(context.Background(), Record{Event: EventInstall}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	// Reopen continues the chain.
	l, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	id, err = l.Append(context.Background(), Record{Event: EventApprove, Skill: "x"})
	if err != nil || id != "2" {
		t.Fatalf("append after reopen id=%q err=%v", id, err)
	}
	l.Close()
	f, _ := os.Open(filepath.Join(dir, FileName))
	defer f.Close()
	n, head, err := VerifyReader(f)
	if err != nil || n != 2 || len(head) != 64 {
		t.Fatalf("verify: n=%d head=%q err=%v", n, head, err)
	}
	if seq, h := l.Head(); seq != 2 || h != head {
		t.Fatalf("Head() = %d %s, Verify's head %s", seq, h, head)
	}
	st, _ := os.Stat(filepath.Join(dir, FileName))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(filepath.Join(dir, FileName))
	first := strings.SplitN(string(b), "\n", 2)[0]
	for _, want := range []string{`{"seq":1,"time":"`, `"event":"install"`, `"prev":"` + Genesis + `"`} {
		if !strings.Contains(first, want) {
			t.Errorf("first line %s lacks %s", first, want)
		}
	}
}

func TestTamper(t *testing.T) {
	const n = 6
	path, lines := newLog(t, n)
	if err := Verify(path); err != nil {
		t.Fatalf("untouched log: %v", err)
	}
	// Re-sealing an edited line (recomputing its own hash) moves detection to the next line.
	resealed := func(s string) string {
		e, _ := parseLine([]byte(strings.TrimSuffix(s, "\n")))
		e.Outcome = "error"
		line, _ := encode(unhashed{Seq: e.Seq, Time: e.Time, Record: e.Record, Prev: e.Prev})
		return string(line)
	}
	cases := []struct {
		name     string
		edit     func(l []string) []string
		wantLine int
	}{
		{"edit a field", func(l []string) []string {
			l[2] = strings.Replace(l[2], `"outcome":"ok"`, `"outcome":"no"`, 1)
			return l
		}, 3},
		{"edit and reseal", func(l []string) []string { l[2] = resealed(l[2]); return l }, 4},
		{"drop a line", func(l []string) []string { return append(l[:2:2], l[3:]...) }, 3},
		{"drop the first line", func(l []string) []string { return l[1:] }, 1},
		{"insert a line", func(l []string) []string {
			return append(append(l[:4:4], l[1]), l[4:]...)
		}, 5},
		{"reorder two lines", func(l []string) []string { l[1], l[2] = l[2], l[1]; return l }, 2},
		{"truncate the last line", func(l []string) []string {
			l[n-1] = l[n-1][:len(l[n-1])/2]
			return l
		}, n},
		{"last line loses its newline", func(l []string) []string {
			l[n-1] = strings.TrimSuffix(l[n-1], "\n")
			return l
		}, n},
		{"garbage line", func(l []string) []string { l[0] = "{}\n"; return l }, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mod := tc.edit(append([]string(nil), lines...))
			p := filepath.Join(t.TempDir(), FileName)
			if err := os.WriteFile(p, []byte(strings.Join(mod, "")), 0o600); err != nil {
				t.Fatal(err)
			}
			err := Verify(p)
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("Verify = %v, want a ChainError", err)
			}
			if ce.Line != tc.wantLine {
				t.Fatalf("Verify names line %d (%v), want line %d", ce.Line, err, tc.wantLine)
			}
		})
	}
}

func TestOpenRefusesCorruptTail(t *testing.T) {
	_, lines := newLog(t, 3)
	for name, tc := range map[string]struct {
		content     string
		recoverable bool // a bad last line after lines that chain: Open names audit recover
	}{
		"truncated last line":     {strings.Join(lines[:2], "") + lines[2][:40], true},
		"edited last line":        {strings.Join(lines[:2], "") + strings.Replace(lines[2], `"ok"`, `"no"`, 1), true},
		"garbage after a line":    {lines[0] + "not json\n", true},
		"empty last line":         {strings.Join(lines, "") + "\n", true},
		"dropped middle line":     {lines[0] + lines[2], true}, // the last line does not chain
		"orphan first line":       {lines[1], false},           // the log's start was cut
		"edited line before last": {lines[0] + strings.Replace(lines[1], `"ok"`, `"no"`, 1) + lines[2], false},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, FileName), []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			l, err := Open(dir)
			if err == nil {
				l.Close()
				t.Fatalf("Open accepted a log with a %s", name)
			}
			var ce *ChainError
			if got := errors.As(err, &ce) && ce.Last; got != tc.recoverable {
				t.Fatalf("Open: %v: recoverable %v, want %v", err, got, tc.recoverable)
			}
			if names := strings.Contains(err.Error(), "run `skillbox audit recover`"); names != tc.recoverable {
				t.Fatalf("Open names audit recover: %v, want %v: %v", names, tc.recoverable, err)
			}
			after, _ := os.ReadFile(filepath.Join(dir, FileName))
			if string(after) != tc.content {
				t.Fatal("Open modified the damaged log")
			}
		})
	}
}

// Long lines (two of them bigger than lastLines' block) must still resume correctly.
func TestReopenLongLines(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir)
	big := strings.Repeat("x", MaxRecordBytes-1024)
	for range 3 {
		if _, err := l.Append(context.Background(), Record{Event: EventReload, Details: map[string]any{"big": big}}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 1)
	l.Close()
	if err := Verify(filepath.Join(dir, FileName)); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentAppends(t *testing.T) {
	for _, opts := range [][]Option{nil, {WithCommitDelay(time.Hour)}} {
		t.Run(fmt.Sprintf("delay=%v", len(opts) > 0), func(t *testing.T) { testConcurrentAppends(t, opts...) })
	}
}

func testConcurrentAppends(t *testing.T, opts ...Option) {
	dir := t.TempDir()
	l, err := Open(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 32, 40
	var wg sync.WaitGroup
	ids := make(chan string, workers*each)
	for range workers {
		wg.Go(func() {
			for range each {
				id, err := l.Append(context.Background(), Record{Event: EventInvokeStart, Skill: "s"})
				if err != nil {
					t.Error(err)
					return
				}
				ids <- id
			}
		})
	}
	wg.Wait()
	close(ids)
	l.Close()
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("id %s handed out twice", id)
		}
		seen[id] = true
	}
	f, _ := os.Open(filepath.Join(dir, FileName))
	defer f.Close()
	n, _, err := VerifyReader(f)
	if err != nil || n != workers*each || len(seen) != n {
		t.Fatalf("verify: n=%d ids=%d err=%v", n, len(seen), err)
	}
}

// A log that cannot be written fails the append, and every later one.
func TestAppendWriteFailure(t *testing.T) {
	l, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	l.f.Close()
	l.f = full
	if _, err := l.Append(context.Background(), Record{Event: EventInvokeEnd}); err == nil {
		t.Fatal("append to a full device succeeded")
	}
	if _, err := l.Append(context.Background(), Record{Event: EventInvokeEnd}); err == nil || !strings.Contains(err.Error(), "unwritable") {
		t.Fatalf("second append: %v, want the sticky error", err)
	}
}

func TestAppendRefusesCanceledAndEmpty(t *testing.T) {
	l, _ := Open(t.TempDir())
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Append(ctx, Record{Event: EventInstall}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled ctx: %v", err)
	}
	if _, err := l.Append(context.Background(), Record{}); err == nil {
		t.Fatal("record without event accepted")
	}
}

func TestTail(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir)
	defer l.Close()
	appendN(t, l, 2)
	var buf bytes.Buffer
	if err := Tail(context.Background(), l.Path(), false, &buf); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(buf.String(), "\n"); got != 2 {
		t.Fatalf("tail printed %d lines, want 2", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	pw := &syncWriter{}
	done := make(chan error, 1)
	go func() { done <- Tail(ctx, l.Path(), true, pw) }()
	appendN(t, l, 1)
	deadline := time.Now().Add(5 * time.Second)
	for pw.lines() < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := pw.lines(); got != 3 {
		t.Fatalf("follow saw %d lines, want 3", got)
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) lines() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Count(w.b.String(), "\n")
}

// BenchmarkAppend32 appends from 32 goroutines with group commit; compare with
// BenchmarkAppendSerial (one goroutine, one fsync per line) as the baseline.
func BenchmarkAppend32(b *testing.B) {
	l, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	r := Record{Event: EventInvokeEnd, Caller: "uid:1000", Skill: "http-fetch", Version: "1.2.0", Outcome: "ok", Usage: &Usage{WallMS: 1}}
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((32 + procs - 1) / procs) // RunParallel starts parallelism×GOMAXPROCS goroutines
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(context.Background(), r); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

func BenchmarkAppendSerial(b *testing.B) {
	l, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	r := Record{Event: EventInvokeEnd, Caller: "uid:1000", Skill: "http-fetch", Version: "1.2.0", Outcome: "ok", Usage: &Usage{WallMS: 1}}
	for b.Loop() {
		if _, err := l.Append(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// Close racing appenders: every append that succeeded is in the file, every other one
// got ErrClosed, and the chain verifies.
func TestCloseWhileAppending(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				_, err := l.Append(context.Background(), Record{Event: EventInvokeEnd})
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				ok.Add(1)
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	f, _ := os.Open(filepath.Join(dir, FileName))
	defer f.Close()
	n, _, err := VerifyReader(f)
	if err != nil || int64(n) != ok.Load() || n == 0 {
		t.Fatalf("lines=%d successful appends=%d err=%v", n, ok.Load(), err)
	}
}

// Two Logs on one file (a server and a CLI command) interleave without forking the
// chain: each batch catches up with the other's lines under the file lock.
func TestTwoWriters(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const each = 50
	var wg sync.WaitGroup
	ids := make(chan string, 2*8*each)
	for _, l := range []*Log{a, b} {
		for range 8 {
			wg.Go(func() {
				for range each {
					id, err := l.Append(context.Background(), Record{Event: EventInvokeEnd})
					if err != nil {
						t.Error(err)
						return
					}
					ids <- id
				}
			})
		}
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("id %s handed out by both writers", id)
		}
		seen[id] = true
	}
	a.Close()
	b.Close()
	f, _ := os.Open(filepath.Join(dir, FileName))
	defer f.Close()
	n, _, err := VerifyReader(f)
	if err != nil || n != 2*8*each {
		t.Fatalf("lines=%d err=%v", n, err)
	}
}

// A line that does not encode fails that append only.
func TestUnencodableRecord(t *testing.T) {
	l, _ := Open(t.TempDir())
	defer l.Close()
	if _, err := l.Append(context.Background(), Record{Event: EventReload, Details: map[string]any{"f": func() {}}}); err == nil {
		t.Fatal("unencodable record accepted")
	}
	if id, err := l.Append(context.Background(), Record{Event: EventReload}); err != nil || id != "1" {
		t.Fatalf("next append: %q %v", id, err)
	}
}

// Bytes added behind the Log's back that do not continue the chain stop it writing.
func TestForeignGarbageStopsAppends(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir)
	defer l.Close()
	appendN(t, l, 1)
	f, _ := os.OpenFile(filepath.Join(dir, FileName), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"seq":2,"event":"forged"}` + "\n")
	f.Close()
	_, err := l.Append(context.Background(), Record{Event: EventReload})
	if err == nil || !strings.Contains(err.Error(), "another writer") {
		t.Fatalf("append after a forged line: %v", err)
	}
}

// Enqueued records wait in memory until the next durable append, which writes them
// first and in order; the chain verifies; a failed batch fails the appends after it.
func TestEnqueueOrderAndDurability(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileName)
	lines := func() []string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	if err := l.Enqueue(ctx, Record{Event: EventInvokeStart, CallID: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Enqueue(ctx, Record{Event: EventInvokeStart, CallID: "b"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Size() != 0 {
		t.Fatalf("enqueue wrote %d bytes before any durable append", st.Size())
	}
	id, err := l.Append(ctx, Record{Event: EventInvokeEnd, CallID: "a"})
	if err != nil || id != "3" {
		t.Fatalf("append after two enqueues: id %q, err %v; want 3", id, err)
	}
	got := lines()
	for i, want := range []string{`"seq":1,`, `"seq":2,`, `"seq":3,`} {
		if !strings.Contains(got[i], want) {
			t.Fatalf("line %d = %s, want %s", i+1, got[i], want)
		}
	}
	if !strings.Contains(got[0], `"callId":"a"`) || !strings.Contains(got[1], `"callId":"b"`) || !strings.Contains(got[2], `"event":"invoke.end"`) {
		t.Fatalf("order: %v", got)
	}
	// Flush makes a lone enqueued record durable; Close writes what is left.
	if err := l.Enqueue(ctx, Record{Event: EventInvokeStart, CallID: "c"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(ctx); err != nil || len(lines()) != 4 {
		t.Fatalf("flush: %v, %d lines", err, len(lines()))
	}
	if err := l.Enqueue(ctx, Record{Event: EventInvokeStart, CallID: "d"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(lines()); n != 5 {
		t.Fatalf("%d lines after close, want 5", n)
	}
	if err := Verify(path); err != nil {
		t.Fatal(err)
	}
	if err := l.Enqueue(ctx, Record{Event: EventInvokeStart}); !errors.Is(err, ErrClosed) {
		t.Fatalf("enqueue after close: %v", err)
	}

	// Refusals.
	l2, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := l2.Enqueue(canceled, Record{Event: EventInvokeStart}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled ctx: %v", err)
	}
	if err := l2.Enqueue(ctx, Record{}); err == nil {
		t.Fatal("record without event queued")
	}
	if err := l2.Enqueue(ctx, Record{Event: EventInvokeStart, Details: map[string]any{"f": func() {}}}); err == nil {
		t.Fatal("record whose details cannot be encoded queued")
	}
}

// The write of an enqueued record fails: the durable append that carried it fails, and
// so does every later enqueue and append.
func TestEnqueueWriteFailure(t *testing.T) {
	l, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	l.f.Close()
	l.f = full
	ctx := context.Background()
	if err := l.Enqueue(ctx, Record{Event: EventInvokeStart}); err != nil {
		t.Fatal(err) // not written yet
	}
	if _, err := l.Append(ctx, Record{Event: EventInvokeEnd}); err == nil {
		t.Fatal("append carrying an unwritable enqueued record succeeded")
	}
	if err := l.Enqueue(ctx, Record{Event: EventInvokeStart}); err == nil || !strings.Contains(err.Error(), "unwritable") {
		t.Fatalf("enqueue after a failed write: %v", err)
	}
	if err := l.Flush(ctx); err == nil {
		t.Fatal("flush after a failed write succeeded")
	}
}

// Many goroutines each enqueue a start and durably append an end: every start precedes
// its end in the chain and none is lost.
func TestEnqueueConcurrent(t *testing.T) {
	for _, opts := range [][]Option{nil, {WithCommitDelay(time.Hour)}} {
		t.Run(fmt.Sprintf("delay=%v", len(opts) > 0), func(t *testing.T) { testEnqueueConcurrent(t, opts...) })
	}
}

func testEnqueueConcurrent(t *testing.T, opts ...Option) {
	dir := t.TempDir()
	l, err := Open(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				id := fmt.Sprintf("%d-%d", g, i)
				if err := l.Enqueue(ctx, Record{Event: EventInvokeStart, CallID: id}); err != nil {
					t.Error(err)
					return
				}
				if _, err := l.Append(ctx, Record{Event: EventInvokeEnd, CallID: id}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Before Close: every end's append has returned, so every start is on disk too.
	path := filepath.Join(dir, FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		e, err := parseLine([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		switch e.Event {
		case EventInvokeStart:
			if seen[e.CallID] != "" {
				t.Fatalf("%s: start after %s", e.CallID, seen[e.CallID])
			}
			seen[e.CallID] = "start"
		case EventInvokeEnd:
			if seen[e.CallID] != "start" {
				t.Fatalf("%s: end without a start before it", e.CallID)
			}
			seen[e.CallID] = "end"
		}
	}
	if len(seen) != 16*50 {
		t.Fatalf("%d calls in the log, want %d", len(seen), 16*50)
	}
	if err := Verify(path); err != nil {
		t.Fatal(err)
	}
	l.Close()
}

// WithObserver sees every durable append, with its error: the engine's audit latency
// and failure metrics.
func TestObserverSeesAppends(t *testing.T) {
	var ok, failed atomic.Int32
	l, err := Open(t.TempDir(), WithObserver(func(d time.Duration, err error) {
		if d < 0 {
			t.Errorf("negative duration %v", d)
		}
		if err != nil {
			failed.Add(1)
		} else {
			ok.Add(1)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 3)
	if _, err := l.Append(context.Background(), Record{}); err == nil {
		t.Fatal("a record without an event was appended")
	}
	l.Close()
	if _, err := l.Append(context.Background(), Record{Event: "x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if ok.Load() != 3 || failed.Load() != 2 {
		t.Fatalf("observer saw %d appends and %d failures, want 3 and 2", ok.Load(), failed.Load())
	}
}

// The commit delay never holds up an appender that is alone, nor outlives the burst
// that set it off: with a delay of an hour, a lone appender's appends return, and so
// do the appends of the one goroutine left appending after a burst of 32 (each batch
// then waits at most the gap for company that does not come). Without those two rules
// this test would wait an hour per batch.
func TestCommitDelayWaitsOnlyForCompany(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, WithCommitDelay(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	appendN(t, l, 20) // alone: no batch has ever held two appends
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 10 {
				if _, err := l.Append(ctx, Record{Event: EventInvokeEnd, Skill: "s"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	appendN(t, l, 20) // alone again, after batches of many
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, _, err := VerifyReader(f); err != nil || n != 20+320+20 {
		t.Fatalf("verify: %d lines, %v; want %d", n, err, 20+320+20)
	}
}

// A Flush (the kill switch's) with no durable append of its own queued never waits for
// company, however many appends the last batch held: with an hour's delay and gap, it
// returns (and the enqueued record is on disk).
func TestFlushNeverWaitsForCompany(t *testing.T) {
	defer func(g time.Duration) { lingerGap = g }(lingerGap)
	lingerGap = time.Hour
	dir := t.TempDir()
	l, err := Open(dir, WithCommitDelay(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.lastWaiters = 8 // as after a burst of concurrent calls
	l.mu.Unlock()
	ctx := context.Background()
	if err := l.Enqueue(ctx, Record{Event: EventDisable, Skill: "s"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil || !strings.Contains(string(b), `"event":"disable"`) {
		t.Fatalf("after Flush: %q, %v", b, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
