package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrateLockKey is the advisory lock that serializes migrations, so that two
// instances starting at once do not race.
const migrateLockKey = 0x766f78616e6e65 // "voxanne"

// Migration is one numbered schema change with its down step.
type Migration struct {
	Version int
	Name    string
	Up      string
	Down    string
}

// MigrationState is a migration and when it was applied (nil: pending).
type MigrationState struct {
	Migration
	AppliedAt *time.Time
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$`)

// Migrations returns the embedded migrations in order. Each must have both steps.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	byVersion := map[int]*Migration{}
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %q is not named NNNN_name.up|down.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		body, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		mig := byVersion[v]
		if mig == nil {
			mig = &Migration{Version: v, Name: m[2]}
			byVersion[v] = mig
		}
		if m[3] == "up" {
			mig.Up = string(body)
		} else {
			mig.Down = string(body)
		}
	}
	out := make([]Migration, 0, len(byVersion))
	for _, m := range byVersion {
		if m.Up == "" || m.Down == "" {
			return nil, fmt.Errorf("migration %04d_%s lacks its up or down step", m.Version, m.Name)
		}
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// withMigrationLock runs fn on one owner connection holding the migration lock,
// with the bookkeeping table in place.
func withMigrationLock(ctx context.Context, pool *pgxpool.Pool, fn func(*pgx.Conn) error) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "select pg_advisory_lock($1)", migrateLockKey); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer conn.Exec(context.Background(), "select pg_advisory_unlock($1)", migrateLockKey) //nolint:errcheck
	if _, err := conn.Exec(ctx, `create table if not exists voxanne_schema_migrations (
		version int primary key, name text not null, applied_at timestamptz not null default now())`); err != nil {
		return fmt.Errorf("migrate: bookkeeping table: %w", err)
	}
	return fn(conn.Conn())
}

func appliedVersions(ctx context.Context, conn *pgx.Conn) (map[int]time.Time, error) {
	rows, err := conn.Query(ctx, "select version, applied_at from voxanne_schema_migrations")
	if err != nil {
		return nil, err
	}
	out := map[int]time.Time{}
	var v int
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&v, &at}, func() error { out[v] = at; return nil })
	return out, err
}

// riverVersion is the migration whose step also runs River's migrator: River's
// job tables are created before its SQL and dropped after its down SQL.
const riverVersion = 5

// riverMigrate runs River's migrator, which commits each of its versions on
// its own (some cannot share a transaction); it is idempotent, so a failure
// after it is retried safely by the next run.
func riverMigrate(ctx context.Context, pool *pgxpool.Pool, up bool) error {
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return err
	}
	if up {
		_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	} else {
		_, err = m.Migrate(ctx, rivermigrate.DirectionDown, &rivermigrate.MigrateOpts{TargetVersion: -1})
	}
	if err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	return nil
}

// runStep applies one migration step and its bookkeeping in one transaction, so a
// failed step leaves nothing half-applied.
func runStep(ctx context.Context, conn *pgx.Conn, pool *pgxpool.Pool, m Migration, up bool) error {
	if up && m.Version == riverVersion {
		if err := riverMigrate(ctx, pool, true); err != nil {
			return err
		}
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		sql, book := m.Down, "delete from voxanne_schema_migrations where version = $1"
		if up {
			sql, book = m.Up, "insert into voxanne_schema_migrations (version, name) values ($1, $2)"
		}
		// The simple protocol runs a whole multi-statement file.
		if err := tx.Conn().PgConn().Exec(ctx, sql).Close(); err != nil {
			return err
		}

		args := []any{m.Version}
		if up {
			args = append(args, m.Name)
		}
		_, err := tx.Exec(ctx, book, args...)
		return err
	})
	if err == nil && !up && m.Version == riverVersion {
		err = riverMigrate(ctx, pool, false)
	}
	return err
}

// withMigrations runs fn under the migration lock with every known migration
// and the versions applied so far.
func (db *DB) withMigrations(ctx context.Context, fn func(conn *pgx.Conn, all []Migration, applied map[int]time.Time) error) error {
	all, err := Migrations()
	if err != nil {
		return err
	}
	return withMigrationLock(ctx, db.owner, func(conn *pgx.Conn) error {
		applied, err := appliedVersions(ctx, conn)
		if err != nil {
			return err
		}
		return fn(conn, all, applied)
	})
}

// MigrateUp applies every pending migration in order and lets the service roles
// log in; it returns the versions applied.
func (db *DB) MigrateUp(ctx context.Context) ([]int, error) {
	var done []int
	err := db.withMigrations(ctx, func(conn *pgx.Conn, all []Migration, applied map[int]time.Time) error {
		for _, m := range all {
			if _, ok := applied[m.Version]; ok {
				continue
			}
			if err := runStep(ctx, conn, db.owner, m, true); err != nil {
				return fmt.Errorf("migration %04d_%s up: %w", m.Version, m.Name, err)
			}
			done = append(done, m.Version)
		}
		// Every SECURITY DEFINER function runs as DefinerRole (backup.go).
		if err := conn.PgConn().Exec(ctx, handOverSQL).Close(); err != nil {
			return fmt.Errorf("hand SECURITY DEFINER functions to %s: %w", DefinerRole, err)
		}
		return setupRoleLogins(ctx, conn, db.ownerCfg.ConnConfig.Password)
	})
	if err != nil {
		return done, fmt.Errorf("migrate up: %w", err)
	}
	return done, nil
}

// MigrateDown reverts the n most recently applied migrations, newest first.
func (db *DB) MigrateDown(ctx context.Context, n int) ([]int, error) {
	var done []int
	err := db.withMigrations(ctx, func(conn *pgx.Conn, all []Migration, applied map[int]time.Time) error {
		for i := len(all) - 1; i >= 0 && len(done) < n; i-- {
			m := all[i]
			if _, ok := applied[m.Version]; !ok {
				continue
			}
			if err := runStep(ctx, conn, db.owner, m, false); err != nil {
				return fmt.Errorf("migration %04d_%s down: %w", m.Version, m.Name, err)
			}
			done = append(done, m.Version)
		}
		return nil
	})
	if err != nil {
		return done, fmt.Errorf("migrate down: %w", err)
	}
	return done, nil
}

// MigrationStatus lists every known migration and when it was applied.
func (db *DB) MigrationStatus(ctx context.Context) ([]MigrationState, error) {
	var out []MigrationState
	err := db.withMigrations(ctx, func(conn *pgx.Conn, all []Migration, applied map[int]time.Time) error {
		for _, m := range all {
			st := MigrationState{Migration: m}
			if at, ok := applied[m.Version]; ok {
				st.AppliedAt = &at
			}
			out = append(out, st)
		}
		return nil
	})
	return out, err
}
