package http_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	voxhttp "github.com/voxanne/voxanne/http"
	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/postgres"
	"github.com/voxanne/voxanne/postgres/pglocal"
)

type health struct {
	Status string                    `json:"status"`
	Checks map[string]map[string]any `json:"checks"`
}

func getHealth(t *testing.T, url string) (int, health) {
	t.Helper()
	resp, err := http.Get(url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id")
	}
	return resp.StatusCode, h
}

// The health check follows the database: 503 degraded while it is down, 200 again
// by itself once it is back.
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
	srv := &voxhttp.Server{Version: "test", Started: time.Now(),
		Checks: map[string]voxhttp.Check{"database": voxhttp.DatabaseCheck(db)}}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	if code, h := getHealth(t, ts.URL); code != 200 || h.Status != "ok" || h.Checks["database"]["status"] != "ok" {
		t.Fatalf("healthy: %d %+v", code, h)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	code, h := getHealth(t, ts.URL)
	if code != 503 || h.Status != "degraded" || h.Checks["database"]["status"] != "failing" {
		t.Fatalf("database down: %d %+v", code, h)
	}
	if c, err = pglocal.Start(ctx, pglocal.Options{Dir: dir, Fast: true}); err != nil {
		t.Fatal(err)
	}
	if code, h := getHealth(t, ts.URL); code != 200 || h.Status != "ok" {
		t.Fatalf("database back: %d %+v", code, h)
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
