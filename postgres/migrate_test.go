package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/postgres"
)

func tableExists(t *testing.T, db *postgres.DB, name string) bool {
	t.Helper()
	var ok bool
	if err := postgres.OwnerPool(db).QueryRow(context.Background(), "select to_regclass($1) is not null", name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestMigrateDownToZeroAndUpAgain(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, testdb.NewDatabase(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	all, err := postgres.Migrations()
	if err != nil || len(all) == 0 {
		t.Fatalf("migrations: %v %d", err, len(all))
	}
	// The clone starts fully migrated: up is a no-op.
	if applied, err := db.MigrateUp(ctx); err != nil || len(applied) != 0 {
		t.Fatalf("up on a migrated db applied %v (%v)", applied, err)
	}
	reverted, err := db.MigrateDown(ctx, len(all)+5)
	if err != nil {
		t.Fatal(err)
	}
	if len(reverted) != len(all) || reverted[0] != all[len(all)-1].Version {
		t.Fatalf("reverted %v", reverted)
	}
	for _, tbl := range []string{"organizations", "memberships", "auth.users"} {
		if tableExists(t, db, tbl) {
			t.Errorf("%s survived down to zero", tbl)
		}
	}
	status, err := db.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range status {
		if s.AppliedAt != nil {
			t.Errorf("%d still applied", s.Version)
		}
	}
	applied, err := db.MigrateUp(ctx)
	if err != nil || len(applied) != len(all) {
		t.Fatalf("up again applied %v (%v)", applied, err)
	}
	for _, tbl := range []string{"organizations", "memberships", "auth.users", "auth.signing_keys"} {
		if !tableExists(t, db, tbl) {
			t.Errorf("%s missing after up", tbl)
		}
	}
}

// Two instances migrating at once: the advisory lock makes one wait for the
// other, and neither fails.
func TestConcurrentMigrateUp(t *testing.T) {
	ctx := context.Background()
	url := testdb.NewDatabase(t)
	db, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.MigrateDown(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			d, err := postgres.Open(ctx, url, postgres.Options{Migrate: true})
			if err == nil {
				d.Close()
			}
			errs <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Errorf("instance %d: %v", i, err)
		}
	}
	if !tableExists(t, db, "memberships") {
		t.Fatal("not migrated")
	}
}

func TestMigrationFilesArePaired(t *testing.T) {
	all, err := postgres.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range all {
		if m.Version != i+1 {
			t.Errorf("migration %d has version %d: numbers must be consecutive", i, m.Version)
		}
	}
}

// A verifier computed here is one PostgreSQL accepts: a role given it logs in
// with the password and not with another.
func TestSCRAMVerifierLogsIn(t *testing.T) {
	url := testdb.NewDatabase(t)
	ctx := context.Background()
	if err := testdb.Exec(ctx, "postgres", "drop role if exists scram_probe"); err != nil {
		t.Fatal(err)
	}
	if err := testdb.Exec(ctx, "postgres", "create role scram_probe login password '"+postgres.SCRAMVerifier("probe-Pass-1")+"'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = testdb.Exec(context.Background(), "postgres", "drop role if exists scram_probe") })
	login := func(pw string) error {
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		cfg.User, cfg.Password = "scram_probe", pw
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			conn.Close(ctx)
		}
		return err
	}
	if err := login("probe-Pass-1"); err != nil {
		t.Fatalf("right password refused: %v", err)
	}
	if err := login("probe-Pass-2"); err == nil {
		t.Fatal("wrong password accepted")
	}
}
