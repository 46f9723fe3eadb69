package postgres

import (
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// RiverDriver returns the driver the job runner (River) works on: a pool of
// RiverRole, which may use River's tables and nothing else (migration 0012).
// The job runner never sees a pool.
func (db *DB) RiverDriver() riverdriver.Driver[pgx.Tx] { return riverpgxv5.New(db.river) }
