package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/voxanne/voxanne/internal/testenv"
	"github.com/voxanne/voxanne/web/webtest"
)

var linkRE = regexp.MustCompile(`https?://\S+`)

func TestSignUpThroughTheDashboard(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	c := webtest.NewClient(t, e.URL)
	tok := c.Token("/signup")
	r := c.Post("/signup", url.Values{"csrf": {tok}, "email": {"new@clinic.example"}, "password": {testenv.Password}, "org_name": {"Riverside Dental"}})
	if r.Status != http.StatusSeeOther || r.Location != "/calls" {
		t.Fatalf("sign-up: %d %q %s", r.Status, r.Location, r.Body)
	}
	if p := c.Get("/settings"); p.Status != 200 || !strings.Contains(p.Body, "Riverside Dental") {
		t.Errorf("the new org is not active: %d", p.Status)
	}
	other := webtest.NewClient(t, e.URL)
	tok = other.Token("/signup")
	for name, form := range map[string]url.Values{
		"taken":  {"csrf": {tok}, "email": {"new@clinic.example"}, "password": {testenv.Password}},
		"weak":   {"csrf": {tok}, "email": {"weak@clinic.example"}, "password": {"password"}},
		"bad at": {"csrf": {tok}, "email": {"not-an-email"}, "password": {testenv.Password}},
	} {
		r := other.Post("/signup", form)
		if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, `class="alert error"`) || other.Cookie("vx_session") != "" {
			t.Errorf("%s sign-up: %d", name, r.Status)
		}
	}
}

func TestPasswordRecoveryFromTheMailedLink(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	e.SignUp("forgetful@example.com")
	c := webtest.NewClient(t, e.URL)
	r := c.Post("/forgot", url.Values{"csrf": {c.Token("/forgot")}, "email": {"forgetful@example.com"}})
	if r.Status != 200 || !strings.Contains(r.Body, "we sent it a link") {
		t.Fatalf("forgot: %d", r.Status)
	}
	// An unknown address answers the same.
	if r := c.Post("/forgot", url.Values{"csrf": {c.Token("/forgot")}, "email": {"nobody@example.com"}}); r.Status != 200 || !strings.Contains(r.Body, "we sent it a link") {
		t.Errorf("forgot for an unknown address: %d", r.Status)
	}
	mail := e.Mail.WaitFor(t, "forgetful@example.com")
	link := linkRE.FindString(mail.Body)
	u, err := url.Parse(link)
	if err != nil || link == "" {
		t.Fatalf("no link in %q", mail.Body)
	}
	// The link verifies and lands on the site with the session in the
	// fragment, where the page script moves it into the reset form.
	v := c.Get(u.RequestURI())
	if v.Status != http.StatusSeeOther {
		t.Fatalf("verify link: %d %s", v.Status, v.Body)
	}
	_, frag, _ := strings.Cut(v.Location, "#")
	f, _ := url.ParseQuery(frag)
	if f.Get("type") != "recovery" || f.Get("access_token") == "" {
		t.Fatalf("verify redirect: %s", v.Location)
	}
	reset := c.Get("/reset")
	if reset.Status != 200 || !strings.Contains(reset.Body, `id="reset-form"`) {
		t.Fatalf("reset page: %d", reset.Status)
	}
	form := url.Values{"csrf": {webtest.CSRF(reset.Body)}, "access_token": {f.Get("access_token")}, "refresh_token": {f.Get("refresh_token")},
		"password": {"Brand-new-Passw0rd-42"}, "password2": {"Brand-new-Passw0rd-4"}}
	r = c.Post("/reset", form)
	if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "differ") || !strings.Contains(r.Body, f.Get("refresh_token")) {
		t.Errorf("mismatched passwords: %d", r.Status)
	}
	form.Set("password2", "Brand-new-Passw0rd-42")
	if r := c.Post("/reset", form); r.Status != http.StatusSeeOther || r.Location != "/calls" {
		t.Fatalf("reset: %d %q %s", r.Status, r.Location, r.Body)
	}
	if r := c.Get("/calls"); r.Status != 200 {
		t.Errorf("signed in after the reset: %d", r.Status)
	}
	fresh := webtest.NewClient(t, e.URL)
	tok := fresh.Token("/login")
	if r := fresh.Post("/login", url.Values{"csrf": {tok}, "email": {"forgetful@example.com"}, "password": {testenv.Password}}); r.Status != http.StatusBadRequest {
		t.Errorf("old password after the reset: %d", r.Status)
	}
	fresh.Login("forgetful@example.com", "Brand-new-Passw0rd-42")
}

