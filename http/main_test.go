package http_test

import (
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/voxanne/voxanne/internal/testdb"
)

func TestMain(m *testing.M) {
	// API.md: "Times are RFC 3339 in UTC", whatever the host's zone. The
	// package runs in a zone that is not UTC so that a time the server forgets
	// to convert shows up here rather than only on an operator's machine. It is
	// set before any goroutine starts.
	time.Local = time.FixedZone("UTC+05:30", 5*3600+30*60)
	if slices.Contains(os.Args, "-test.fuzzworker") {
		// A fuzz worker (go test -fuzz) talks to its coordinator over fds 3
		// and 4, inherited without close-on-exec: the test cluster's server
		// would inherit them too and keep the coordinator waiting for ever
		// once the worker has ended.
		syscall.CloseOnExec(3)
		syscall.CloseOnExec(4)
	}
	os.Exit(testdb.Main(m))
}
