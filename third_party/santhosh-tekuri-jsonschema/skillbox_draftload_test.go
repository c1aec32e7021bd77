package jsonschema

// skillbox patch: not upstream. A draft's metaschemas are compiled on first use
// (Draft.ensure), so that first compile may run while another compiler reads the
// draft: this checks that nothing it writes is read unsynchronised (under -race).

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// draftLoadEnv names the draft TestDraftFirstLoadChild loads; only
// TestDraftFirstLoadConcurrent sets it, in a process of its own.
const draftLoadEnv = "SKILLBOX_JSONSCHEMA_FIRST_LOAD"

// TestDraftFirstLoadConcurrent runs TestDraftFirstLoadChild in a fresh process per
// draft: a draft is compiled once per process (sync.Once), and only its first load
// can race with a reader, whatever other tests (or -count) loaded before.
func TestDraftFirstLoadConcurrent(t *testing.T) {
	for _, d := range []*Draft{Draft2019, Draft2020} {
		t.Run(strconv.Itoa(d.version), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestDraftFirstLoadChild$", "-test.count=1", "-test.v")
			// GOMAXPROCS=4, even on one CPU: the two goroutines then run in threads of
			// their own, interleaved finely enough that the race detector sees the race
			// it guards against (without the fix, 20 runs of 20 saw it, one CPU or four,
			// against 7 to 14 of 20 with GOMAXPROCS=1).
			// atexit_sleep_ms=0: the race detector's second of sleep at exit is not needed.
			cmd.Env = append(os.Environ(), draftLoadEnv+"="+d.url, "GOMAXPROCS=4",
				"GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child process: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "--- PASS: TestDraftFirstLoadChild") {
				t.Fatalf("child process did not run the test:\n%s", out)
			}
		})
	}
}

// TestDraftFirstLoadChild, in a process that has not loaded the draft, compiles at
// once (a) a schema of that draft, which loads its metaschemas, and (b) with
// SkipMetaschemaCheck, which never waits for that load, a schema whose $schema is a
// custom metaschema of that draft declaring $vocabulary, which makes the compiler
// look the vocabularies up in the draft (Draft.getVocabs).
func TestDraftFirstLoadChild(t *testing.T) {
	u := os.Getenv(draftLoadEnv)
	if u == "" {
		t.Skip("run by TestDraftFirstLoadConcurrent, in a process of its own")
	}
	d := draftFromURL(u)
	if d == nil {
		t.Fatalf("no draft %q", u)
	}
	if d.sch != nil {
		t.Fatalf("draft %s is loaded already: the test needs its first load", u)
	}

	bRuns := make(chan struct{}) // (b) has started: (a) starts after
	aDone := make(chan struct{}) // (a) is done: (b) stops
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // (a) loads the draft
		defer wg.Done()
		defer close(aDone)
		<-bRuns
		c := NewCompiler()
		if err := c.AddResource("https://example.com/a.json", map[string]any{"$schema": u, "type": "string"}); err != nil {
			t.Error(err)
			return
		}
		sch, err := c.Compile("https://example.com/a.json")
		if err != nil {
			t.Errorf("(a): %v", err)
			return
		}
		if sch.Validate(1.0) == nil {
			t.Error("(a): 1 is valid against type string")
		}
	}()
	go func() { // (b) reads the draft's vocabularies, never waiting for its load
		defer wg.Done()
		close(bRuns)
		// Again and again until (a) is done, so that some reads run while (a) writes
		// (reads before the writes may be ordered with them by some synchronisation
		// deep in the standard library, which hides the race from the detector).
		for {
			if !compileCustomMeta(t, d) {
				return
			}
			select {
			case <-aDone:
				return
			default:
			}
		}
	}()
	wg.Wait()
}

// compileCustomMeta compiles, with SkipMetaschemaCheck, a schema whose metaschema is
// of draft d and leaves out its validation vocabulary, and checks that the compiled
// schema ignores "type".
func compileCustomMeta(t *testing.T, d *Draft) bool {
	c := NewCompiler()
	c.SkipMetaschemaCheck()
	meta := map[string]any{
		"$schema":     d.url,
		"$id":         "https://example.com/meta",
		"$vocabulary": map[string]any{d.vocabPrefix + "core": true, d.vocabPrefix + "applicator": true},
	}
	if err := c.AddResource("https://example.com/meta", meta); err != nil {
		t.Error(err)
		return false
	}
	if err := c.AddResource("https://example.com/b.json", map[string]any{"$schema": "https://example.com/meta", "type": "string"}); err != nil {
		t.Error(err)
		return false
	}
	sch, err := c.Compile("https://example.com/b.json")
	if err != nil {
		t.Errorf("(b): %v", err)
		return false
	}
	if err := sch.Validate(1.0); err != nil {
		t.Errorf("(b): the metaschema's vocabularies were not used (type string applied): %v", err)
		return false
	}
	return true
}
