package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// doorCall is one call of postgres.DB's cross-organization doors.
type doorCall struct {
	door, reason, pos string
	pkg               string
	test              bool
}

// doorCalls finds every call of InService and InOwner in the module's Go
// files, tests included.
func doorCalls(t *testing.T) []doorCall {
	t.Helper()
	fset := token.NewFileSet()
	root := packages(t)[module].Dir
	var calls []doorCall
	for _, p := range own(packages(t)) {
		names, err := filepath.Glob(filepath.Join(p.Dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range names {
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Errorf("parse %s: %v", path, err)
				continue
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || (sel.Sel.Name != "InService" && sel.Sel.Name != "InOwner") || len(call.Args) != 3 {
					return true
				}
				pos := fset.Position(call.Pos())
				rel, _ := filepath.Rel(root, pos.Filename)
				c := doorCall{door: sel.Sel.Name, pos: rel + ":" + strconv.Itoa(pos.Line), pkg: p.ImportPath,
					test: strings.HasSuffix(path, "_test.go")}
				if lit, ok := call.Args[1].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					c.reason, _ = strconv.Unquote(lit.Value)
				}
				calls = append(calls, c)
				return true
			})
		}
	}
	return calls
}

// The doors to data across organizations can be audited by reading one list:
// every InService and InOwner call names its reason with a string literal,
// every InService reason of the server's code appears in docs/architecture.md,
// and InOwner (which RLS does not bind) is used only by postgres itself and
// by test fixtures.
func TestServiceDoorsAreNamedAndListed(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join(packages(t)[module].Dir, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	calls := doorCalls(t)
	if !slices.ContainsFunc(calls, func(c doorCall) bool { return c.door == "InService" }) {
		t.Fatal("found no InService call: the rule is reading the wrong files")
	}
	for _, c := range calls {
		switch {
		case c.reason == "":
			t.Errorf("%s: %s's reason must be a non-empty string literal", c.pos, c.door)
		case c.door == "InService" && !c.test && !strings.Contains(string(doc), "`"+c.reason+"`"):
			t.Errorf("%s: InService reason %q is not listed in docs/architecture.md", c.pos, c.reason)
		case c.door == "InOwner" && !c.test && !under(c.pkg, "postgres") && !under(c.pkg, "internal/testenv") && !under(c.pkg, "internal/testdb"):
			t.Errorf("%s: InOwner outside postgres and the test fixtures", c.pos)
		}
	}
}
