// Package testdb gives tests a real PostgreSQL with row-level security on: one
// private cluster per test binary (run as the unprivileged postgres user when the
// tests run as root), a template database migrated once, and a fresh clone of it
// for every test.
package testdb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
	ctx := context.Background()
	cluster, err = pglocal.Start(ctx, pglocal.Options{
		Dir: dir, Fast: true,
		Settings: map[string]string{"max_connections": "300", "shared_buffers": "64MB"},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "testdb: start cluster:", err)
		return 1
	}
	defer cluster.Stop(context.Background()) //nolint:errcheck
	if err := createTemplate(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "testdb:", err)
		return 1
	}
	return m.Run()
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
	conn, err := pgx.Connect(ctx, cluster.SuperuserURL(database))
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
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), counter.Add(1))
	ctx := context.Background()
	if err := Exec(ctx, "postgres", fmt.Sprintf("create database %s template %s", name, template)); err != nil {
		t.Fatalf("testdb: clone template: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := Exec(ctx, "postgres", fmt.Sprintf("drop database if exists %s with (force)", name)); err != nil {
			t.Errorf("testdb: drop %s: %v", name, err)
		}
	})
	return cluster.SuperuserURL(name)
}

// New returns an open DB on a fresh clone of the migrated template.
func New(t testing.TB) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), NewDatabase(t), postgres.Options{MaxConns: 8})
	if err != nil {
		t.Fatalf("testdb: open: %v", err)
	}
	t.Cleanup(db.Close)
	return db
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
