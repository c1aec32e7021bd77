package jsonschema

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// The skillbox patch: drafts' metaschemas are compiled on first use, each draft's
// once, safely from many goroutines, and still refuse an invalid schema and check
// instances as before.
func TestDraftsLoadOnFirstUse(t *testing.T) {
	drafts := []string{
		"http://json-schema.org/draft-04/schema#",
		"http://json-schema.org/draft-06/schema#",
		"http://json-schema.org/draft-07/schema#",
		"https://json-schema.org/draft/2019-09/schema",
		"https://json-schema.org/draft/2020-12/schema",
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := drafts[i%len(drafts)]
			compile := func(body string) (*Schema, error) {
				doc, err := UnmarshalJSON(strings.NewReader(`{"$schema":"` + d + `",` + body + `}`))
				if err != nil {
					return nil, err
				}
				c := NewCompiler()
				loc := fmt.Sprintf("https://x.invalid/%d.json", i)
				if err := c.AddResource(loc, doc); err != nil {
					return nil, err
				}
				return c.Compile(loc)
			}
			s, err := compile(`"type":"object","properties":{"n":{"type":"integer","minimum":1}}`)
			if err != nil {
				t.Errorf("%s: %v", d, err)
				return
			}
			if err := s.Validate(map[string]any{"n": 0}); err == nil {
				t.Errorf("%s: n=0 passed minimum 1", d)
			}
			if err := s.Validate(map[string]any{"n": 2}); err != nil {
				t.Errorf("%s: n=2: %v", d, err)
			}
			if _, err := compile(`"type":"nosuchtype"`); err == nil {
				t.Errorf("%s: an unknown type compiled: the metaschema did not check it", d)
			}
		}()
	}
	wg.Wait()
}
