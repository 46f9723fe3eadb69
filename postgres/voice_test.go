package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/postgres"
)

// The HTTP tests cover the routes; these cover what only the store sees.

func TestVoiceStorePageLimits(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	user, org := signUp(t, db, "voice@example.com")
	if _, err := postgres.OwnerPool(db).Exec(ctx, `insert into calls (org_id, provider_call_id) select $1, 'c' || g from generate_series(1, 130) g`, org); err != nil {
		t.Fatal(err)
	}
	s := postgres.NewVoiceStore(db)
	p := &voxanne.Principal{UserID: user, OrgID: org, OrgRole: voxanne.RoleMember, Role: "authenticated"}
	for _, c := range []struct{ limit, want int }{{0, 50}, {-3, 50}, {1, 1}, {100, 100}, {1000, 100}} {
		calls, next, err := s.ListCalls(ctx, p, voxanne.CallFilter{}, voxanne.Page{Limit: c.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(calls) != c.want || next == "" {
			t.Errorf("limit %d: %d calls, next %q", c.limit, len(calls), next)
		}
	}
	for _, cursor := range []string{"%", "e30", strings.Repeat("A", 40)} {
		if _, _, err := s.ListCalls(ctx, p, voxanne.CallFilter{}, voxanne.Page{Cursor: cursor}); voxanne.ErrorCode(err) != voxanne.EINVALID {
			t.Errorf("cursor %q: %v", cursor, err)
		}
	}
	if _, _, err := s.ListMessages(ctx, p, "not-a-uuid", voxanne.Page{}); voxanne.ErrorCode(err) != voxanne.EINVALID {
		t.Errorf("contact id: %v", err)
	}
	if _, err := s.Call(ctx, p, "not-a-uuid", ""); voxanne.ErrorCode(err) != voxanne.EINVALID {
		t.Errorf("call id: %v", err)
	}
}

// A transcript is never returned without its audit entry: the read and the
// entry share one tenant transaction.
func TestVoiceStoreCallReadIsAudited(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	user, org := signUp(t, db, "voice@example.com")
	var id string
	if err := postgres.OwnerPool(db).QueryRow(ctx, `insert into calls (org_id, provider_call_id, transcript) values ($1, 'c1', 'hello') returning id::text`, org).Scan(&id); err != nil {
		t.Fatal(err)
	}
	s := postgres.NewVoiceStore(db)
	p := &voxanne.Principal{UserID: user, OrgID: org, OrgRole: voxanne.RoleMember, Role: "authenticated"}
	c, err := s.Call(ctx, p, id, "192.0.2.7")
	if err != nil || *c.Transcript != "hello" {
		t.Fatalf("call: %+v %v", c, err)
	}
	var n int
	if err := postgres.OwnerPool(db).QueryRow(ctx, `select count(*) from audit_log where org_id = $1 and action = 'transcript_read'
		and target_type = 'call' and target_id = $2 and actor_id = $3 and ip = '192.0.2.7'`, org, id, user).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d audit entries, %v", n, err)
	}
}
