package postgres_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/postgres"
)

// appliedVersions lists the applied migrations' versions in order.
func appliedVersions(t *testing.T, db *postgres.DB) []int {
	t.Helper()
	status, err := db.MigrationStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, s := range status {
		if s.AppliedAt != nil {
			out = append(out, s.Version)
		}
	}
	return out
}

// A dry run names what migrate down would revert and runs those steps, but
// changes nothing; a step that would fail is reported, still changing nothing.
func TestMigrateDownDryRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	owner := postgres.OwnerPool(db)
	before := appliedVersions(t, db)
	plan, err := db.MigrateDownDryRun(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 2 || plan[0].Version != before[len(before)-1] || plan[1].Version != before[len(before)-2] {
		t.Fatalf("plan %v, applied %v", plan, before)
	}
	var definer string
	if err := owner.QueryRow(ctx, `select proowner::regrole::text from pg_proc where proname = 'audit_chain'`).Scan(&definer); err != nil || definer != postgres.DefinerRole {
		t.Fatalf("after the dry run audit_chain() belongs to %q (%v)", definer, err)
	}

	// 0011's down drops webhook_events.event; a view on it makes that fail.
	if _, err := owner.Exec(ctx, `create view events_decoded as select event from webhook_events`); err != nil {
		t.Fatal(err)
	}
	n := len(before) - slices.Index(before, 11)
	plan, err = db.MigrateDownDryRun(ctx, n)
	if err == nil || !strings.Contains(err.Error(), "0011_event_decoded down would fail") || len(plan) != n {
		t.Fatalf("dry run through 0011 with a view in the way: %v (plan of %d)", err, len(plan))
	}
	if after := appliedVersions(t, db); !slices.Equal(after, before) || !tableExists(t, db, "events_decoded") {
		t.Fatalf("the dry runs changed the database: applied %v, was %v", after, before)
	}
}
