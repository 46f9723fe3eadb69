package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// MigrationsPending counts the migrations this binary knows that the database
// has not applied. Migrations applied by a newer binary and unknown to this one
// do not count: an instance of the previous release keeps serving during a
// rolling upgrade.
func (db *DB) MigrationsPending(ctx context.Context) (int, error) {
	all, err := Migrations()
	if err != nil {
		return 0, err
	}
	applied := map[int]bool{}
	err = db.InOwner(ctx, "readiness: applied migrations", func(c Conn) error {
		rows, err := c.Query(ctx, "select version from voxanne_schema_migrations")
		if err != nil {
			return err
		}
		var v int
		_, err = pgx.ForEachRow(rows, []any{&v}, func() error { applied[v] = true; return nil })
		return err
	})
	if err != nil {
		return 0, err
	}
	pending := 0
	for _, m := range all {
		if !applied[m.Version] {
			pending++
		}
	}
	return pending, nil
}

// errProbeRollback ends the write probe's transaction without committing it.
var errProbeRollback = errors.New("write probe: roll back")

// ProbeWrite checks that the database takes the writes webhook ingestion
// makes: it inserts a webhook event as the service role, as ingestion does,
// and rolls the insert back. It fails when the database is read-only, the
// role lost its privilege, or the table cannot grow (a full disk fails the
// insert that needs a new page), all states in which a ping still answers.
func (db *DB) ProbeWrite(ctx context.Context) error {
	return db.InService(ctx, "readiness: write probe", func(c Conn) error {
		err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `insert into webhook_events (provider, event_type, dedup_key, payload, status)
				values ('vapi', 'readiness-probe', 'voxanne:readiness-probe:' || gen_random_uuid(), '{}', 'unroutable')`); err != nil {
				return err
			}
			return errProbeRollback
		})
		if errors.Is(err, errProbeRollback) {
			return nil
		}
		return err
	})
}
