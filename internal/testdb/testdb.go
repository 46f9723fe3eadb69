// Package testdb gives tests a real PostgreSQL with row-level security on: one
// private cluster per test binary (run as the unprivileged postgres user when the
// tests run as root), a template database migrated once, and a fresh clone of it
// for every test. NewRestricted gives the same on a second cluster, started on
// first use, whose databases belong to an owner that is no superuser, as on a
// managed PostgreSQL service.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne/postgres"
	"github.com/voxanne/voxanne/postgres/pglocal"
)

const template = "voxanne_template"

var (
	cluster *pglocal.Cluster
	counter atomic.Int64
	// baseDir holds the clusters' directories.
	baseDir string
)

// Main starts the cluster, migrates the template, runs the tests and stops the
// cluster. Use it from TestMain: os.Exit(testdb.Main(m)).
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "voxanne-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testdb:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	baseDir = dir
	ctx := context.Background()
	cluster, err = startCluster(ctx, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testdb: start cluster:", err)
		return 1
	}
	defer cluster.Stop(context.Background()) //nolint:errcheck
	defer stopRestricted()
	if err := createTemplate(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "testdb:", err)
		return 1
	}
	return m.Run()
}

func startCluster(ctx context.Context, dir string) (*pglocal.Cluster, error) {
	return pglocal.Start(ctx, pglocal.Options{
		Dir: dir, Fast: true,
		Settings: map[string]string{"max_connections": "300", "shared_buffers": "64MB"},
	})
}

func createTemplate(ctx context.Context) error {
	if err := Exec(ctx, "postgres", "create database "+template); err != nil {
		return err
	}
	db, err := postgres.Open(ctx, cluster.SuperuserURL(template), postgres.Options{Migrate: true})
	if err != nil {
		return fmt.Errorf("migrate template: %w", err)
	}
	db.Close()
	return nil
}

// Exec runs one statement as the superuser on database.
func Exec(ctx context.Context, database, sql string, args ...any) error {
	return execOn(ctx, cluster, database, sql, args...)
}

func execOn(ctx context.Context, c *pglocal.Cluster, database, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, c.SuperuserURL(database))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// NewDatabase creates an empty-but-migrated clone of the template and returns its
// superuser URL; it is dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	if cluster == nil {
		t.Fatal("testdb: no cluster: call testdb.Main from TestMain")
	}
	return cluster.SuperuserURL(cloneTemplate(t, cluster, ""))
}

// cloneTemplate creates a clone of c's template (owned by owner, unless "")
// that is dropped when the test ends, and returns its name.
func cloneTemplate(t testing.TB, c *pglocal.Cluster, owner string) string {
	t.Helper()
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), counter.Add(1))
	ctx := context.Background()
	sql := fmt.Sprintf("create database %s template %s", name, template)
	if owner != "" {
		sql += " owner " + owner
	}
	if err := execOn(ctx, c, "postgres", sql); err != nil {
		t.Fatalf("testdb: clone template: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := execOn(ctx, c, "postgres", fmt.Sprintf("drop database if exists %s with (force)", name)); err != nil {
			t.Errorf("testdb: drop %s: %v", name, err)
		}
	})
	return name
}

// New returns an open DB on a fresh clone of the migrated template.
func New(t testing.TB) *postgres.DB {
	t.Helper()
	return Open(t, NewDatabase(t))
}

