package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/voxanne/voxanne/internal/testenv"
	"github.com/voxanne/voxanne/web/webtest"
)

// Creating an account on the invitation page joins the inviting org and
// makes no personal org, even where sign-ups otherwise wait for a
// confirmation mail (the invitation came by mail to the address).
func TestInvitationPageSignUpMakesNoPersonalOrg(t *testing.T) {
	t.Parallel()
	off := false
	e := testenv.New(t, testenv.Options{Autoconfirm: &off})
	if r := e.Do("POST", "/auth/v1/signup", map[string]any{"email": "boss@clinic.example", "password": testenv.Password}); r.Status != 200 {
		t.Fatalf("owner sign-up: %d %s", r.Status, r.Body)
	}
	if _, err := e.Exec(context.Background(), "update auth.users set email_confirmed_at = now()"); err != nil {
		t.Fatal(err)
	}
	owner := e.SignIn("boss@clinic.example")
	_, secret := e.Invite(owner, "newbie@clinic.example", "member")
	count := func() (orgs int) {
		t.Helper()
		if err := e.QueryRow(context.Background(), "select count(*) from organizations").Scan(&orgs); err != nil {
			t.Fatal(err)
		}
		return orgs
	}
	before := count()

	c := webtest.NewClient(t, e.URL)
	page := c.Get("/invitations/accept?token=" + url.QueryEscape(secret))
	r := c.Post("/invitations/accept", url.Values{"csrf": {webtest.CSRF(page.Body)}, "token": {secret}, "action": {"signup"},
		"email": {"newbie@clinic.example"}, "password": {testenv.Password}})
	if r.Status != http.StatusSeeOther || r.Location != "/calls" {
		t.Fatalf("accept with sign-up: %d %q %s", r.Status, r.Location, r.Body)
	}
	if got := count(); got != before {
		t.Errorf("organizations %d -> %d: the sign-up made a personal org", before, got)
	}
	var orgs []string
	rows, err := e.Query(context.Background(), `select m.org_id::text from memberships m join auth.users u on u.id = m.user_id
		where u.email = 'newbie@clinic.example'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var o string
		_ = rows.Scan(&o)
		orgs = append(orgs, o)
	}
	rows.Close()
	if len(orgs) != 1 || orgs[0] != owner.OrgID() {
		t.Errorf("the new account's orgs: %v, want only %s", orgs, owner.OrgID())
	}
	if p := c.Get("/team"); p.Status != 200 || !strings.Contains(p.Body, "boss@clinic.example") {
		t.Errorf("the new member works in the inviting org: %d", p.Status)
	}

	// A used invitation on the page: a clear refusal, no account.
	d := webtest.NewClient(t, e.URL)
	page = d.Get("/invitations/accept?token=" + url.QueryEscape(secret))
	r = d.Post("/invitations/accept", url.Values{"csrf": {webtest.CSRF(page.Body)}, "token": {secret}, "action": {"signup"},
		"email": {"newbie2@clinic.example"}, "password": {testenv.Password}})
	if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "This invitation cannot be used") {
		t.Errorf("a spent invitation: %d", r.Status)
	}
	var n int
	if err := e.QueryRow(context.Background(), "select count(*) from auth.users where email = 'newbie2@clinic.example'").Scan(&n); err != nil || n != 0 {
		t.Errorf("an account was made with a spent invitation: %d %v", n, err)
	}
}
