package http_test

// Deleting an org (DELETE /api/org, owner, ?confirm=<org id>) and deleting a
// user who is the last owner of orgs through the admin API (409 naming them
// unless ?orphaned_orgs=delete|transfer).

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/voxanne/voxanne/internal/testenv"
)

// orgRows counts org's rows in every table that holds org data.
func orgRows(t *testing.T, e *testenv.Env, org string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, table := range []string{"memberships", "invitations", "audit_log", "audit_heads", "contacts", "calls", "messages",
		"phone_numbers", "webhook_endpoints", "phone_number_assignments", "webhook_events"} {
		out[table] = queryInt(t, e, "select count(*) from "+table+" where org_id = $1", org)
	}
	out["organizations"] = queryInt(t, e, "select count(*) from organizations where id = $1", org)
	return out
}

// securityEvents returns the logged security_event records of kind event.
func securityEvents(t *testing.T, e *testenv.Env, event string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(e.Logs.Bytes()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "security_event" && rec["event"] == event {
			out = append(out, rec)
		}
	}
	return out
}

func TestDeleteOrg(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	owner := e.SignUp("owner-a@example.com")
	orgA := owner.OrgID()
	admin := e.AddMember(owner, "admin-a@example.com", "admin")
	member := e.AddMember(owner, "member-a@example.com", "member")
	e.Invite(owner, "guest-a@example.com", "member")
	seedVoice(t, e, orgA)
	orgExpect(t, orgRequest(t, e, owner.AccessToken, "POST", "/api/org/webhook-endpoints", map[string]any{"provider": "vapi"}), http.StatusCreated, "endpoint")
	other := e.SignUp("owner-b@example.com")
	orgB := other.OrgID()
	seedVoice(t, e, orgB)
	var beforeB map[string]int64
	del := func(tok, query string) *testenv.Response {
		return orgRequest(t, e, tok, "DELETE", "/api/org"+query, nil)
	}

	t.Run("refused", func(t *testing.T) {
		orgExpectError(t, del(member.AccessToken, "?confirm="+orgA), http.StatusForbidden, "forbidden", "member")
		orgExpectError(t, del(admin.AccessToken, "?confirm="+orgA), http.StatusForbidden, "forbidden", "admin")
		orgExpectError(t, del(owner.AccessToken, ""), http.StatusBadRequest, "validation_failed", "no confirm")
		orgExpectError(t, del(owner.AccessToken, "?confirm=nope"), http.StatusBadRequest, "validation_failed", "confirm not a UUID")
		orgExpectError(t, del(owner.AccessToken, "?confirm="+orgB), http.StatusForbidden, "forbidden", "confirm naming another org")
		orgExpectError(t, del(other.AccessToken, "?confirm="+orgA), http.StatusForbidden, "forbidden", "B's owner naming A")
		if n := orgRows(t, e, orgA); n["organizations"] != 1 || n["memberships"] != 3 || n["calls"] != 1 {
			t.Fatalf("refused deletions changed org A: %v", n)
		}
		if n := orgRows(t, e, orgB); n["organizations"] != 1 {
			t.Fatalf("org B: %v", n)
		}
	})
	// (B's attempt at A is in B's audit log.)
	beforeB = orgRows(t, e, orgB)

	auditBefore := queryInt(t, e, "select count(*) from audit_log where org_id = $1", orgA)
	r := del(owner.AccessToken, "?confirm="+orgA)
	orgExpect(t, r, http.StatusNoContent, "owner deletes org A")
	if len(r.Body) != 0 {
		t.Errorf("204 with a body: %s", r.Body)
	}

	t.Run("all data gone", func(t *testing.T) {
		for table, n := range orgRows(t, e, orgA) {
			if n != 0 {
				t.Errorf("%d rows of the deleted org left in %s", n, table)
			}
		}
		for table, n := range orgRows(t, e, orgB) {
			if n != beforeB[table] {
				t.Errorf("org B's %s: %d rows, had %d", table, n, beforeB[table])
			}
		}
	})
	t.Run("the record that outlives the org", func(t *testing.T) {
		var name, via, deletedBy string
		var seq int64
		var hash []byte
		var members []map[string]string
		err := e.QueryRow(ctx, `select name, via, deleted_by::text, audit_seq, audit_hash, members from org_deletions where org_id = $1`, orgA).
			Scan(&name, &via, &deletedBy, &seq, &hash, &members)
		if err != nil {
			t.Fatal(err)
		}
		if name != "Org owner-a@example.com" || via != "api" || deletedBy != owner.User.ID || len(members) != 3 {
			t.Errorf("org_deletions: %q %q %q %v", name, via, deletedBy, members)
		}
		// The org_deleted entry was the last one appended to the chain.
		if seq != auditBefore+1 || len(hash) != 32 {
			t.Errorf("audit head %d %x, want seq %d", seq, hash, auditBefore+1)
		}
		evs := securityEvents(t, e, "org_deleted")
		if len(evs) != 1 || evs[0]["org_id"] != orgA || evs[0]["actor_id"] != owner.User.ID || evs[0]["audit_hash"] != hex.EncodeToString(hash) {
			t.Errorf("security_event org_deleted: %v", evs)
		}
	})
	t.Run("members' sessions go on without an org", func(t *testing.T) {
		for _, s := range []*testenv.Session{owner, admin, member} {
			orgRevoked(t, e, s.AccessToken, s.User.Email+"'s token for the deleted org")
			n := orgRefresh(t, e, s.RefreshToken)
			if org, _ := orgOfToken(t, n.AccessToken); org != "" {
				t.Errorf("%s refreshed into %s", s.User.Email, org)
			}
		}
		orgWorks(t, e, other.AccessToken, orgB, "org B's owner")
	})
}