// Open opens the database at url (as New does) until the test ends.
func Open(t testing.TB, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, postgres.Options{MaxConns: 8})
	if err != nil {
		t.Fatalf("testdb: open: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// RestrictedOwner is the owner of NewRestricted's databases: a login with
// CREATEROLE and nothing else (no superuser, no BYPASSRLS, no CREATEDB), which
// created the service roles itself when it migrated its template.
const RestrictedOwner = "voxanne_owner"

// The second cluster, for NewRestricted: started by the first test that asks.
var restricted struct {
	once     sync.Once
	err      error
	cluster  *pglocal.Cluster
	password string
}

// startRestricted starts the second cluster, creates RestrictedOwner and has
// it migrate a template database it owns, as `voxanne serve` would on a
// managed service's database.
func startRestricted() error {
	ctx := context.Background()
	c, err := startCluster(ctx, filepath.Join(baseDir, "restricted"))
	if err != nil {
		return fmt.Errorf("start the restricted owner's cluster: %w", err)
	}
	restricted.cluster = c
	pw := make([]byte, 16)
	_, _ = rand.Read(pw)
	restricted.password = hex.EncodeToString(pw)
	for _, sql := range []string{
		fmt.Sprintf("create role %s login createrole password '%s'", RestrictedOwner, restricted.password),
		fmt.Sprintf("create database %s owner %s", template, RestrictedOwner),
	} {
		if err := execOn(ctx, c, "postgres", sql); err != nil {
			return err
		}
	}
	db, err := postgres.Open(ctx, restrictedOwnerURL(template), postgres.Options{Migrate: true})
	if err != nil {
		return fmt.Errorf("migrate the template as %s: %w", RestrictedOwner, err)
	}
	db.Close()
	return nil
}

func restrictedOwnerURL(database string) string {
	return restricted.cluster.ConnString(database, RestrictedOwner, restricted.password)
}

func stopRestricted() {
	if restricted.cluster != nil {
		_ = restricted.cluster.Stop(context.Background())
	}
}

// NewRestrictedDatabase creates a fresh clone of the restricted cluster's
// migrated template, owned by RestrictedOwner, and returns the owner's URL of
// it (what DATABASE_URL would be) and a superuser's (for test fixtures and
// checks: the owner itself is bound by row-level security). It is dropped
// when the test ends.
func NewRestrictedDatabase(t testing.TB) (ownerURL, superuserURL string) {
	t.Helper()
	if baseDir == "" {
		t.Fatal("testdb: no cluster: call testdb.Main from TestMain")
	}
	restricted.once.Do(func() { restricted.err = startRestricted() })
	if restricted.err != nil {
		t.Fatalf("testdb: %v", restricted.err)
	}
	name := cloneTemplate(t, restricted.cluster, RestrictedOwner)
	return restrictedOwnerURL(name), restricted.cluster.SuperuserURL(name)
}

// NewRestricted is New on a database of NewRestrictedDatabase's, opened as its
// restricted owner; the superuser URL of the same database is returned too.
func NewRestricted(t testing.TB) (*postgres.DB, string) {
	t.Helper()
	ownerURL, superURL := NewRestrictedDatabase(t)
	return Open(t, ownerURL), superURL
}

// ServerDir returns a fresh directory for a cluster of a test's own, reachable by
// the postgres user when tests run as root (t.TempDir's parent is private).
func ServerDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "voxanne-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o711); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return filepath.Join(d, "data")
}

// Checksums describes every table of schemas public and auth by its row count
// and an MD5 of its rows in a fixed order, and every sequence by its last
// value, read at url (a superuser's: row-level security must not hide rows),
// so that a restored backup can be compared with its original.
func Checksums(ctx context.Context, url string) (map[string]string, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `select format('%I.%I', schemaname, tablename) from pg_tables
		where schemaname in ('public', 'auth') order by 1`)
	if err != nil {
		return nil, err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, t := range tables {
		var n int64
		var sum string
		if err := conn.QueryRow(ctx, fmt.Sprintf(`select count(*), coalesce(md5(string_agg(r::text, E'\n' order by r::text)), '')
			from %s r`, t)).Scan(&n, &sum); err != nil {
			return nil, fmt.Errorf("%s: %w", t, err)
		}
		out[t] = fmt.Sprintf("%d rows %s", n, sum)
	}
	rows, err = conn.Query(ctx, `select format('%I.%I', schemaname, sequencename), coalesce(last_value, 0)
		from pg_sequences where schemaname in ('public', 'auth')`)
	if err != nil {
		return nil, err
	}
	var name string
	var last int64
	_, err = pgx.ForEachRow(rows, []any{&name, &last}, func() error {
		out["sequence "+name] = fmt.Sprint(last)
		return nil
	})
	return out, err
}
