package http_test

// The end-to-end paths on a database whose owner (the DATABASE_URL user) is no
// superuser: it has CREATEROLE and owns the database, and nothing else, as on
// a managed PostgreSQL service. Forced row-level security applies to such an
// owner, so everything that used to run with the owner's rights (the SECURITY
// DEFINER functions: audit chain, webhook routing, member e-mails, revocation
// triggers) must run as a role the policies allow. Then the same database is
// backed up, changed, restored over itself and served again.

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/internal/testenv"
	"github.com/voxanne/voxanne/postgres"
	"github.com/voxanne/voxanne/web/webtest"
)

// restrictedWorld is a database of a restricted owner and a superuser's
// connection to it for checks (the owner itself is bound by row-level
// security).
type restrictedWorld struct {
	ownerURL string
	super    *pgx.Conn
}

func (w *restrictedWorld) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := w.super.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitProcessed waits until no stored event is pending.
func (w *restrictedWorld) waitProcessed(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for w.count(t, `select count(*) from webhook_events where status = 'pending'`) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("events still pending")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// apiList returns the data of an /api list.
func apiList(t *testing.T, e *testenv.Env, s *testenv.Session, path string) []map[string]any {
	t.Helper()
	var l struct {
		Data []map[string]any `json:"data"`
	}
	r := e.DoFor(t, "GET", path, nil, testenv.Bearer(s.AccessToken)...)
	if r.Status != 200 {
		t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
	}
	r.Decode(t, &l)
	return l.Data
}

func TestRestrictedOwnerEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ownerURL, superURL := testdb.NewRestrictedDatabase(t)
	super, err := pgx.Connect(ctx, superURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { super.Close(context.Background()) })
	w := &restrictedWorld{ownerURL: ownerURL, super: super}
	const ownerEmail = "owner@clinic.example"
	var org string

	t.Run("serve", func(t *testing.T) {
		db := testdb.Open(t, ownerURL)
		var bypasses bool
		if err := db.InOwner(ctx, "test: who the owner is", func(c postgres.Conn) error {
			return c.QueryRow(ctx, "select rolsuper or rolbypassrls from pg_roles where rolname = current_user").Scan(&bypasses)
		}); err != nil || bypasses {
			t.Fatalf("the owner bypasses row-level security (%v): this test would prove nothing", err)
		}
		e := testenv.New(t, testenv.Options{DB: db})
		owner := e.SignUp(ownerEmail)
		org = owner.OrgID()

		// Password sign-in and refresh.
		s := e.SignIn(ownerEmail)
		r := e.Do("POST", "/auth/v1/token?grant_type=refresh_token", map[string]any{"refresh_token": s.RefreshToken})
		var next testenv.Session
		if r.Decode(t, &next); r.Status != 200 || next.RefreshToken == s.RefreshToken || next.OrgID() != org {
			t.Fatalf("refresh: %d %s", r.Status, r.Body)
		}

		// Webhooks on the shared endpoints are routed to the org by the
		// operator's assignments, and processed into a call and a message.
		tok, err := e.Auth.ServiceRoleToken(ctx, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []map[string]any{
			{"org_id": org, "e164": vapiNumber, "provider": "vapi", "provider_id": vapiNumberID, "assistant_id": assistantID},
			{"org_id": org, "e164": twilioNumber, "provider": "twilio"},
		} {
			if r := e.Do("POST", "/api/admin/phone-numbers", n, testenv.Bearer(tok)...); r.Status != 201 {
				t.Fatalf("assign %v: %d %s", n["e164"], r.Status, r.Body)
			}
		}
		vw := &voiceWorld{e: e, owner: owner, org: org}
		if r := vw.postVapi(endOfCallReport("restricted-call-1")); r.Status != 200 {
			t.Fatalf("vapi: %d %s", r.Status, r.Body)
		}
		sms := url.Values{"MessageSid": {"SMrestricted1"}, "From": {caller}, "To": {twilioNumber}, "Body": {"Running late"}}
		if r := twilioPost(vw, "/api/webhooks/twilio/sms", sms, testenv.TwilioToken); r.Status != 200 {
			t.Fatalf("twilio: %d %s", r.Status, r.Body)
		}
		w.waitProcessed(t)
		if n := w.count(t, `select count(*) from webhook_events where status = 'processed' and org_id = $1`, org); n != 2 {
			t.Fatalf("%d of 2 events processed in the org (%d unroutable)", n,
				w.count(t, `select count(*) from webhook_events where status = 'unroutable'`))
		}
		if calls := apiList(t, e, owner, "/api/calls"); len(calls) != 1 || calls[0]["provider_call_id"] != "restricted-call-1" {
			t.Fatalf("calls: %v", calls)
		}
		if msgs := apiList(t, e, owner, "/api/messages"); len(msgs) != 1 {
			t.Fatalf("messages: %v", msgs)
		}

		// Org admin: invitations, the member list with addresses, a role
		// change (which revokes the member's tokens) and a removal.
		admin := e.AddMember(owner, "admin@clinic.example", "admin")
		member := e.AddMember(owner, "member@clinic.example", "member")
		r = orgRequest(t, e, owner.AccessToken, "GET", "/api/org/members", nil)
		orgExpect(t, r, http.StatusOK, "members")
		var emails []string
		for _, m := range orgArray(t, r, "members") {
			s, _ := m["email"].(string)
			emails = append(emails, s)
		}
		if slices.Sort(emails); !slices.Equal(emails, []string{"admin@clinic.example", "member@clinic.example", ownerEmail}) {
			t.Errorf("member addresses %q", emails)
		}
		orgExpect(t, orgRequest(t, e, owner.AccessToken, "PATCH", "/api/org/members/"+member.User.ID, map[string]any{"role": "admin"}), http.StatusOK, "change role")
		if n := w.count(t, `select count(*) from auth.revocations where kind = 'membership' and user_id = $1`, member.User.ID); n != 1 {
			t.Errorf("%d membership revocations after the role change, want 1", n)
		}
		orgExpect(t, orgRequest(t, e, admin.AccessToken, "DELETE", "/api/org/members/"+member.User.ID, nil), http.StatusNoContent, "remove member")

		// The audit chain has every entry and verifies.
		if valid, entries := orgVerify(t, e, owner.AccessToken); !valid || entries < 4 ||
			int64(w.count(t, `select count(*) from audit_log where org_id = $1`, org)) != entries {
			t.Fatalf("verify: valid %v over %d entries", valid, entries)
		}

		// Dashboard sign-in.
		c := webtest.NewClient(t, e.URL)
		c.Login(ownerEmail, testenv.Password)
		if p := c.Get("/calls"); p.Status != 200 {
			t.Fatalf("GET /calls after sign-in: %d", p.Status)
		}

		// Signing out everywhere records the session revocations.
		if r := e.Do("POST", "/auth/v1/logout?scope=global", nil, testenv.Bearer(admin.AccessToken)...); r.Status != 204 {
			t.Fatalf("logout: %d %s", r.Status, r.Body)
		}
		if n := w.count(t, `select count(*) from auth.revocations r join auth.sessions s on s.id = r.session_id
			where r.kind = 'session' and s.user_id = $1`, admin.User.ID); n == 0 {
			t.Error("logout recorded no session revocation")
		}

		// A backup works beside the running server; a restore does not.
		tools, err := postgres.FindTools("")
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "while-serving.backup")
		if _, err := db.Backup(ctx, tools, file); err != nil {
			t.Fatalf("backup beside the server: %v", err)
		}
		if _, err := db.Restore(ctx, tools, file, postgres.RestoreOptions{Replace: true}); voxanne.ErrorCode(err) != voxanne.ECONFLICT ||
			!strings.Contains(err.Error(), "stop it before a restore") {
			t.Fatalf("restore beside the server: %v", err)
		}
	})
	if t.Failed() {
		return
	}

	// The server is gone. Back up as the restricted owner, change the
	// database, and restore the backup over it.
	db := testdb.Open(t, ownerURL)
	tools, err := postgres.FindTools("")
	if err != nil {
		t.Fatal(err)
	}
	before, err := testdb.Checksums(ctx, superURL)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "voxanne.backup")
	if _, err := db.Backup(ctx, tools, file); err != nil {
		t.Fatalf("backup: %v", err)
	}
	if _, err := db.Restore(ctx, tools, file, postgres.RestoreOptions{}); voxanne.ErrorCode(err) != voxanne.ECONFLICT {
		t.Fatalf("restore over a database with data: %v, want a conflict", err)
	}
	if _, err := super.Exec(ctx, `update organizations set name = 'Renamed since the backup'`); err != nil {
		t.Fatal(err)
	}
	if err := db.InOwner(ctx, "test: a table made since the backup", func(c postgres.Conn) error {
		_, err := c.Exec(ctx, `create table made_since (x int)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Restore(ctx, tools, file, postgres.RestoreOptions{Replace: true}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	after, err := testdb.Checksums(ctx, superURL)
	if err != nil {
		t.Fatal(err)
	}
	for name, sum := range before {
		if after[name] != sum {
			t.Errorf("%s: %s after the restore, %s before", name, after[name], sum)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("%s is left after the restore", name)
		}
	}
	if len(before) < 30 {
		t.Errorf("only %d tables and sequences compared", len(before))
	}

	t.Run("serve the restored database", func(t *testing.T) {
		e := testenv.New(t, testenv.Options{DB: testdb.Open(t, ownerURL)})
		owner := e.SignIn(ownerEmail)
		if valid, _ := orgVerify(t, e, owner.AccessToken); !valid {
			t.Error("the restored audit chain does not verify")
		}
		vw := &voiceWorld{e: e, owner: owner, org: org}
		if r := vw.postVapi(endOfCallReport("restricted-call-2")); r.Status != 200 {
			t.Fatalf("vapi: %d %s", r.Status, r.Body)
		}
		w.waitProcessed(t)
		if calls := apiList(t, e, owner, "/api/calls"); len(calls) != 2 {
			t.Fatalf("calls after the restore: %v", calls)
		}
	})
}
