package postgres

import "github.com/jackc/pgx/v5/pgxpool"

// The role pools, for this package's external tests only: they check what each
// role can and cannot see, which needs the role's own connection.

func OwnerPool(db *DB) *pgxpool.Pool  { return db.owner }
func AuthPool(db *DB) *pgxpool.Pool   { return db.auth }
func TenantPool(db *DB) *pgxpool.Pool { return db.tenant }
