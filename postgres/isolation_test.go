package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/postgres"
)

// tenantTables are every table that holds an org's data, with the column that
// names the org. A new tenant table must be added here; TestEveryTenantTableListed
// fails otherwise.
var tenantTables = map[string]string{
	"organizations": "id",
	"memberships":   "org_id",
	"invitations":   "org_id",
	"audit_log":     "org_id",
	"audit_heads":   "org_id",
	"phone_numbers": "org_id",
	// Operator assignments: tenants read their own, never write any.
	"phone_number_assignments": "org_id",
	"webhook_endpoints":        "org_id",
	"contacts":                 "org_id",
	"calls":                    "org_id",
	"messages":                 "org_id",
	"webhook_events":           "org_id",
}

// operatorTables hold records about orgs for the operator alone: the tenant
// role may add its own org's row and never read, change or delete any.
var operatorTables = map[string]string{
	// The record of a deleted org, written in the deleting transaction.
	"org_deletions": "org_id",
}

type fixture struct {
	db           *postgres.DB
	orgA, orgB   string
	userA, userB string
}

// signUp inserts a user as the auth service does; the trigger makes the org.
func signUp(t *testing.T, db *postgres.DB, email string) (userID, orgID string) {
	t.Helper()
	err := postgres.AuthPool(db).QueryRow(context.Background(),
		`insert into auth.users (email, raw_user_meta_data) values ($1, '{"org_name":"Org of `+email+`"}')
		 returning id, raw_app_meta_data->>'org_id'`, email).Scan(&userID, &orgID)
	if err != nil {
		t.Fatalf("sign up %s: %v", email, err)
	}
	return userID, orgID
}

func newFixture(t *testing.T) fixture {
	db := testdb.New(t)
	f := fixture{db: db}
	f.userA, f.orgA = signUp(t, db, "a@example.com")
	f.userB, f.orgB = signUp(t, db, "b@example.com")
	for i, org := range []string{f.orgA, f.orgB} {
		ctx := context.Background()
		for _, sql := range []string{
			`insert into phone_numbers (org_id, e164, provider, provider_id) values ($1, '+1555000000' || $2, 'vapi', 'pn-' || $2)`,
			`insert into phone_number_assignments (org_id, e164, provider, assistant_id) values ($1, '+1555222222' || $2, 'vapi', 'asst-' || $2)`,
			`insert into webhook_endpoints (org_id, provider, secret, encrypted) values ($1, 'vapi', convert_to('secret-' || $2, 'UTF8'), false)`,
			`insert into contacts (org_id, phone_number) values ($1, '+1555111111' || $2)`,
			`insert into calls (org_id, provider_call_id, summary) values ($1, 'call-' || $2, 'a call')`,
			`insert into messages (org_id, provider_message_id, direction, body) values ($1, 'SM' || $2, 'inbound', 'hi')`,
			`insert into webhook_events (org_id, provider, event_type, dedup_key, payload) values ($1, 'vapi', 'hang', 'k' || $2, '{}')`,
		} {
			if _, err := postgres.OwnerPool(db).Exec(ctx, sql, org, fmt.Sprint(i)); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		if _, err := postgres.OwnerPool(db).Exec(context.Background(), `insert into invitations (org_id, email, role, token_hash, expires_at)
			values ($1, 'guest@example.com', 'member', gen_random_uuid()::text::bytea, now() + interval '7 days')`, org); err != nil {
			t.Fatal(err)
		}
		if _, err := postgres.OwnerPool(db).Exec(context.Background(), `insert into audit_log (org_id, action, prev_hash, hash) values ($1, 'test', '', '')`, org); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func principal(user, org string) voxanne.Principal {
	return voxanne.Principal{UserID: user, OrgID: org, OrgRole: voxanne.RoleOwner, Role: "authenticated"}
}

func TestSignUpTriggerCreatesOrgAndOwnerMembership(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var name, role, appRole string
	err := postgres.OwnerPool(f.db).QueryRow(context.Background(), `
		select o.name, m.role, u.raw_app_meta_data->>'org_role'
		from auth.users u join memberships m on m.user_id = u.id join organizations o on o.id = m.org_id
		where u.id = $1 and o.id = (u.raw_app_meta_data->>'org_id')::uuid`, f.userA).Scan(&name, &role, &appRole)
	if err != nil {
		t.Fatal(err)
	}
	if name != "Org of a@example.com" || role != "owner" || appRole != "owner" {
		t.Fatalf("got org %q role %q app_metadata.org_role %q", name, role, appRole)
	}
}

func TestTenantRoleWithoutClaimsReadsNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	for table := range tenantTables {
		var n int
		// Straight on the tenant pool: no claims set at all.
		if err := postgres.TenantPool(f.db).QueryRow(ctx, "select count(*) from "+table).Scan(&n); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if n != 0 {
			t.Errorf("%s: tenant role without claims sees %d rows", table, n)
		}
		var total int
		if err := postgres.OwnerPool(f.db).QueryRow(ctx, "select count(*) from "+table).Scan(&total); err != nil || total == 0 {
			t.Fatalf("%s: fixture has no rows (%d, %v): the check above proves nothing", table, total, err)
		}
	}
}

func TestTenantClaimsConfineEveryStatementToTheOrg(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	pa := principal(f.userA, f.orgA)
	// count runs one statement as org A; a permission error counts as reaching
	// nothing (some tables are append-only or read-only for the tenant role).
	count := func(t *testing.T, sql string, arg string) int64 {
		t.Helper()
		var n int64
		err := f.db.InTenant(ctx, pa, func(tx pgx.Tx) error {
			if strings.HasPrefix(sql, "select") {
				return tx.QueryRow(ctx, sql, arg).Scan(&n)
			}
			tag, err := tx.Exec(ctx, sql, arg)
			n = tag.RowsAffected()
			return err
		})
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42501" {
			return 0
		}
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	for table, col := range tenantTables {
		t.Run(table, func(t *testing.T) {
			if n := count(t, "select count(*) from "+table+" where "+col+" = $1", f.orgA); n == 0 {
				t.Errorf("org A sees none of its own rows")
			}
			if n := count(t, "select count(*) from "+table+" where "+col+" = $1", f.orgB); n != 0 {
				t.Errorf("org A sees %d rows of org B", n)
			}
			if n := count(t, "update "+table+" set "+col+" = "+col+" where "+col+" = $1", f.orgB); n != 0 {
				t.Errorf("update reached %d rows of org B", n)
			}
			if n := count(t, "delete from "+table+" where "+col+" = $1", f.orgB); n != 0 {
				t.Errorf("delete reached %d rows of org B", n)
			}
			var n int
			if err := postgres.OwnerPool(f.db).QueryRow(ctx, "select count(*) from "+table+" where "+col+" = $1", f.orgB).Scan(&n); err != nil || n == 0 {
				t.Fatalf("org B's rows are gone (%d, %v)", n, err)
			}
		})
	}
}

// The audit log is append-only for the application: the tenant role cannot
// change or delete even its own org's entries.
func TestAuditLogAppendOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	for _, sql := range []string{"update audit_log set action = 'x'", "delete from audit_log", "update audit_heads set seq = 0"} {
		err := f.db.InTenant(ctx, principal(f.userA, f.orgA), func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, sql)
			return err
		})
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("%s: want permission denied, got %v", sql, err)
		}
	}
}

