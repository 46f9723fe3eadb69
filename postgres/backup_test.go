package postgres_test

import (
	"context"
	"maps"
	"path/filepath"
	"testing"

	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/postgres"
)

// A backup of a database a superuser owns (the managed cluster's) restores
// into another cluster's database whose owner has only CREATEROLE and
// another name, row for row, and works there: the move from the managed
// cluster to a managed PostgreSQL service.
func TestBackupMovesToACreateroleOwner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcURL := testdb.NewDatabase(t)
	src := testdb.Open(t, srcURL)
	signUp(t, src, "moving@example.com")
	tools, err := postgres.FindTools("")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "voxanne.backup")
	if _, err := src.Backup(ctx, tools, file); err != nil {
		t.Fatal(err)
	}
	dst, dstSuperURL := testdb.NewRestricted(t)
	if _, err := dst.Restore(ctx, tools, file, postgres.RestoreOptions{Replace: true}); err != nil {
		t.Fatal(err)
	}
	want, err := testdb.Checksums(ctx, srcURL)
	if err != nil {
		t.Fatal(err)
	}
	got, err := testdb.Checksums(ctx, dstSuperURL)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		for name, sum := range want {
			if got[name] != sum {
				t.Errorf("%s: %q, want %q", name, got[name], sum)
			}
		}
		t.Fatalf("%d tables and sequences, want %d", len(got), len(want))
	}
	// It works under its new owner: the service roles log in, and the
	// SECURITY DEFINER functions run as voxanne_definer again.
	_, org := signUp(t, dst, "after@example.com")
	var seq int64
	if err := postgres.AuthPool(dst).QueryRow(ctx, `insert into audit_log (org_id, action) values ($1, 'test.entry') returning seq`, org).Scan(&seq); err != nil || seq != 1 {
		t.Fatalf("audit entry after the move: seq %d, %v", seq, err)
	}
}
