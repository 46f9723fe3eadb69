package http_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	voxhttp "github.com/voxanne/voxanne/http"
	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/internal/testenv"
	"github.com/voxanne/voxanne/postgres"
	"github.com/voxanne/voxanne/postgres/pglocal"
)

type health struct {
	Status  string                    `json:"status"`
	Version string                    `json:"version"`
	Checks  map[string]map[string]any `json:"checks"`
}

// getStatus GETs one of the health routes and decodes its body.
func getStatus(t *testing.T, url, path string, headers ...string) (int, health, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url+path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	var h health
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id")
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("%s: Cache-Control %q", path, resp.Header.Get("Cache-Control"))
	}
	return resp.StatusCode, h, string(raw)
}

func getHealth(t *testing.T, url string) (int, health) {
	t.Helper()
	code, h, _ := getStatus(t, url, "/health")
	return code, h
}

// The health check follows the database: 503 degraded while it is down, 200 again
// by itself once it is back. /readyz follows it too; /livez does not.
func TestHealthFollowsTheDatabase(t *testing.T) {
	dir := testdb.ServerDir(t)
	ctx := context.Background()
	c, err := pglocal.Start(ctx, pglocal.Options{Dir: dir, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { c.Stop(ctx) }() //nolint:errcheck
	db, err := postgres.Open(ctx, c.SuperuserURL("postgres"), postgres.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checks := map[string]voxhttp.Check{"database": voxhttp.DatabaseCheck(db), "writes": voxhttp.WriteCheck(db.ProbeWrite)}
	srv := &voxhttp.Server{Version: "test", Started: time.Now(), Checks: checks, Readiness: checks}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	if code, h := getHealth(t, ts.URL); code != 200 || h.Status != "ok" || h.Checks["database"]["status"] != "ok" {
		t.Fatalf("healthy: %d %+v", code, h)
	}
	if code, h, _ := getStatus(t, ts.URL, "/readyz"); code != 200 || h.Status != "ok" {
		t.Fatalf("ready: %d %+v", code, h)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	code, h := getHealth(t, ts.URL)
	if code != 503 || h.Status != "degraded" || h.Checks["database"]["status"] != "failing" || h.Checks["writes"]["status"] != "failing" {
		t.Fatalf("database down: %d %+v", code, h)
	}
	if code, h, _ := getStatus(t, ts.URL, "/readyz"); code != 503 || h.Status != "unavailable" || h.Checks["database"]["status"] != "failing" {
		t.Fatalf("readyz, database down: %d %+v", code, h)
	}
	if code, h, _ := getStatus(t, ts.URL, "/livez"); code != 200 || h.Status != "ok" {
		t.Fatalf("livez, database down: %d %+v", code, h)
	}
	if c, err = pglocal.Start(ctx, pglocal.Options{Dir: dir, Fast: true}); err != nil {
		t.Fatal(err)
	}
	if code, h := getHealth(t, ts.URL); code != 200 || h.Status != "ok" {
		t.Fatalf("database back: %d %+v", code, h)
	}
	if code, h, _ := getStatus(t, ts.URL, "/readyz"); code != 200 || h.Status != "ok" {
		t.Fatalf("readyz, database back: %d %+v", code, h)
	}
}

// The public /health body shows statuses only; a service_role token sees the
// details (key id, pool and job figures), a user token does not.
func TestHealthDetailsNeedTheServiceRole(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	kid := e.Keys.Current().ID
	user := e.SignUp("health@example.com")
	svc, err := e.Auth.ServiceRoleToken(context.Background(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		headers []string
	}{{"no token", nil}, {"user token", testenv.Bearer(user.AccessToken)}, {"bad token", testenv.Bearer("not-a-token")}} {
		code, h, raw := getStatus(t, e.URL, "/health", c.headers...)
		if code != 200 || h.Status != "ok" || h.Version != "" {
			t.Errorf("%s: %d %s", c.name, code, raw)
		}
		for _, name := range []string{"database", "writes", "migrations", "auth", "jobs"} {
			if len(h.Checks[name]) != 1 || h.Checks[name]["status"] != "ok" {
				t.Errorf("%s: check %s: %v", c.name, name, h.Checks[name])
			}
		}
		if strings.Contains(raw, kid) || strings.Contains(raw, "uptime") {
			t.Errorf("%s: public body shows details: %s", c.name, raw)
		}
	}
	code, h, raw := getStatus(t, e.URL, "/health", testenv.Bearer(svc)...)
	if code != 200 || h.Version != "test" || h.Checks["auth"]["signing_kid"] != kid ||
		h.Checks["jobs"]["discarded"] != 0.0 || h.Checks["migrations"]["pending"] != 0.0 || h.Checks["database"]["pool_total"] == nil {
		t.Errorf("service role: %d %s", code, raw)
	}
	if code, h, raw := getStatus(t, e.URL, "/readyz", testenv.Bearer(svc)...); code != 200 || h.Status != "ok" ||
		len(h.Checks) != 4 || strings.Contains(raw, kid) {
		t.Errorf("readyz: %d %s", code, raw)
	}
}

// A database whose schema is behind the binary is not ready, and is again once
// the migrations are applied.
func TestReadyzMigrationsBehind(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{NoJobWorkers: true})
	ctx := context.Background()
	if _, err := e.DB.MigrateDown(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if code, h, raw := getStatus(t, e.URL, "/readyz"); code != 503 || h.Checks["migrations"]["status"] != "failing" ||
		h.Checks["database"]["status"] != "ok" {
		t.Fatalf("behind: %d %s", code, raw)
	}
	if code, h := getHealth(t, e.URL); code != 503 || h.Status != "degraded" {
		t.Fatalf("health, behind: %d %+v", code, h)
	}
	if _, err := e.DB.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	if code, _, raw := getStatus(t, e.URL, "/readyz"); code != 200 {
		t.Fatalf("migrated: %d %s", code, raw)
	}
}

// No signing key loaded: a key ring that has not loaded its keys yet (as at
// start-up before Load) makes the instance unready.
func TestReadyzWithoutSigningKey(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ring := postgres.NewKeyRing(db, "", time.Hour)
	kid := func() string {
		if k := ring.Current(); k != nil {
			return k.ID
		}
		return ""
	}
	ready := map[string]voxhttp.Check{"database": voxhttp.DatabaseCheck(db), "auth": voxhttp.SigningKeyCheck(kid)}
	ts := httptest.NewServer((&voxhttp.Server{Readiness: ready, Checks: ready}).Handler())
	defer ts.Close()
	if code, h, raw := getStatus(t, ts.URL, "/readyz"); code != 503 || h.Checks["auth"]["status"] != "failing" || h.Checks["database"]["status"] != "ok" {
		t.Fatalf("no key: %d %s", code, raw)
	}
	if code, h := getHealth(t, ts.URL); code != 503 || h.Checks["auth"]["status"] != "failing" {
		t.Fatalf("health, no key: %d %+v", code, h)
	}
	if err := ring.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, _, raw := getStatus(t, ts.URL, "/readyz"); code != 200 {
		t.Fatalf("key loaded: %d %s", code, raw)
	}
}

// Reads work but writes do not: the write probe fails readiness where a ping
// alone said ok (a full disk did that in production). Two real ways to refuse
// writes: the service role loses its INSERT privilege on the events table,
// and the database becomes read-only for new sessions.
func TestReadyzWriteProbe(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{NoJobWorkers: true})
	ctx := context.Background()
	if code, _, raw := getStatus(t, e.URL, "/readyz"); code != 200 {
		t.Fatalf("before: %d %s", code, raw)
	}
	var n int
	if err := e.QueryRow(ctx, "select count(*) from webhook_events").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the probe left rows behind: %d %v", n, err)
	}
	if _, err := e.Exec(ctx, "revoke insert on webhook_events from "+postgres.AuthRole); err != nil {
		t.Fatal(err)
	}
	if code, h, raw := getStatus(t, e.URL, "/readyz"); code != 503 || h.Checks["writes"]["status"] != "failing" ||
		h.Checks["database"]["status"] != "ok" {
		t.Fatalf("insert revoked: %d %s", code, raw)
	}
	if _, err := e.Exec(ctx, "grant insert on webhook_events to "+postgres.AuthRole); err != nil {
		t.Fatal(err)
	}
	if code, _, raw := getStatus(t, e.URL, "/readyz"); code != 200 {
		t.Fatalf("insert granted again: %d %s", code, raw)
	}

	// A read-only database: new sessions start read-only, so a second
	// instance opened on it now pings fine and cannot write.
	dbURL := testdb.NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if err := testdb.Exec(ctx, "postgres", "alter database "+name+" set default_transaction_read_only = on"); err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, dbURL, postgres.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checks := map[string]voxhttp.Check{"database": voxhttp.DatabaseCheck(db), "writes": voxhttp.WriteCheck(db.ProbeWrite)}
	ts := httptest.NewServer((&voxhttp.Server{Readiness: checks, Checks: checks}).Handler())
	defer ts.Close()
	if code, h, raw := getStatus(t, ts.URL, "/readyz"); code != 503 || h.Checks["writes"]["status"] != "failing" ||
		h.Checks["database"]["status"] != "ok" {
		t.Fatalf("read-only database: %d %s", code, raw)
	}
	if code, h := getHealth(t, ts.URL); code != 503 || h.Checks["writes"]["status"] != "failing" {
		t.Fatalf("health, read-only database: %d %+v", code, h)
	}
}

func TestRequestIDEchoedOrGenerated(t *testing.T) {
	ts := httptest.NewServer((&voxhttp.Server{}).Handler())
	defer ts.Close()
	for in, echoed := range map[string]bool{"abc-123": true, "bad id with spaces": false, "": false} {
		req, _ := http.NewRequest("GET", ts.URL+"/nope", nil)
		if in != "" {
			req.Header.Set("X-Request-Id", in)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get("X-Request-Id")
		if got == "" || (got == in) != echoed {
			t.Errorf("in %q: got %q", in, got)
		}
		if resp.StatusCode != 404 {
			t.Errorf("unknown route: %d", resp.StatusCode)
		}
	}
}
