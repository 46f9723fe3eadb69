package pglocal_test

import (
	"context"
	"github.com/jackc/pgx/v5"
	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/postgres/pglocal"
	"strconv"
	"strings"
	"testing"
)

func itoa(n int) string            { return strconv.Itoa(n) }
func splitLines(s string) []string { return strings.Split(s, "\n") }
func contains(s, sub string) bool  { return strings.Contains(s, sub) }

func dataDir(t *testing.T) string { return testdb.ServerDir(t) }

func exec(t *testing.T, c *pglocal.Cluster, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.SuperuserURL("postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// clusterDir is dataDir for a test that starts a cluster of its own: the slow
// part of this package, skipped by the fast loop (go test -short).
func clusterDir(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: starts a PostgreSQL cluster of its own")
	}
	return dataDir(t)
}
