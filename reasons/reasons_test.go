package reasons_test

import (
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/reasons"
)

// TestCategoriesAreNamed proves every category has its own name (they appear in
// failure messages of the doors' mapping tests) and that the zero value is Internal,
// so an undeclared reason never reads as the caller's fault.
func TestCategoriesAreNamed(t *testing.T) {
	if reasons.Category(0) != reasons.Internal {
		t.Fatal("the zero Category is not Internal")
	}
	cats := reasons.Categories()
	if len(cats) < 11 || cats[0] != reasons.Internal {
		t.Fatalf("Categories() = %v", cats)
	}
	seen := map[string]bool{}
	for _, c := range cats {
		name := c.String()
		if strings.HasPrefix(name, "Category(") || seen[name] {
			t.Errorf("category %d has name %q", c, name)
		}
		seen[name] = true
	}
	if got := reasons.Category(200).String(); got != "Category(200)" {
		t.Errorf("unknown category named %q", got)
	}
}