func TestAdminDeleteLastOwner(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	svc, err := e.Auth.ServiceRoleToken(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	admin := testenv.Bearer(svc)
	u := e.SignUp("leaving@example.com")
	personal := u.OrgID() // u is its only member
	// Org A: u the only owner, with a member.
	r := orgRequest(t, e, u.AccessToken, "POST", "/api/orgs", map[string]any{"name": "Alpha"})
	orgExpect(t, r, http.StatusCreated, "create A")
	orgA, _ := r.JSON(t)["id"].(string)
	ua := e.Switch(u, orgA)
	m := e.AddMember(ua, "member@example.com", "member")
	// Org C: u an admin. Org D: u one of two owners.
	c := e.SignUp("c-owner@example.com")
	_, secret := e.Invite(c, "leaving@example.com", "admin")
	orgExpect(t, orgAccept(t, e, u.AccessToken, secret), http.StatusOK, "join C")
	d := e.SignUp("d-owner@example.com")
	_, secret = e.Invite(d, "leaving@example.com", "owner")
	orgExpect(t, orgAccept(t, e, u.AccessToken, secret), http.StatusOK, "join D")
	path := "/auth/v1/admin/users/" + u.User.ID

	var conflict struct {
		ErrorCode string `json:"error_code"`
		Msg       string `json:"msg"`
		Orgs      []struct{ ID, Name string }
	}
	r = request(t, e, "DELETE", path, nil, admin...)
	wantStatus(t, r, 409, "delete the last owner")
	r.Decode(t, &conflict)
	if conflict.ErrorCode != "conflict" || len(conflict.Orgs) != 2 || conflict.Orgs[0].ID != personal || conflict.Orgs[1].ID != orgA ||
		conflict.Orgs[1].Name != "Alpha" || !strings.Contains(conflict.Msg, "Alpha") || !strings.Contains(conflict.Msg, orgA) {
		t.Errorf("409 answer: %s", r.Body)
	}
	expectAuthError(t, e, "DELETE", path+"?orphaned_orgs=whatever", nil, 400, "validation_failed", admin...)
	// transfer: A can go to its member; the personal org has no one to take it.
	r = request(t, e, "DELETE", path+"?orphaned_orgs=transfer", nil, admin...)
	wantStatus(t, r, 409, "transfer with an org nobody can take")
	r.Decode(t, &conflict)
	if len(conflict.Orgs) != 1 || conflict.Orgs[0].ID != personal {
		t.Errorf("transfer 409 names %v, want just the personal org", conflict.Orgs)
	}
	if got := orgRoles(t, e, ua.AccessToken); got[m.User.ID] != "member" || got[u.User.ID] != "owner" {
		t.Errorf("a refused transfer changed A: %v", got)
	}
	wantStatus(t, request(t, e, "GET", path, nil, admin...), 200, "user still exists")

	r = request(t, e, "DELETE", path+"?orphaned_orgs=delete", nil, admin...)
	wantStatus(t, r, 200, "delete the user and their orphaned orgs")
	expectAuthError(t, e, "GET", path, nil, 404, "user_not_found", admin...)
	for _, org := range []string{personal, orgA} {
		if n := orgRows(t, e, org); n["organizations"] != 0 || n["audit_log"] != 0 {
			t.Errorf("orphaned org %s left: %v", org, n)
		}
		if via := queryInt(t, e, "select count(*) from org_deletions where org_id = $1 and via = 'admin_user_delete' and deleted_by is null", org); via != 1 {
			t.Errorf("no org_deletions record for %s", org)
		}
	}
	if got := orgRoles(t, e, c.AccessToken); len(got) != 1 {
		t.Errorf("org C after the deletion: %v", got)
	}
	if got := orgRoles(t, e, d.AccessToken); len(got) != 1 || got[d.User.ID] != "owner" {
		t.Errorf("org D after the deletion: %v", got)
	}
	if n := len(securityEvents(t, e, "org_deleted")); n != 2 {
		t.Errorf("%d org_deleted security events, want 2", n)
	}
	if s := orgRefresh(t, e, m.RefreshToken); func() string { o, _ := orgOfToken(t, s.AccessToken); return o }() != "" {
		t.Error("the member of the deleted org A refreshed into another org")
	}
}

func TestAdminDeleteTransfersOwnership(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	svc, err := e.Auth.ServiceRoleToken(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	owner := e.SignUp("founder@example.com")
	org := owner.OrgID()
	member := e.AddMember(owner, "early-member@example.com", "member") // joined first
	adm := e.AddMember(owner, "the-admin@example.com", "admin")
	wantStatus(t, request(t, e, "DELETE", "/auth/v1/admin/users/"+owner.User.ID+"?orphaned_orgs=transfer", nil, testenv.Bearer(svc)...),
		200, "delete with transfer")
	// Admins come first: the admin is the owner now, and their old token says admin.
	orgRevoked(t, e, adm.AccessToken, "heir's token issued for admin")
	heir := orgRefresh(t, e, adm.RefreshToken)
	if o, role := orgOfToken(t, heir.AccessToken); o != org || role != "owner" {
		t.Fatalf("heir's refreshed token: %q %q", o, role)
	}
	if got := orgRoles(t, e, heir.AccessToken); len(got) != 2 || got[member.User.ID] != "member" {
		t.Errorf("members after the transfer: %v", got)
	}
	en := orgAuditOf(orgAuditAll(t, e, heir.AccessToken), "member_role_changed")
	if len(en) != 1 || en[0]["target_id"] != adm.User.ID || en[0]["actor_id"] != nil {
		t.Fatalf("member_role_changed entries: %v", en)
	}
	if d := orgMap(t, en[0]["details"], "details"); d["to"] != "owner" || d["reason"] != "last_owner_deleted" || d["deleted_user_id"] != owner.User.ID {
		t.Errorf("transfer entry details: %v", d)
	}
	_ = uuid.Nil
}
