package manifest

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The patched jsonschema (third_party/santhosh-tekuri-jsonschema) compiles each
// draft's metaschemas on first use, once, safely from many goroutines, and still
// refuses an invalid schema and checks instances as before.
func TestSchemaDraftsLoadOnFirstUse(t *testing.T) {
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
			compile := func(body string) (*jsonschema.Schema, error) {
				doc, err := jsonschema.UnmarshalJSON(strings.NewReader(`{"$schema":"` + d + `",` + body + `}`))
				if err != nil {
					return nil, err
				}
				c := jsonschema.NewCompiler()
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