// An insert or an update that would move a row into another org is refused by
// the policies' WITH CHECK, whatever the statement says.
func TestTenantCannotWriteIntoAnotherOrg(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	pa := principal(f.userA, f.orgA)
	cases := map[string]string{
		"insert organization":      "insert into organizations (id, name) values ('" + f.orgB + "', 'x')",
		"insert membership":        "insert into memberships (org_id, user_id, role) values ('" + f.orgB + "', '" + f.userA + "', 'owner')",
		"move membership":          "update memberships set org_id = '" + f.orgB + "' where org_id = '" + f.orgA + "'",
		"move organization":        "update organizations set id = '" + f.orgB + "' where id = '" + f.orgA + "'",
		"insert other new org row": "insert into organizations (name) values ('new org')",
		"insert invitation":        "insert into invitations (org_id, email, role, token_hash, expires_at) values ('" + f.orgB + "', 'x@example.com', 'member', 'x', now())",
		"insert audit entry":       "insert into audit_log (org_id, action, prev_hash, hash) values ('" + f.orgB + "', 'forged', '', '')",
		"insert endpoint":          "insert into webhook_endpoints (org_id, provider, secret, encrypted) values ('" + f.orgB + "', 'vapi', 'x', false)",
		"assign to own org":        "insert into phone_number_assignments (org_id, e164, provider) values ('" + f.orgA + "', '+14155550999', 'vapi')",
		"claim an assignment":      "update phone_number_assignments set org_id = '" + f.orgA + "'",
	}
	for name, sql := range cases {
		t.Run(name, func(t *testing.T) {
			err := f.db.InTenant(ctx, pa, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, sql)
				return err
			})
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "42501" {
				t.Fatalf("want a row-level security violation (42501), got %v", err)
			}
		})
	}
}

