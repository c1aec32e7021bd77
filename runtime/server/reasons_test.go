package server

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/reasons"
	"github.com/skillbox-dev/skillbox/runtime/engine"
)

// internalOK reports the reasons that are skillbox's own failure, and so INTERNAL:
//   - INTERNAL: a sandbox or the engine failed in a way no other reason names.
//   - AUDIT_FAILED: the call could not be recorded. Not UNAVAILABLE: the skill may have
//     run already (its result withheld), and clients retry UNAVAILABLE on their own,
//     which would run it again.
func internalOK(r reasons.Reason) bool {
	return r == isolation.ReasonInternal || r == engine.ReasonAuditFailed
}

type declared struct {
	name   string // Go name, e.g. engine.ReasonBusy
	reason reasons.Reason
}

// declaredReasons parses the non-test Go files of dir and returns every constant
// declared with the type Reason (reasons.Reason, isolation.Reason) or with a name
// starting with "Reason": an untyped constant would still be accepted where a Reason
// is, and must not escape the test.
func declaredReasons(t *testing.T, dir string) []declared {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s (%v)", dir, err)
	}
	var out []declared
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if !isReasonType(vs.Type) && !strings.HasPrefix(id.Name, "Reason") {
						continue
					}
					if i >= len(vs.Values) {
						t.Fatalf("%s: reason %s has no value of its own", fset.Position(id.Pos()), id.Name)
					}
					if _, alias := vs.Values[i].(*ast.SelectorExpr); alias {
						continue // another package's reason under this one's name (engine's of runner's): declared there
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s: reason %s is not a string literal", fset.Position(id.Pos()), id.Name)
					}
					s, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, declared{name: f.Name.Name + "." + id.Name, reason: reasons.Reason(s)})
				}
			}
		}
	}
	return out
}

func isReasonType(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name == "Reason"
	case *ast.SelectorExpr:
		return e.Sel.Name == "Reason"
	}
	return false
}

func allDeclaredReasons(t *testing.T) []declared {
	t.Helper()
	// The packages that declare the reasons a reply can carry: the sandbox's, the
	// runner's (the call path every call shares), the engine's and this server's.
	var all []declared
	for _, dir := range []string{"../../isolation", "../runner", "../engine", "."} {
		all = append(all, declaredReasons(t, dir)...)
	}
	return all
}

// TestEveryReasonHasACode proves that every reason the sandbox, the engine or this
// server declares maps to a gRPC code of its own (not INTERNAL, bar the reasons that
// are skillbox's own failure), and that no wire word is declared twice.
func TestEveryReasonHasACode(t *testing.T) {
	all := allDeclaredReasons(t)
	if len(all) < 20 {
		t.Fatalf("found only %d reasons (%v): the declarations moved?", len(all), all)
	}
	seen := map[reasons.Reason]string{}
	for _, d := range all {
		if other, dup := seen[d.reason]; dup {
			t.Errorf("%s and %s both declare %s", other, d.name, d.reason)
		}
		seen[d.reason] = d.name
		if !regexp.MustCompile(`^[A-Z]+(_[A-Z]+)*$`).MatchString(string(d.reason)) {
			t.Errorf("%s = %q is not UPPER_SNAKE_CASE", d.name, d.reason)
		}
		code := codeOf(categoryOf(d.reason))
		if code == codes.Internal && !internalOK(d.reason) {
			t.Errorf("%s (%s) has no category: it would reach callers as INTERNAL", d.name, d.reason)
		}
		if code != codes.Internal && internalOK(d.reason) {
			t.Errorf("%s (%s) is %v, want INTERNAL", d.name, d.reason, code)
		}
	}
	if got := codeOf(categoryOf("NO_SUCH_REASON")); got != codes.Internal {
		t.Errorf("an undeclared reason maps to %v, want INTERNAL", got)
	}
}

// TestCodeOfCoversEveryCategory proves the one mapping gives every category but
// Internal its own code.
func TestCodeOfCoversEveryCategory(t *testing.T) {
	byCode := map[codes.Code]reasons.Category{}
	for _, c := range reasons.Categories() {
		code := codeOf(c)
		if (code == codes.Internal) != (c == reasons.Internal) {
			t.Errorf("category %v maps to %v", c, code)
		}
		if other, dup := byCode[code]; dup {
			t.Errorf("categories %v and %v both map to %v", other, c, code)
		}
		byCode[code] = c
	}
}

// TestAPIDocListsEveryReason proves docs/api.md's reason table names every declared
// reason with the code codeOf gives it, so clients can rely on the table.
func TestAPIDocListsEveryReason(t *testing.T) {
	data, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	// Rows of the table: | `A`, `B` | `CODE` | when |
	row := regexp.MustCompile("(?m)^\\| ((?:`[A-Z_]+`(?:, )?)+)[^|]*\\| `([A-Z_]+)` \\|")
	documented := map[reasons.Reason]string{}
	for _, m := range row.FindAllStringSubmatch(string(data), -1) {
		for _, r := range regexp.MustCompile("`([A-Z_]+)`").FindAllStringSubmatch(m[1], -1) {
			documented[reasons.Reason(r[1])] = m[2]
		}
	}
	for _, d := range allDeclaredReasons(t) {
		want := wireName(codeOf(categoryOf(d.reason)))
		got, ok := documented[d.reason]
		switch {
		case !ok:
			t.Errorf("docs/api.md's reason table lacks %s (%s, code %s)", d.reason, d.name, want)
		case got != want:
			t.Errorf("docs/api.md gives %s the code %s; the server answers %s", d.reason, got, want)
		}
	}
}

// wireName is a code's name as gRPC spells it on the wire and in its docs
// (DEADLINE_EXCEEDED, CANCELLED).
func wireName(c codes.Code) string {
	if c == codes.Canceled {
		return "CANCELLED"
	}
	var b strings.Builder
	for i, r := range c.String() {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}
