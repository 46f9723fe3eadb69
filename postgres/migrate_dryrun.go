package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// MigrateDownDryRun reports what MigrateDown(ctx, n) would revert, newest
// first, and checks that it would work: it runs those down steps in one
// transaction under the migration lock and rolls it back, so nothing changes.
// The steps take their locks meanwhile (briefly, as the real run would).
// River's own down migrations, which commit on their own, are not run.
func (db *DB) MigrateDownDryRun(ctx context.Context, n int) ([]Migration, error) {
	var plan []Migration
	err := db.withMigrations(ctx, func(conn *pgx.Conn, all []Migration, applied map[int]time.Time) error {
		for i := len(all) - 1; i >= 0 && len(plan) < n; i-- {
			if _, ok := applied[all[i].Version]; ok {
				plan = append(plan, all[i])
			}
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(context.Background()) //nolint:errcheck
		for _, m := range plan {
			if err := tx.Conn().PgConn().Exec(ctx, m.Down).Close(); err != nil {
				return fmt.Errorf("migration %04d_%s down would fail: %w", m.Version, m.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return plan, fmt.Errorf("migrate down (dry run): %w", err)
	}
	return plan, nil
}
