package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	voxhttp "github.com/voxanne/voxanne/http"
	"github.com/voxanne/voxanne/internal/testenv"
	"github.com/voxanne/voxanne/postgres"
)

// /metrics carries what operators watch: request latency by route and status,
// the token cache, verification latency, 401s, database pools (River's too),
// the readiness checks and jobs.
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
		`voxanne_token_verification_seconds_bucket{outcome="ok",le="0.5"} 1`,
		`voxanne_unauthorized_total{code="no_authorization"} 1`,
		`voxanne_cross_tenant_attempts_total{via="header"} 0`,
		`voxanne_db_pool_connections{pool="tenant"}`,
		`voxanne_db_pool_connections{pool="river"}`,
		`voxanne_db_pool_acquires_total{pool="auth"}`,
		`voxanne_jobs{state="discarded"} 0`,
		`voxanne_jobs_oldest_queued_age_seconds 0`,
		`voxanne_check_up{check="database"} 1`,
		`voxanne_check_up{check="writes"} 1`,
		`voxanne_check_up{check="migrations"} 1`,
		`voxanne_check_up{check="auth"} 1`,
		`voxanne_status_age_seconds `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// Every metric that deploy/prometheus/alerts.yml names is one a running
// server exports, so the rules and the code cannot drift apart.
func TestAlertsUseExportedMetrics(t *testing.T) {
	t.Parallel()
	rules, err := os.ReadFile("../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	e := testenv.New(t, testenv.Options{})
	// Labelled series appear with their first observation: a verified token,
	// a 401 and a webhook delivery make them.
	s := e.SignUp("alerts@example.com")
	e.Do("GET", "/api/session", nil, testenv.Bearer(s.AccessToken)...)
	e.Do("GET", "/api/session", nil)
	e.Do("POST", "/api/webhooks/vapi", map[string]any{"message": map[string]any{"type": "status-update"}}, "X-Vapi-Secret", "wrong")
	body := "\n" + string(e.Do("GET", "/metrics", nil).Body)
	names := map[string]bool{}
	for _, n := range regexp.MustCompile(`\bvoxanne_[a-z0-9_]*[a-z0-9]`).FindAllString(alertExprs(string(rules)), -1) {
		names[n] = true
	}
	if len(names) < 10 {
		t.Fatalf("found only %d metric names in alerts.yml: %v", len(names), names)
	}
	for n := range names {
		if !strings.Contains(body, "\n"+n+"{") && !strings.Contains(body, "\n"+n+" ") {
			t.Errorf("alerts.yml uses %s, which /metrics does not export", n)
		}
	}
}

// alertExprs returns the expressions of a rules file: each "expr:" line with
// the more indented lines that continue it.
func alertExprs(rules string) string {
	var out strings.Builder
	indent := -1
	for _, line := range strings.Split(rules, "\n") {
		trimmed := strings.TrimLeft(line, " ")
		depth := len(line) - len(trimmed)
		switch {
		case strings.HasPrefix(trimmed, "expr:"):
			indent = depth
		case indent >= 0 && depth > indent && trimmed != "":
		default:
			indent = -1
			continue
		}
		out.WriteString(line + "\n")
	}
	return out.String()
}

// A scrape reads the cached status and never waits for the database: while a
// lock holds the job count query up, /metrics answers with the last figures
// and the query is still waiting afterwards.
func TestMetricsDoNotWaitForTheDatabase(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{NoJobWorkers: true})
	e.Handler.StatusTimeout = time.Minute
	ctx := context.Background()
	var tx pgx.Tx
	if err := e.DB.InOwner(ctx, "test fixture", func(c postgres.Conn) (err error) {
		tx, err = c.Begin(ctx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.Exec(ctx, "lock table river_job in access exclusive mode"); err != nil {
		t.Fatal(err)
	}
	refreshed := make(chan struct{})
	go func() { e.Handler.RefreshStatus(ctx); close(refreshed) }()
	waiting := func() bool {
		var n int
		if err := e.QueryRow(ctx, `select count(*) from pg_locks where not granted and relation = 'river_job'::regclass`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	for deadline := time.Now().Add(time.Minute); !waiting(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the job count never waited for the lock")
		}
	}
	resp := e.Do("GET", "/metrics", nil)
	if resp.Status != 200 || !strings.Contains(string(resp.Body), `voxanne_jobs{state="queued"} 0`) {
		t.Fatalf("scrape during a blocked refresh: %d", resp.Status)
	}
	if !waiting() {
		t.Fatal("the job count stopped waiting before the scrape ended: the scrape may have waited for it")
	}
	select {
	case <-refreshed:
		t.Fatal("the refresh ended while the lock was held")
	default:
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	<-refreshed
}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the log lines with message msg, decoded.
func (l *lockedBuffer) lines(t *testing.T, msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		var m map[string]any
		if line != "" && json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// The token cache's statistics are logged once enough authenticated requests
// and enough time have passed, whichever is rarer.
func TestCacheStatisticsLogLine(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := e.SignUp("cachelog@example.com")
	serve := func(every int, interval time.Duration) (*lockedBuffer, func()) {
		logs := &lockedBuffer{}
		srv := &voxhttp.Server{Authenticator: e.Authn, Logger: slog.New(slog.NewJSONHandler(logs, nil)),
			CacheStatsEvery: every, CacheStatsInterval: interval}
		ts := httptest.NewServer(srv.Handler())
		t.Cleanup(ts.Close)
		return logs, func() {
			req, _ := http.NewRequest("GET", ts.URL+"/api/session", nil)
			req.Header.Set("Authorization", "Bearer "+s.AccessToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("session: %d", resp.StatusCode)
			}
		}
	}
	const msg = "token cache statistics"

	// Every third request, no time bound.
	logs, get := serve(3, -1)
	get()
	get()
	if n := len(logs.lines(t, msg)); n != 0 {
		t.Fatalf("%d lines after 2 requests", n)
	}
	get()
	lines := logs.lines(t, msg)
	if len(lines) != 1 || lines[0]["requests"] != 3.0 || lines[0]["hits"] != 2.0 || lines[0]["misses"] != 1.0 || lines[0]["hit_rate"] != 2.0/3 {
		t.Fatalf("after 3 requests: %v", lines)
	}
	for range 3 {
		get()
	}
	if n := len(logs.lines(t, msg)); n != 2 {
		t.Fatalf("%d lines after 6 requests", n)
	}

	// Every request, but at most once an hour: none in the first hour.
	logs, get = serve(1, time.Hour)
	for range 5 {
		get()
	}
	if n := len(logs.lines(t, msg)); n != 0 {
		t.Fatalf("%d lines within the hour", n)
	}
}
