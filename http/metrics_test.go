package http_test

import (
	"strings"
	"testing"

	"github.com/voxanne/voxanne/internal/testenv"
)

// /metrics carries what operators watch: request latency by route and status,
// the token cache, verification latency, 401s, database pools and jobs.
func TestMetricsExposition(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := e.SignUp("metrics@example.com")
	e.Do("GET", "/api/session", nil, testenv.Bearer(s.AccessToken)...)
	e.Do("GET", "/api/session", nil)
	body := string(e.Do("GET", "/metrics", nil).Body)
	for _, want := range []string{
		`voxanne_http_request_duration_seconds_bucket{method="GET",route="GET /api/session",status="200"`,
		`voxanne_auth_cache_misses_total 1`,
		`voxanne_token_verification_seconds_count{outcome="ok"} 1`,
		`voxanne_unauthorized_total{code="no_authorization"} 1`,
		`voxanne_db_pool_connections{pool="tenant"}`,
		`voxanne_db_pool_acquires_total{pool="auth"}`,
		`voxanne_jobs{state="discarded"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
