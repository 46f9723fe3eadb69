package postgres_test

// The audit log's hash chain under concurrency: the trigger that sets seq and
// the hash from the per-org head must serialize writers of one org (no gap, no
// duplicate, a chain that verifies) and keep orgs apart.

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/postgres"
)

// auditUser inserts a user as the auth service does (the sign-up trigger makes
// their org, with them as owner) and returns the user's and the org's ids.
func auditUser(t *testing.T, db *postgres.DB, email string) (userID, orgID string) {
	t.Helper()
	err := postgres.AuthPool(db).QueryRow(context.Background(),
		`insert into auth.users (email, raw_user_meta_data) values ($1, jsonb_build_object('org_name', 'Org of ' || $1::text))
		 returning id, raw_app_meta_data->>'org_id'`, email).Scan(&userID, &orgID)
	if err != nil {
		t.Fatalf("sign up %s: %v", email, err)
	}
	if userID == "" || orgID == "" {
		t.Fatalf("sign up %s: user %q org %q", email, userID, orgID)
	}
	return userID, orgID
}

// auditSeqs returns the org's seqs in order, read as the superuser.
func auditSeqs(t *testing.T, db *postgres.DB, orgID string) []int64 {
	t.Helper()
	rows, err := postgres.OwnerPool(db).Query(context.Background(), `select seq from audit_log where org_id = $1 order by seq`, orgID)
	if err != nil {
		t.Fatal(err)
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

// auditCount returns how many entries the org's log has.
func auditCount(t *testing.T, db *postgres.DB, orgID string) int {
	t.Helper()
	var n int
	if err := postgres.OwnerPool(db).QueryRow(context.Background(), `select count(*) from audit_log where org_id = $1`, orgID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkGapless fails unless seqs is exactly 1..want.
func checkGapless(t *testing.T, what string, seqs []int64, want int) {
	t.Helper()
	if len(seqs) != want {
		t.Errorf("%s: %d entries, want %d", what, len(seqs), want)
	}
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Errorf("%s: seq #%d is %d, want %d (seqs %v)", what, i+1, s, i+1, seqs)
			return
		}
	}
}

// auditOwner is the principal of an org's owner.
func auditOwner(userID, orgID string) *voxanne.Principal {
	return &voxanne.Principal{UserID: userID, OrgID: orgID, OrgRole: voxanne.RoleOwner, Role: "authenticated"}
}

// appendConcurrently has one goroutine per event append it through
// OrgStore.Audit, all released at once, and fails on any error.
func appendConcurrently(t *testing.T, store *postgres.OrgStore, events []voxanne.AuditEvent) {
	t.Helper()
	start := make(chan struct{})
	errs := make([]error, len(events))
	var wg sync.WaitGroup
	for i, ev := range events {
		wg.Go(func() {
			<-start
			errs[i] = store.Audit(context.Background(), ev)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("append %d (%s): %v", i, events[i].Action, err)
		}
	}
}

func TestAuditConcurrentAppendsToOneOrg(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	// Audit and VerifyAuditLog use the database only; no auth service needed.
	store := postgres.NewOrgStore(db, nil)
	user, org := auditUser(t, db, "owner@example.com")
	base := auditCount(t, db, org)
	if base != 0 {
		t.Logf("sign-up left %d audit entries", base)
	}

	const n = 50
	events := make([]voxanne.AuditEvent, n)
	for i := range events {
		events[i] = voxanne.AuditEvent{OrgID: org, ActorID: user, Action: "concurrency_test",
			TargetType: "test", TargetID: fmt.Sprint(i), Details: map[string]any{"i": i}}
	}
	appendConcurrently(t, store, events)

	checkGapless(t, "org", auditSeqs(t, db, org), base+n)

	// Every event was stored exactly once.
	var distinct, total int
	if err := postgres.OwnerPool(db).QueryRow(context.Background(), `select count(distinct target_id), count(*) from audit_log
		where org_id = $1 and action = 'concurrency_test'`, org).Scan(&distinct, &total); err != nil {
		t.Fatal(err)
	}
	if distinct != n || total != n {
		t.Errorf("%d stored events (%d distinct), want %d", total, distinct, n)
	}
	// The head names the last entry.
	var headSeq int64
	if err := postgres.OwnerPool(db).QueryRow(context.Background(), `select seq from audit_heads where org_id = $1`, org).Scan(&headSeq); err != nil {
		t.Fatal(err)
	}
	if headSeq != int64(base+n) {
		t.Errorf("audit head at seq %d, want %d", headSeq, base+n)
	}

	valid, entries, err := store.VerifyAuditLog(context.Background(), auditOwner(user, org))
	if err != nil {
		t.Fatal(err)
	}
	if !valid || entries != int64(base+n) || entries < n {
		t.Errorf("VerifyAuditLog = valid %v entries %d, want true %d", valid, entries, base+n)
	}

	// The store reads them back newest first.
	log, err := store.AuditLog(context.Background(), auditOwner(user, org), 100, 0, "concurrency_test")
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != n {
		t.Fatalf("AuditLog returned %d entries, want %d", len(log), n)
	}
	for i := 1; i < len(log); i++ {
		if log[i].Seq >= log[i-1].Seq {
			t.Fatalf("AuditLog not newest first at %d: %d after %d", i, log[i].Seq, log[i-1].Seq)
		}
	}
	if log[0].ActorID == nil || *log[0].ActorID != user || log[0].Action != "concurrency_test" || len(log[0].Hash) != 64 {
		t.Errorf("newest entry = %+v", log[0])
	}

	// Verification needs the admin role.
	member := auditOwner(user, org)
	member.OrgRole = voxanne.RoleMember
	if _, _, err := store.VerifyAuditLog(context.Background(), member); voxanne.ErrorCode(err) != voxanne.EFORBIDDEN {
		t.Errorf("VerifyAuditLog as a member: %v, want forbidden", err)
	}
}

func TestAuditConcurrentAppendsKeepOrgsApart(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	store := postgres.NewOrgStore(db, nil)
	userA, orgA := auditUser(t, db, "a@example.com")
	userB, orgB := auditUser(t, db, "b@example.com")
	baseA, baseB := auditCount(t, db, orgA), auditCount(t, db, orgB)

	const perOrg = 25
	var events []voxanne.AuditEvent
	for i := range perOrg {
		events = append(events,
			voxanne.AuditEvent{OrgID: orgA, ActorID: userA, Action: "a_event", Details: map[string]any{"i": i}},
			voxanne.AuditEvent{OrgID: orgB, ActorID: userB, Action: "b_event", Details: map[string]any{"i": i}})
	}
	appendConcurrently(t, store, events)

	checkGapless(t, "org A", auditSeqs(t, db, orgA), baseA+perOrg)
	checkGapless(t, "org B", auditSeqs(t, db, orgB), baseB+perOrg)

	for _, c := range []struct {
		name, user, org, action, foreign string
		want                             int
	}{
		{"org A", userA, orgA, "a_event", "b_event", baseA + perOrg},
		{"org B", userB, orgB, "b_event", "a_event", baseB + perOrg},
	} {
		var own, foreign int
		if err := postgres.OwnerPool(db).QueryRow(context.Background(), `select count(*) filter (where action = $2), count(*) filter (where action = $3)
			from audit_log where org_id = $1`, c.org, c.action, c.foreign).Scan(&own, &foreign); err != nil {
			t.Fatal(err)
		}
		if own != perOrg || foreign != 0 {
			t.Errorf("%s: %d own events and %d of the other org, want %d and 0", c.name, own, foreign, perOrg)
		}
		// Each chain starts from nothing: the first entry links to no other org's hash.
		var firstPrev []byte
		if err := postgres.OwnerPool(db).QueryRow(context.Background(), `select prev_hash from audit_log where org_id = $1 and seq = 1`, c.org).Scan(&firstPrev); err != nil {
			t.Fatal(err)
		}
		if len(firstPrev) != 0 {
			t.Errorf("%s: the first entry's prev_hash is %x, want empty", c.name, firstPrev)
		}
		valid, entries, err := store.VerifyAuditLog(context.Background(), auditOwner(c.user, c.org))
		if err != nil {
			t.Fatal(err)
		}
		if !valid || entries != int64(c.want) {
			t.Errorf("%s: VerifyAuditLog = valid %v entries %d, want true %d", c.name, valid, entries, c.want)
		}
	}

	// Breaking one org's chain leaves the other's valid.
	if _, err := postgres.OwnerPool(db).Exec(context.Background(), `update audit_log set details = '{"i": -1}' where org_id = $1 and seq = 3`, orgA); err != nil {
		t.Fatal(err)
	}
	if valid, _, err := store.VerifyAuditLog(context.Background(), auditOwner(userA, orgA)); err != nil || valid {
		t.Errorf("org A after tampering: valid %v (%v), want false", valid, err)
	}
	if valid, _, err := store.VerifyAuditLog(context.Background(), auditOwner(userB, orgB)); err != nil || !valid {
		t.Errorf("org B after org A was tampered with: valid %v (%v), want true", valid, err)
	}
}
