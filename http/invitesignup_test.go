package http_test

import (
	"context"
	"strings"
	"testing"

	"github.com/voxanne/voxanne/internal/testenv"
)

// orgCount is how many organizations exist; memberships how many orgs user
// belongs to.
func orgCount(t *testing.T, e *testenv.Env) int {
	t.Helper()
	var n int
	if err := e.QueryRow(context.Background(), "select count(*) from organizations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func memberships(t *testing.T, e *testenv.Env, userID string) []string {
	t.Helper()
	rows, err := e.Query(context.Background(), "select org_id::text || ':' || role from memberships where user_id = $1 order by org_id", userID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// confirmedUser signs up email, confirms it whatever the mail settings, and
// signs in.
func confirmedUser(t *testing.T, e *testenv.Env, email string) *testenv.Session {
	t.Helper()
	r := e.Do("POST", "/auth/v1/signup", map[string]any{"email": email, "password": testenv.Password})
	if r.Status != 200 {
		t.Fatalf("sign up %s: %d %s", email, r.Status, r.Body)
	}
	if _, err := e.Exec(context.Background(), "update auth.users set email_confirmed_at = now() where email = $1", email); err != nil {
		t.Fatal(err)
	}
	return e.SignIn(email)
}

// Signing up with data.invitation_token joins the inviting org with the
// invited role and makes no personal org; the token is spent and not stored.
func TestInvitationSignUpCreatesNoPersonalOrg(t *testing.T) {
	t.Parallel()
	for _, autoconfirm := range []bool{true, false} {
		name := "autoconfirm"
		if !autoconfirm {
			name = "confirmation by mail"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := testenv.New(t, testenv.Options{Autoconfirm: &autoconfirm})
			owner := confirmedUser(t, e, "owner@clinic.example")
			invID, secret := e.Invite(owner, "nurse@clinic.example", "admin")
			before := orgCount(t, e)

			r := e.Do("POST", "/auth/v1/signup", map[string]any{"email": "Nurse@Clinic.example", "password": testenv.Password,
				"data": map[string]any{"invitation_token": secret, "org_name": "Should not exist", "nickname": "N"}})
			if r.Status != 200 {
				t.Fatalf("sign-up with invitation: %d %s", r.Status, r.Body)
			}
			var s testenv.Session
			r.Decode(t, &s)
			if s.AccessToken == "" {
				t.Fatalf("a sign-up through an invitation is confirmed and gets a session: %s", r.Body)
			}
			if got := orgCount(t, e); got != before {
				t.Errorf("organizations: %d before, %d after: a personal org was made", before, got)
			}
			if got := memberships(t, e, s.User.ID); len(got) != 1 || got[0] != owner.OrgID()+":admin" {
				t.Errorf("memberships = %v, want only %s:admin", got, owner.OrgID())
			}
			if s.OrgID() != owner.OrgID() || s.User.AppMetadata["org_role"] != "admin" {
				t.Errorf("session org %v role %v", s.OrgID(), s.User.AppMetadata["org_role"])
			}
			if strings.Contains(string(r.Body), secret) {
				t.Error("the invitation secret is echoed in the user")
			}
			var meta string
			if err := e.QueryRow(context.Background(), "select raw_user_meta_data::text from auth.users where id = $1", s.User.ID).Scan(&meta); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(meta, "invitation_token") || !strings.Contains(meta, `"nickname"`) {
				t.Errorf("stored user_metadata %s: the token must be dropped, the rest kept", meta)
			}
			// The token works at once on /api, in the inviting org.
			if r := e.Do("GET", "/api/org/members", nil, testenv.Bearer(s.AccessToken)...); r.Status != 200 || !strings.Contains(string(r.Body), "owner@clinic.example") {
				t.Errorf("members of the joined org: %d %s", r.Status, r.Body)
			}
			// Accepted, audited, and single use.
			var accepted bool
			if err := e.QueryRow(context.Background(), "select accepted_by = $2 from invitations where id = $1", invID, s.User.ID).Scan(&accepted); err != nil || !accepted {
				t.Errorf("invitation accepted by the new user: %v %v", accepted, err)
			}
			var joined int
			if err := e.QueryRow(context.Background(), `select count(*) from audit_log where org_id = $1 and action = 'member_joined'
				and actor_id = $2 and details->>'via' = 'signup'`, owner.OrgID(), s.User.ID).Scan(&joined); err != nil || joined != 1 {
				t.Errorf("member_joined entries: %d %v", joined, err)
			}
			r = e.Do("POST", "/auth/v1/signup", map[string]any{"email": "second@clinic.example", "password": testenv.Password,
				"data": map[string]any{"invitation_token": secret}}, "X-Supabase-Api-Version", "2024-01-01")
			if r.Status != 404 || r.JSON(t)["code"] != "invite_not_found" {
				t.Errorf("a spent invitation: %d %s", r.Status, r.Body)
			}
		})
	}
}

// An invitation token is refused, and nothing is written, when it is unknown,
// expired or for another address; without a token a sign-up makes its own org.
func TestInvitationSignUpRefusals(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	owner := e.SignUp("boss@clinic.example")
	_, forOther := e.Invite(owner, "invited@clinic.example", "member")
	_, expired := e.Invite(owner, "late@clinic.example", "member")
	if _, err := e.Exec(context.Background(), "update invitations set expires_at = now() - interval '1 second' where email = 'late@clinic.example'"); err != nil {
		t.Fatal(err)
	}
	before := orgCount(t, e)
	for _, c := range []struct {
		name, email, token string
		status             int
		code               string
	}{
		{"unknown token", "x@clinic.example", "not-a-real-token", 404, "invite_not_found"},
		{"expired", "late@clinic.example", expired, 404, "invite_not_found"},
		{"another address", "intruder@clinic.example", forOther, 403, "forbidden"},
	} {
		r := e.Do("POST", "/auth/v1/signup", map[string]any{"email": c.email, "password": testenv.Password,
			"data": map[string]any{"invitation_token": c.token}}, "X-Supabase-Api-Version", "2024-01-01")
		if r.Status != c.status || r.JSON(t)["code"] != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.Status, r.Body, c.status, c.code)
		}
		var users int
		if err := e.QueryRow(context.Background(), "select count(*) from auth.users where email = $1", c.email).Scan(&users); err != nil || users != 0 {
			t.Errorf("%s: %d users written", c.name, users)
		}
	}
	if got := orgCount(t, e); got != before {
		t.Errorf("refused sign-ups made %d orgs", got-before)
	}
	// The invited person can still use their invitation afterwards.
	r := e.Do("POST", "/auth/v1/signup", map[string]any{"email": "invited@clinic.example", "password": testenv.Password,
		"data": map[string]any{"invitation_token": forOther}})
	if r.Status != 200 {
		t.Fatalf("the rightful sign-up: %d %s", r.Status, r.Body)
	}
	// Control: a sign-up without an invitation makes its own org.
	solo := e.SignUp("solo@clinic.example")
	if got := memberships(t, e, solo.User.ID); len(got) != 1 || got[0] != solo.OrgID()+":owner" || solo.OrgID() == owner.OrgID() {
		t.Errorf("plain sign-up memberships %v", got)
	}
}

// Someone who already has an account accepts with it: one more membership,
// no new org.
func TestInvitationAcceptedByExistingAccount(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	owner := e.SignUp("boss@clinic.example")
	veteran := e.SignUp("veteran@clinic.example")
	_, secret := e.Invite(owner, "veteran@clinic.example", "member")
	before := orgCount(t, e)
	r := e.Do("POST", "/api/invitations/accept", map[string]any{"token": secret}, testenv.Bearer(veteran.AccessToken)...)
	if r.Status != 200 {
		t.Fatalf("accept: %d %s", r.Status, r.Body)
	}
	if got := orgCount(t, e); got != before {
		t.Errorf("accepting made %d orgs", got-before)
	}
	if got := memberships(t, e, veteran.User.ID); len(got) != 2 {
		t.Errorf("memberships %v, want the own org and the inviting one", got)
	}
}
