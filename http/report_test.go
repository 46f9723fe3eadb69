package http_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/voxanne/voxanne/internal/testenv"
)

// reports collects what the server sends to its error reporter.
func reports(e *testenv.Env) func() []string {
	var (
		mu  sync.Mutex
		got []string
	)
	e.Handler.ReportError = func(_ context.Context, requestID string, err error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, requestID+" "+err.Error())
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

// Unexpected failures (here a lost privilege: a bug, not an outage) reach the
// error reporter (Sentry in production) with the request id, and the caller
// sees only unexpected_failure.
func TestUnexpectedFailuresAreReported(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := e.SignUp("report@example.com")
	got := reports(e)
	if _, err := e.Exec(context.Background(), "revoke select on calls from voxanne_tenant"); err != nil {
		t.Fatal(err)
	}
	r := e.Do("GET", "/api/calls", nil, testenv.Bearer(s.AccessToken)...)
	if r.Status != 500 || r.JSON(t)["code"] != "unexpected_failure" || strings.Contains(string(r.Body), "permission") {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	if rep := got(); len(rep) != 1 || !strings.HasPrefix(rep[0], r.Header.Get("X-Request-Id")+" ") {
		t.Fatalf("reported %q", rep)
	}
}

// While the database cannot be reached, /api, /auth/v1 and the webhooks
// answer 503 unavailable with Retry-After, never 500: a webhook sender
// retries, nothing is acknowledged, and an outage is not reported as a bug.
func TestDatabaseOutageAnswers503(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := e.SignUp("outage@example.com")
	// Cache the token: it keeps authenticating while the database is gone.
	if r := e.Do("GET", "/api/me", nil, testenv.Bearer(s.AccessToken)...); r.Status != 200 {
		t.Fatalf("before: %d %s", r.Status, r.Body)
	}
	got := reports(e)
	e.DB.Close()
	for _, c := range []struct {
		method, path string
		body         any
		headers      []string
	}{
		{"GET", "/api/me", nil, testenv.Bearer(s.AccessToken)},
		{"GET", "/api/calls", nil, testenv.Bearer(s.AccessToken)},
		{"GET", "/auth/v1/user", nil, testenv.Bearer(s.AccessToken)},
		{"POST", "/auth/v1/token?grant_type=password", map[string]string{"email": "outage@example.com", "password": testenv.Password}, nil},
		{"POST", "/auth/v1/token?grant_type=refresh_token", map[string]string{"refresh_token": s.RefreshToken}, nil},
		{"POST", "/api/webhooks/vapi", endOfCallReport("call-outage"), []string{"X-Vapi-Secret", testenv.VapiSecret}},
	} {
		r := e.Do(c.method, c.path, c.body, c.headers...)
		body := r.JSON(t)
		code := body["code"]
		if strings.HasPrefix(c.path, "/auth/v1/") && body["error_code"] != nil {
			code = body["error_code"] // GoTrue's legacy shape
		}
		if r.Status != 503 || code != "unavailable" || r.Header.Get("Retry-After") == "" || strings.Contains(string(r.Body), "closed") {
			t.Errorf("%s %s: %d %s (Retry-After %q)", c.method, c.path, r.Status, r.Body, r.Header.Get("Retry-After"))
		}
	}
	if rep := got(); len(rep) != 0 {
		t.Errorf("an outage was reported as unexpected: %q", rep)
	}
	if !strings.Contains(e.Logs.String(), `"msg":"unavailable"`) {
		t.Error("the outage is not in the log")
	}
}