func TestInvitationLinkJoinsTheOrg(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	owner := e.SignUp("boss@clinic.example")
	// Someone without an account creates one on the accept page.
	_, secret := e.Invite(owner, "newbie@clinic.example", "member")
	c := webtest.NewClient(t, e.URL)
	page := c.Get("/invitations/accept?token=" + url.QueryEscape(secret))
	if page.Status != 200 || !strings.Contains(page.Body, "Create account and join") {
		t.Fatalf("accept page: %d", page.Status)
	}
	r := c.Post("/invitations/accept", url.Values{"csrf": {webtest.CSRF(page.Body)}, "token": {secret}, "action": {"signup"},
		"email": {"newbie@clinic.example"}, "password": {testenv.Password}})
	if r.Status != http.StatusSeeOther || r.Location != "/calls" {
		t.Fatalf("accept with sign-up: %d %q %s", r.Status, r.Location, r.Body)
	}
	if p := c.Get("/team"); !strings.Contains(p.Body, "boss@clinic.example") || !strings.Contains(p.Body, "newbie@clinic.example") {
		t.Error("the new member is not in the inviting org")
	}
	// A signed-in user joins with one click.
	e.SignUp("veteran@clinic.example")
	_, secret = e.Invite(owner, "veteran@clinic.example", "admin")
	v := webtest.NewClient(t, e.URL)
	v.Login("veteran@clinic.example", testenv.Password)
	page = v.Get("/invitations/accept?token=" + url.QueryEscape(secret))
	if !strings.Contains(page.Body, "Accept the invitation") {
		t.Fatal("no one-click accept for a signed-in user")
	}
	r = v.Post("/invitations/accept", url.Values{"csrf": {webtest.CSRF(page.Body)}, "token": {secret}, "action": {"join"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("join: %d %s", r.Status, r.Body)
	}
	if p := v.Get("/team"); !strings.Contains(p.Body, `action="/team/invite"`) || !strings.Contains(p.Body, "boss@clinic.example") {
		t.Error("the joined admin does not work in the inviting org")
	}
	// The invitation works once, and only for its address.
	r = v.Post("/invitations/accept", url.Values{"csrf": {webtest.CSRF(page.Body)}, "token": {secret}, "action": {"join"}})
	if r.Status != http.StatusBadRequest {
		t.Errorf("second use: %d", r.Status)
	}
	_, secret = e.Invite(owner, "someone-else@clinic.example", "member")
	page = v.Get("/invitations/accept?token=" + url.QueryEscape(secret))
	r = v.Post("/invitations/accept", url.Values{"csrf": {webtest.CSRF(page.Body)}, "token": {secret}, "action": {"join"}})
	if r.Status != http.StatusBadRequest {
		t.Errorf("another address's invitation: %d", r.Status)
	}
}

func TestTeamActionsThroughTheForms(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.Options{})
	o := w.signedIn(t, "owner-a@example.com")
	tok := o.Token("/team")
	if r := o.Post("/team/members/"+w.member.User.ID+"/role", url.Values{"csrf": {tok}, "role": {"admin"}}); r.Status != http.StatusSeeOther {
		t.Errorf("change role: %d %s", r.Status, r.Body)
	}
	if r := o.Post("/team/invite", url.Values{"csrf": {tok}, "email": {"later@example.com"}, "role": {"member"}}); r.Status != 200 {
		t.Errorf("invite: %d", r.Status)
	}
	page := o.Get("/team")
	m := regexp.MustCompile(`/team/invitations/([0-9a-f-]{36})/revoke`).FindStringSubmatch(page.Body)
	if m == nil {
		t.Fatal("no pending invitation shown")
	}
	if r := o.Post("/team/invitations/"+m[1]+"/revoke", url.Values{"csrf": {tok}}); r.Status != http.StatusSeeOther {
		t.Errorf("revoke: %d", r.Status)
	}
	if r := o.Post("/team/members/"+w.admin.User.ID+"/remove", url.Values{"csrf": {tok}}); r.Status != http.StatusSeeOther {
		t.Errorf("remove: %d", r.Status)
	}
	page = o.Get("/team")
	if strings.Contains(page.Body, "admin-a@example.com") || strings.Contains(page.Body, "later@example.com") {
		t.Error("removed member or revoked invitation still shown")
	}
	// The last owner cannot demote themself.
	if r := o.Post("/team/members/"+w.owner.User.ID+"/role", url.Values{"csrf": {tok}, "role": {"member"}}); r.Status != http.StatusConflict && r.Status != http.StatusForbidden {
		t.Errorf("demoting the last owner: %d", r.Status)
	}
	// Settings: rename and numbers.
	if r := o.Post("/settings/org", url.Values{"csrf": {tok}, "name": {"Alpha Dental Group"}}); r.Status != http.StatusSeeOther {
		t.Errorf("rename: %d", r.Status)
	}
	if r := o.Post("/settings/org", url.Values{"csrf": {tok}, "name": {""}}); r.Status != http.StatusBadRequest {
		t.Errorf("empty name: %d", r.Status)
	}
	if r := o.Post("/settings/numbers", url.Values{"csrf": {tok}, "e164": {"+14155550142"}, "provider": {"twilio"}, "label": {"Texts"}}); r.Status != http.StatusSeeOther {
		t.Errorf("add number: %d %s", r.Status, r.Body)
	}
	if r := o.Post("/settings/numbers", url.Values{"csrf": {tok}, "e164": {"12"}, "provider": {"twilio"}, "label": {"Bad"}}); r.Status != http.StatusBadRequest {
		t.Errorf("bad number: %d", r.Status)
	}
	if p := o.Get("/settings"); !strings.Contains(p.Body, "Alpha Dental Group") || !strings.Contains(p.Body, "14155550142") {
		t.Errorf("settings changes not shown: renamed %v, number %v", strings.Contains(p.Body, "Alpha Dental Group"), strings.Contains(p.Body, "14155550142"))
	}
	// Audit log: filter, verify, export.
	if p := o.Get("/audit?action=member_removed"); p.Status != 200 || !strings.Contains(p.Body, "Member removed") {
		t.Errorf("audit filter: %d", p.Status)
	}
	if p := o.Get("/audit?verify=1"); !strings.Contains(p.Body, "is intact") {
		t.Error("audit chain not verified")
	}
	if p := o.Get("/audit?action=bogus"); p.Status != 400 {
		t.Errorf("bad audit filter: %d", p.Status)
	}
	exp := o.Get("/audit/export")
	if exp.Status != 200 || !strings.Contains(exp.Header.Get("Content-Disposition"), "attachment") || !strings.Contains(exp.Body, `"action":"member_removed"`) {
		t.Errorf("audit export: %d %q", exp.Status, exp.Header.Get("Content-Disposition"))
	}
}

func TestAccountPasswordAndSignOutEverywhere(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	api := e.SignUp("acct@example.com")
	c := webtest.NewClient(t, e.URL)
	c.Login("acct@example.com", testenv.Password)
	tok := c.Token("/account")
	if r := c.Post("/account/password", url.Values{"csrf": {tok}, "password": {"Another-Strong-Pass-77"}, "password2": {"nope"}}); r.Status != 400 {
		t.Errorf("mismatch: %d", r.Status)
	}
	if r := c.Post("/account/password", url.Values{"csrf": {tok}, "password": {"Another-Strong-Pass-77"}, "password2": {"Another-Strong-Pass-77"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("change password: %d %s", r.Status, r.Body)
	}
	// The dashboard session goes on; the other (API) session was ended.
	if r := c.Get("/account"); r.Status != 200 {
		t.Errorf("after password change: %d", r.Status)
	}
	if r := e.Do("GET", "/api/me", nil, testenv.Bearer(api.AccessToken)...); r.Status != 401 {
		t.Errorf("other session after password change: %d", r.Status)
	}
	if r := c.Post("/account/logout-everywhere", url.Values{"csrf": {c.Token("/account")}}); r.Status != http.StatusSeeOther || r.Location != "/login" {
		t.Errorf("sign out everywhere: %d %q", r.Status, r.Location)
	}
	if r := c.Get("/calls"); r.Status != http.StatusSeeOther {
		t.Errorf("after signing out everywhere: %d", r.Status)
	}
}

func TestWebhookEndpointsOnTheSettingsPage(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.Options{})
	o := w.signedIn(t, "owner-a@example.com")
	tok := o.Token("/settings")
	r := o.Post("/settings/endpoints", url.Values{"csrf": {tok}, "provider": {"vapi"}})
	m := regexp.MustCompile(`id="new-secret" readonly value="([^"]+)"`).FindStringSubmatch(r.Body)
	if r.Status != 200 || m == nil {
		t.Fatalf("create endpoint: %d, secret shown: %v", r.Status, m != nil)
	}
	secret := m[1]
	page := o.Get("/settings")
	if strings.Contains(page.Body, secret) {
		t.Error("the secret is shown again")
	}
	ep := regexp.MustCompile(`/api/webhooks/vapi/([0-9a-f-]{36})`).FindStringSubmatch(page.Body)
	if ep == nil {
		t.Fatal("the endpoint's URL is not shown")
	}
	// The shown secret authenticates deliveries to the shown URL.
	if r := w.e.Do("POST", "/api/webhooks/vapi/"+ep[1], map[string]any{"message": map[string]any{"type": "status-update", "call": map[string]any{"id": "c-ep-1"}}},
		"X-Vapi-Secret", secret); r.Status != 200 {
		t.Errorf("delivery with the shown secret: %d %s", r.Status, r.Body)
	}
	r = o.Post("/settings/endpoints/"+ep[1]+"/rotate", url.Values{"csrf": {tok}})
	if m := regexp.MustCompile(`id="new-secret" readonly value="([^"]+)"`).FindStringSubmatch(r.Body); r.Status != 200 || m == nil || m[1] == secret {
		t.Errorf("rotate: %d", r.Status)
	}
	if r := o.Post("/settings/endpoints", url.Values{"csrf": {tok}, "provider": {"twilio"}}); r.Status != http.StatusBadRequest {
		t.Errorf("twilio endpoint without a token: %d", r.Status)
	}
	// A member sees none of it.
	if p := w.signedIn(t, "member-a@example.com").Get("/settings"); strings.Contains(p.Body, ep[1]) || strings.Contains(p.Body, "Create a Vapi endpoint") {
		t.Error("a member sees the org's endpoints")
	}
	if r := o.Post("/settings/endpoints/"+ep[1]+"/delete", url.Values{"csrf": {tok}}); r.Status != http.StatusSeeOther {
		t.Errorf("delete: %d", r.Status)
	}
	if p := o.Get("/settings"); strings.Contains(p.Body, ep[1]) {
		t.Error("deleted endpoint still shown")
	}
}

func TestOrgSwitcherInTheHeader(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.Options{})
	c := w.signedIn(t, "admin-a@example.com")
	page := c.Get("/calls")
	if !strings.Contains(page.Body, `id="org-switch"`) || !strings.Contains(page.Body, "Alpha Caller") {
		t.Fatal("no org switcher, or not in org A")
	}
	own := regexp.MustCompile(`<option value="([0-9a-f-]{36})">Org admin-a@example.com</option>`).FindStringSubmatch(page.Body)
	if own == nil {
		t.Fatal("the admin's own org is not offered")
	}
	if r := c.Post("/orgs/switch", url.Values{"csrf": {webtest.CSRF(page.Body)}, "org": {own[1]}}); r.Status != http.StatusSeeOther || r.Location != "/calls" {
		t.Fatalf("switch: %d %q", r.Status, r.Location)
	}
	if p := c.Get("/calls"); strings.Contains(p.Body, "Alpha Caller") || !strings.Contains(p.Body, "No calls yet") {
		t.Error("after switching, org A's calls are still shown")
	}
	if p := c.Get("/calls/" + w.a.CallID); p.Status != 404 {
		t.Errorf("org A's call after switching away: %d", p.Status)
	}
	if r := c.Post("/orgs/switch", url.Values{"csrf": {c.Token("/calls")}, "org": {w.owner.OrgID()}}); r.Status != http.StatusSeeOther {
		t.Fatalf("switch back: %d", r.Status)
	}
	if p := c.Get("/calls"); !strings.Contains(p.Body, "Alpha Caller") {
		t.Error("switching back does not show org A")
	}
}

func TestContactSearch(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.Options{})
	webtest.InsertRow(t, w.e, "contacts", w.owner.OrgID(), map[string]any{"name": "Zelda 100%_Match", "email": "zelda@example.com"})
	a := w.signedIn(t, "owner-a@example.com")
	// % and _ match themselves, not any text: "a%h" and "a_1" would match
	// "Zelda 100%_Match" as LIKE patterns.
	for q, want := range map[string]bool{"zelda": true, "ZELDA@EXAMPLE": true, "100%_m": true, "a%h": false, "a_1": false, "Bravo": false, "nobody": false} {
		p := a.Get("/contacts?q=" + url.QueryEscape(q))
		if p.Status != 200 {
			t.Errorf("search %q: %d", q, p.Status)
		}
		if got := strings.Contains(p.Body, "Zelda 100%_Match"); got != want {
			t.Errorf("search %q finds Zelda: %v", q, got)
		}
		if strings.Contains(p.Body, "Bravo Caller") {
			t.Errorf("search %q shows org B's contact", q)
		}
	}
	if p := a.Get("/contacts?q=nobody"); !strings.Contains(p.Body, "No contacts match") {
		t.Error("no empty state for a contact search without results")
	}
	if p := a.Get("/contacts?q=" + strings.Repeat("x", 300)); p.Status != 400 {
		t.Errorf("over-long search: %d", p.Status)
	}
	b := w.signedIn(t, "owner-b@example.com")
	if p := b.Get("/contacts?q=Alpha"); strings.Contains(p.Body, "Alpha Caller") || !strings.Contains(p.Body, "No contacts match") {
		t.Error("org B's search finds org A's contact")
	}
}
