package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"testing"
)

// Every exported name of a library package (not a command, not a test file)
// has a doc comment: the package's users read it with go doc, and a name that
// cannot be explained in a sentence is a design smell. Exported functions,
// types, consts and vars, and exported methods of exported types count; a
// comment on a grouped const, var or type block counts for every name in it.
func TestExportedNamesAreDocumented(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	root := packages(t)[module].Dir
	for _, p := range own(packages(t)) {
		if p.Name == "main" || p.Name == "" {
			continue
		}
		for _, name := range append(append([]string(nil), p.GoFiles...), p.CgoFiles...) {
			path := filepath.Join(p.Dir, name)
			f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
			if err != nil {
				t.Errorf("parse %s: %v", path, err)
				continue
			}
			for _, missing := range undocumented(f) {
				pos := fset.Position(missing.Pos())
				rel, err := filepath.Rel(root, pos.Filename)
				if err != nil {
					rel = pos.Filename
				}
				t.Errorf("%s:%d: exported %s has no doc comment", rel, pos.Line, missing.Name)
			}
		}
	}
}

// undocumented returns the exported names of f that lack a doc comment.
func undocumented(f *ast.File) []*ast.Ident {
	var missing []*ast.Ident
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() || d.Doc != nil {
				continue
			}
			if d.Recv != nil && !exportedReceiver(d.Recv) {
				continue
			}
			name := *d.Name
			if d.Recv != nil {
				name.Name = receiverName(d.Recv) + "." + name.Name
			}
			missing = append(missing, &name)
		case *ast.GenDecl:
			if d.Tok == token.IMPORT || d.Doc != nil {
				continue // a comment on the declaration (or the group) counts for each name in it
			}
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() && s.Doc == nil {
						missing = append(missing, s.Name)
					}
				case *ast.ValueSpec:
					if s.Doc != nil {
						continue
					}
					for _, n := range s.Names {
						if n.IsExported() {
							missing = append(missing, n)
						}
					}
				}
			}
		}
	}
	return missing
}

// exportedReceiver reports whether a method's receiver is an exported type
// (T, *T, T[P] or *T[P]): methods of unexported types are not in the package's
// documentation.
func exportedReceiver(recv *ast.FieldList) bool {
	return ast.IsExported(receiverName(recv))
}

// receiverName returns the name of a method's receiver type, without pointer
// or type parameters.
func receiverName(recv *ast.FieldList) string {
	if len(recv.List) == 0 {
		return ""
	}
	expr := recv.List[0].Type
	for {
		switch e := expr.(type) {
		case *ast.StarExpr:
			expr = e.X
		case *ast.ParenExpr:
			expr = e.X
		case *ast.IndexExpr:
			expr = e.X
		case *ast.IndexListExpr:
			expr = e.X
		case *ast.Ident:
			return e.Name
		default:
			return ""
		}
	}
}
