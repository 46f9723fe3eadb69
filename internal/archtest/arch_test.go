package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

const module = "github.com/voxanne/voxanne"

// pkg is the part of `go list -json` output the rules read.
type pkg struct {
	ImportPath   string
	Dir          string
	Name         string
	Standard     bool
	GoFiles      []string
	CgoFiles     []string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
	Error        *struct{ Err string }
}

var (
	listOnce sync.Once
	listPkgs map[string]*pkg
	listErr  error
)

// packages lists every package of the module and everything they depend on,
// by import path, with `go list -deps`: the same graph the compiler builds.
// -e keeps a package that does not compile in the list (its imports are still
// known), so the rules are checked even while another test reports the error.
func packages(t *testing.T) map[string]*pkg {
	t.Helper()
	listOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			listErr = err
			return
		}
		out, err := exec.Command(goBin, "env", "GOMOD").Output()
		if err != nil {
			listErr = err
			return
		}
		gomod := strings.TrimSpace(string(out))
		if gomod == "" || gomod == "/dev/null" {
			listErr = errors.New("not inside the module")
			return
		}
		cmd := exec.Command(goBin, "list", "-e", "-deps",
			"-json=ImportPath,Dir,Name,Standard,GoFiles,CgoFiles,Imports,TestImports,XTestImports,Deps,Error", "./...")
		cmd.Dir = filepath.Dir(gomod)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err = cmd.Output()
		if err != nil {
			listErr = errors.New("go list: " + err.Error() + ": " + stderr.String())
			return
		}
		listPkgs = map[string]*pkg{}
		dec := json.NewDecoder(bytes.NewReader(out))
		for {
			var p pkg
			if err := dec.Decode(&p); err == io.EOF {
				break
			} else if err != nil {
				listErr = err
				return
			}
			listPkgs[p.ImportPath] = &p
		}
	})
	if listErr != nil {
		t.Fatal(listErr)
	}
	return listPkgs
}

// own returns the module's own packages, sorted by import path.
func own(all map[string]*pkg) []*pkg {
	var ps []*pkg
	for path, p := range all {
		if path == module || strings.HasPrefix(path, module+"/") {
			ps = append(ps, p)
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].ImportPath < ps[j].ImportPath })
	return ps
}

// under reports whether path is the package dir of the module or one below it.
func under(path, dir string) bool {
	base := module + "/" + dir
	return path == base || strings.HasPrefix(path, base+"/")
}

// The root package holds the domain: types, service interfaces and the error
// type. It imports only the standard library, so every other package can
// import it and it can be read (and tested) without a database or a network.
func TestRootImportsOnlyStandardLibrary(t *testing.T) {
	t.Parallel()
	all := packages(t)
	root, ok := all[module]
	if !ok {
		t.Fatalf("go list did not list %s", module)
	}
	// Deps is transitive; a standard package never imports anything else, so
	// every entry must be standard, and the direct imports name the culprit.
	for _, dep := range root.Deps {
		p := all[dep]
		if p == nil || !p.Standard {
			t.Errorf("the root package %s depends on %s, which is not in the standard library", module, dep)
		}
	}
	if len(root.Deps) == 0 {
		t.Fatal("the root package has no dependencies listed: is go list's output read right?")
	}
}

// The adapters around the domain do not know each other: postgres stores, http
// serves, jobs runs background work, web renders the dashboard. Only the one
// assembly (internal/app) and the commands import more than one of them, so each
// can change (or be replaced) without touching the others.
func TestAdaptersDoNotImportEachOther(t *testing.T) {
	t.Parallel()
	layers := []string{"postgres", "http", "jobs", "web"}
	for _, p := range own(packages(t)) {
		for _, from := range layers {
			if !under(p.ImportPath, from) {
				continue
			}
			for _, imp := range p.Imports {
				for _, to := range layers {
					if to != from && under(imp, to) {
						t.Errorf("%s imports %s: %s and %s must not import each other (wire them in internal/app)", p.ImportPath, imp, from, to)
					}
				}
			}
		}
	}
}

// The database pools are the doors to the data, one per role. Only postgres (and
// its subpackages) hold them; everything else goes through its stores and the
// tenant transaction helper, so every door can be found by reading one package.
// Test files count too: a test that grabs a pool bypasses the doors it tests.
func TestOnlyPostgresImportsPgxpool(t *testing.T) {
	t.Parallel()
	const pgxpool = "github.com/jackc/pgx/v5/pgxpool"
	for _, p := range own(packages(t)) {
		if under(p.ImportPath, "postgres") {
			continue
		}
		var found []string
		for _, in := range []struct {
			what string
			imps []string
		}{{"", p.Imports}, {" (tests)", p.TestImports}, {" (external tests)", p.XTestImports}} {
			if slices.Contains(in.imps, pgxpool) {
				found = append(found, in.what)
			}
		}
		if len(found) > 0 {
			t.Errorf("%s%s imports %s: only postgres holds database pools", p.ImportPath, strings.Join(found, ""), pgxpool)
		}
	}
}
