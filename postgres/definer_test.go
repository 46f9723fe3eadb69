package postgres_test

// The SECURITY DEFINER functions run as voxanne_definer, whose policies let
// them work whoever owns the database: a superuser (the managed cluster) or an
// owner with only CREATEROLE, to which forced row-level security applies.

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/postgres"
)

func TestDefinerFunctionsWorkForEitherOwner(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(t *testing.T) *postgres.DB{
		"superuser owner":  func(t *testing.T) *postgres.DB { return testdb.New(t) },
		"createrole owner": func(t *testing.T) *postgres.DB { db, _ := testdb.NewRestricted(t); return db },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := open(t)
			auth := postgres.AuthPool(db)
			userID, orgID := signUp(t, db, "definer@example.com")

			// audit_chain(): the entry gets its seq from the org's head.
			var seq int64
			if err := auth.QueryRow(ctx, `insert into audit_log (org_id, action) values ($1, 'test.entry') returning seq`, orgID).Scan(&seq); err != nil || seq != 1 {
				t.Errorf("audit entry: seq %d, %v", seq, err)
			}

			// route_phone_number(): an operator assignment routes its number.
			if _, err := auth.Exec(ctx, `insert into phone_number_assignments (org_id, e164, provider) values ($1, '+14155550123', 'vapi')`, orgID); err != nil {
				t.Fatal(err)
			}
			var routed string
			if err := auth.QueryRow(ctx, `select org_id::text from route_phone_number('vapi', null, null, '+14155550123')`).Scan(&routed); err != nil || routed != orgID {
				t.Errorf("route: %q, %v; want %s", routed, err, orgID)
			}

			// org_member_emails(): the tenant role sees its org's addresses.
			claims, _ := json.Marshal(map[string]any{"sub": userID, "role": "authenticated", "app_metadata": map[string]string{"org_id": orgID}})
			var emails []string
			err := pgx.BeginFunc(ctx, postgres.TenantPool(db), func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `select set_config('request.jwt.claims', $1, true)`, string(claims)); err != nil {
					return err
				}
				rows, err := tx.Query(ctx, `select email from org_member_emails()`)
				if err != nil {
					return err
				}
				emails, err = pgx.CollectRows(rows, pgx.RowTo[string])
				return err
			})
			if err != nil || len(emails) != 1 || emails[0] != "definer@example.com" {
				t.Errorf("member e-mails %q, %v", emails, err)
			}

			// The revocation triggers: the org's MFA policy changed, a session
			// ended, a membership and a user deleted.
			if _, err := auth.Exec(ctx, `insert into auth.sessions (user_id) values ($1)`, userID); err != nil {
				t.Fatal(err)
			}
			for _, sql := range []string{
				`update organizations set require_mfa = true where id = (select org_id from memberships where user_id = $1)`,
				`update auth.sessions set revoked_at = now() where user_id = $1`,
				`delete from memberships where user_id = $1`,
				`delete from auth.users where id = $1`,
			} {
				if _, err := auth.Exec(ctx, sql, userID); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
			}
			var kinds []string
			rows, err := auth.Query(ctx, `select kind from auth.revocations where user_id = $1 order by id`, userID)
			if err == nil {
				kinds, err = pgx.CollectRows(rows, pgx.RowTo[string])
			}
			if err != nil || !slices.Equal(kinds, []string{"membership", "session", "membership", "user"}) {
				t.Errorf("revocations %q, %v", kinds, err)
			}
		})
	}
}

// The roles of migration 0013 are what the migration says, and stay so: every
// SECURITY DEFINER function (a later migration's too) belongs to
// voxanne_definer, which owns nothing else, and every table with row-level
// security has a policy that lets voxanne_backup read it.
func TestDefinerAndBackupRoles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	owner := postgres.OwnerPool(testdb.New(t))
	for _, check := range []struct{ what, sql string }{
		{"roles that can log in, are superusers or bypass row-level security",
			`select rolname from pg_roles where rolname in ('voxanne_definer', 'voxanne_backup')
			 and (rolcanlogin or rolsuper or rolbypassrls or rolinherit)`},
		{"SECURITY DEFINER functions not owned by voxanne_definer",
			`select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
			 where n.nspname in ('public', 'auth') and p.prosecdef and p.proowner <> 'voxanne_definer'::regrole`},
		{"objects owned by voxanne_definer besides SECURITY DEFINER functions",
			`select c.oid::regclass::text from pg_class c where c.relowner in ('voxanne_definer'::regrole, 'voxanne_backup'::regrole)
			 union all select p.oid::regprocedure::text from pg_proc p
			 where p.proowner = 'voxanne_backup'::regrole or (p.proowner = 'voxanne_definer'::regrole and not p.prosecdef)`},
		{"tables with row-level security that voxanne_backup cannot read",
			`select c.oid::regclass::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
			 where n.nspname in ('public', 'auth') and c.relrowsecurity and not exists (
			   select 1 from pg_policy p where p.polrelid = c.oid and p.polcmd in ('r', '*')
			   and 'voxanne_backup'::regrole = any (p.polroles))`},
	} {
		rows, err := owner.Query(ctx, check.sql)
		if err != nil {
			t.Fatalf("%s: %v", check.what, err)
		}
		bad, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(bad) > 0 {
			t.Errorf("%s: %q %v", check.what, bad, err)
		}
	}
	var n int
	if err := owner.QueryRow(ctx, `select count(*) from pg_proc where prosecdef and proowner = 'voxanne_definer'::regrole`).Scan(&n); err != nil || n < 6 {
		t.Errorf("voxanne_definer owns %d SECURITY DEFINER functions (%v), want at least the 6 of migrations 0003-0007", n, err)
	}
}
