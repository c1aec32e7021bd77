package manifest

import (
	"sync"
	"testing"
)

func BenchmarkParse(b *testing.B) {
	data := []byte(goodWasm)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// The per-call cost on the engine's hot path: input in, checked against the schema.
func BenchmarkValidateInput(b *testing.B) {
	m, err := Parse([]byte(goodWasm))
	if err != nil {
		b.Fatal(err)
	}
	in := []byte(`{"url":"https://en.wikipedia.org/wiki/Go","count":3}`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := m.ValidateInput(in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// One parsed manifest validates from many goroutines at once (run with -race).
func TestValidateConcurrent(t *testing.T) {
	m, err := Parse([]byte(goodWasm))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				good := m.ValidateInput([]byte(`{"url":"x"}`))
				bad := m.ValidateInput([]byte(`{"count":1}`))
				if good != nil || bad == nil || bad.Error() != "input.url: missing property" {
					t.Errorf("goroutine %d: %v %v", i, good, bad)
					return
				}
			}
		})
	}
	wg.Wait()
}