func TestRLSForcedAndTenantRoleUnprivileged(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	for table := range tenantTables {
		var enabled, forced bool
		err := postgres.OwnerPool(f.db).QueryRow(ctx, "select relrowsecurity, relforcerowsecurity from pg_class where oid = $1::regclass", table).Scan(&enabled, &forced)
		if err != nil {
			t.Fatal(err)
		}
		if !enabled || !forced {
			t.Errorf("%s: row level security enabled=%v forced=%v", table, enabled, forced)
		}
	}
	var super, bypass bool
	if err := postgres.TenantPool(f.db).QueryRow(ctx, "select rolsuper, rolbypassrls from pg_roles where rolname = current_user").Scan(&super, &bypass); err != nil {
		t.Fatal(err)
	}
	if super || bypass {
		t.Errorf("tenant role: superuser=%v bypassrls=%v", super, bypass)
	}
	var owned int
	if err := postgres.OwnerPool(f.db).QueryRow(ctx, `select count(*) from pg_class c join pg_roles r on r.oid = c.relowner where r.rolname = $1`, postgres.TenantRole).Scan(&owned); err != nil {
		t.Fatal(err)
	}
	if owned != 0 {
		t.Errorf("tenant role owns %d relations", owned)
	}
	var current string
	if err := postgres.TenantPool(f.db).QueryRow(ctx, "select current_user").Scan(&current); err != nil || current != postgres.TenantRole {
		t.Fatalf("tenant pool logs in as %q (%v)", current, err)
	}
	for _, table := range []string{"auth.users", "auth.signing_keys", "auth.sessions", "auth.refresh_tokens"} {
		err := f.db.InTenant(ctx, principal(f.userA, f.orgA), func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "select * from "+table+" limit 1")
			return err
		})
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("%s: want permission denied, got %v", table, err)
		}
	}
}

// TestEveryTenantTableListed keeps tenantTables complete: any table in public
// with an org column (or organizations itself) must be covered above.
func TestEveryTenantTableListed(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	rows, err := postgres.OwnerPool(db).Query(context.Background(), `
		select distinct c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
		left join pg_attribute a on a.attrelid = c.oid and a.attname = 'org_id' and not a.attisdropped
		where n.nspname = 'public' and c.relkind in ('r', 'p') and (a.attname is not null or c.relname = 'organizations')`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		_, op := operatorTables[n]
		if _, ok := tenantTables[n]; !ok && !op && !strings.HasPrefix(n, "river_") {
			t.Errorf("tenant table %s is not covered by the isolation tests", n)
		}
	}
}

// Operator tables: as org A the tenant role adds A's row only, and reads,
// changes and deletes nothing, not even A's.
func TestOperatorTablesWriteOnlyForTenants(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	pa := principal(f.userA, f.orgA)
	insert := func(org string) string {
		return "insert into org_deletions (org_id, name, via, audit_seq, audit_hash) values ('" + org + "', 'x', 'api', 1, '')"
	}
	for table := range operatorTables {
		var enabled, forced bool
		if err := postgres.OwnerPool(f.db).QueryRow(ctx, "select relrowsecurity, relforcerowsecurity from pg_class where oid = $1::regclass", table).
			Scan(&enabled, &forced); err != nil || !enabled || !forced {
			t.Errorf("%s: row level security enabled=%v forced=%v (%v)", table, enabled, forced, err)
		}
	}
	run := func(sql string) error {
		return f.db.InTenant(ctx, pa, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, sql)
			return err
		})
	}
	if err := run(insert(f.orgA)); err != nil {
		t.Fatalf("A adds its own record: %v", err)
	}
	for _, sql := range []string{insert(f.orgB), "select * from org_deletions", "update org_deletions set name = 'y'", "delete from org_deletions"} {
		var pe *pgconn.PgError
		if err := run(sql); !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("%s: want 42501, got %v", sql, err)
		}
	}
	var n int
	if err := postgres.OwnerPool(f.db).QueryRow(ctx, "select count(*) from org_deletions").Scan(&n); err != nil || n != 1 {
		t.Errorf("org_deletions has %d rows (%v), want A's one", n, err)
	}
}

func TestInTenantRefusesAPrincipalWithoutOrg(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	err := db.InTenant(context.Background(), voxanne.Principal{UserID: "x"}, func(pgx.Tx) error { return nil })
	if voxanne.ErrorCode(err) != voxanne.EFORBIDDEN {
		t.Fatalf("got %v", err)
	}
}
