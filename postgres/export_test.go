package postgres

import (
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/voxanne/voxanne"
)

// The role pools, for this package's external tests only: they check what each
// role can and cannot see, which needs the role's own connection.

func OwnerPool(db *DB) *pgxpool.Pool  { return db.owner }
func AuthPool(db *DB) *pgxpool.Pool   { return db.auth }
func TenantPool(db *DB) *pgxpool.Pool { return db.tenant }

// CallsListSQL is the calls list's statement for p's first page of limit
// calls, as GET /api/calls runs it.
func CallsListSQL(db *DB, p *voxanne.Principal, limit int) (string, []any) {
	return NewVoiceStore(db).callsQuery(p, voxanne.CallFilter{}, nil, limit, apiCalls)
}

// ClaimsJSON is what InTenant sets as request.jwt.claims for p.
func ClaimsJSON(p voxanne.Principal) ([]byte, error) { return claimsJSON(p) }
