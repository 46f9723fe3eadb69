package http_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/voxanne/voxanne/internal/testenv"
)

// Unexpected failures reach the error reporter (Sentry in production) with the
// request id, and the caller sees only unexpected_failure.
func TestUnexpectedFailuresAreReported(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := e.SignUp("report@example.com")
	var (
		mu  sync.Mutex
		got []string
	)
	e.Handler.ReportError = func(_ context.Context, requestID string, err error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, requestID+" "+err.Error())
	}
	// The cached token keeps authenticating; the database behind it is gone.
	e.DB.Close()
	r := e.Do("GET", "/api/me", nil, testenv.Bearer(s.AccessToken)...)
	if r.Status != 500 || r.JSON(t)["code"] != "unexpected_failure" || strings.Contains(string(r.Body), "closed") {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || !strings.HasPrefix(got[0], r.Header.Get("X-Request-Id")+" ") {
		t.Fatalf("reported %q", got)
	}
}
