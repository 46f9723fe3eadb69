package voxanne_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/voxanne/voxanne"
)

// Every wire code is documented, and no code outside errorcodes.go names a
// wire code as a string literal: the list is the one place.
func TestWireCodesListedAndDocumented(t *testing.T) {
	docs, err := os.ReadFile("docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range voxanne.WireCodes {
		if !strings.Contains(string(docs), "`"+c+"`") {
			t.Errorf("wire code %s is not in docs/api.md", c)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(voxanne.WireCodes)))) != len(voxanne.WireCodes) {
		t.Error("a wire code is listed twice")
	}
	literal := regexp.MustCompile(`(ReasonErrorf\([^,]+, |Reason: |authErr\([^,]+, )"[a-z_]+"`)
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if m := literal.Find(b); m != nil {
			t.Errorf("%s: a wire code as a literal (%s): use the constant from errorcodes.go", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
