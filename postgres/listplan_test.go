package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/postgres"
)

// A page of the calls list reads its page from the (org_id, created_at, id)
// index, newest first, and stops: no sort of every call of the org. (Ordering
// by the selected id::text once made PostgreSQL read and sort them all.)
func TestCallsListReadsOnlyItsPage(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	owner := postgres.OwnerPool(db)
	var org string
	if err := owner.QueryRow(ctx, `insert into organizations (name) values ('Busy') returning id::text`).Scan(&org); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Exec(ctx, `insert into calls (org_id, provider_call_id, status, started_at, created_at)
		select $1, 'c' || i, 'ended', now() - i * interval '1 minute', now() - i * interval '1 minute' from generate_series(1, 5000) i`, org); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Exec(ctx, "analyze calls"); err != nil {
		t.Fatal(err)
	}
	p := voxanne.Principal{UserID: "00000000-0000-4000-8000-000000000001", OrgID: org, OrgRole: "member", Role: "authenticated"}
	sql, args := postgres.CallsListSQL(db, &p, 25)
	var plan []string
	if err := db.InTenant(ctx, p, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "explain "+sql, args...)
		if err != nil {
			return err
		}
		plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	if !strings.Contains(text, "calls_list_idx") || strings.Contains(text, "Sort") {
		t.Errorf("the calls list does not read its page from calls_list_idx:\n%s", text)
	}
}
