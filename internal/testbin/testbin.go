// Package testbin builds the voxanne binary once per test binary, for tests that
// run it as a process, and finds free loopback addresses for it to listen on.
package testbin

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Main builds the package at pkg (a directory, relative to the test's) into
// *bin, runs the tests and removes the build. Use it from TestMain:
// os.Exit(testbin.Main(m, "../cmd/voxanne", &binary)).
//
// Under -short (the fast local loop) it runs none of the package's tests: they
// run the built binary, each with a PostgreSQL cluster of its own, which is
// what makes them slow. The full suite (and CI) runs them all.
func Main(m *testing.M, pkg string, bin *string) int {
	flag.Parse()
	if testing.Short() {
		fmt.Println("testbin: -short: skipping this package's tests (they run the built binary, each with its own PostgreSQL cluster)")
		return 0
	}
	path, remove, err := Build(pkg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer remove()
	*bin = path
	return m.Run()
}

// Build builds the package at pkg (a directory, relative to the test's) into
// a temporary directory and returns the binary's path and the func that
// removes it, for a TestMain that also runs something else around its tests
// (testdb.Main).
func Build(pkg string) (bin string, remove func(), err error) {
	dir, err := os.MkdirTemp("", "voxanne-bin-")
	if err != nil {
		return "", nil, fmt.Errorf("testbin: %w", err)
	}
	bin = filepath.Join(dir, "voxanne")
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("testbin: build %s: %w\n%s", pkg, err, out)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// FreeAddr returns a loopback address nothing listens on right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
