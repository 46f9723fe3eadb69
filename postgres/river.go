package postgres

import (
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// RiverDriver returns the driver the job runner (River) works on, over a pool
// of this package's: the job runner never sees a pool.
func (db *DB) RiverDriver() riverdriver.Driver[pgx.Tx] { return riverpgxv5.New(db.Owner) }
