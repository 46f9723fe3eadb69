package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/voxanne/voxanne/internal/testenv"
	"github.com/voxanne/voxanne/web"
	"github.com/voxanne/voxanne/web/webtest"
)

// routeCase says how one dashboard route is walked. path fills the pattern
// with org A's objects; form is what a POST sends (besides the CSRF token).
// member is the status org A's member gets (0: not walked for roles, as the
// action would end the session or leave the org).
type routeCase struct {
	path   string
	form   url.Values
	public bool
	member int
	// otherOrg is the status org B's owner gets for org A's object (0: the
	// route names no object of A's and is walked with B's own data).
	otherOrg int
}

// TestEveryDashboardRouteIsWalked walks the dashboard's own route table with
// no session, with another org's session and with each role: a route added
// without a case here fails the test.
func TestEveryDashboardRouteIsWalked(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.Options{})
	invID, _ := w.e.Invite(w.owner, "pending@example.com", "member")
	adminP, err := w.e.Authn.Authenticate(context.Background(), w.owner.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := w.e.Endpoints.CreateEndpoint(context.Background(), adminP, "vapi", "", "")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]routeCase{
		"GET /static/{file}":                   {path: "/static/app.css", public: true},
		"GET /favicon.ico":                     {path: "/favicon.ico", public: true},
		"GET /{$}":                             {path: "/", public: true},
		"GET /login":                           {path: "/login", public: true},
		"POST /login":                          {path: "/login", public: true},
		"GET /signup":                          {path: "/signup", public: true},
		"POST /signup":                         {path: "/signup", public: true},
		"GET /forgot":                          {path: "/forgot", public: true},
		"POST /forgot":                         {path: "/forgot", public: true},
		"GET /reset":                           {path: "/reset", public: true},
		"POST /reset":                          {path: "/reset", public: true},
		"GET /invitations/accept":              {path: "/invitations/accept?token=x", public: true},
		"POST /invitations/accept":             {path: "/invitations/accept", public: true},
		"POST /logout":                         {path: "/logout", public: true},
		"GET /events":                          {path: "/events", public: true},
		"/":                                    {path: "/calls/a/b", public: true},
		"GET /overview":                        {path: "/overview", member: 200},
		"GET /calls":                           {path: "/calls", member: 200},
		"GET /calls/{id}":                      {path: "/calls/" + w.a.CallID, member: 200, otherOrg: 404},
		"GET /messages":                        {path: "/messages?contact_id=" + w.a.ContactID, member: 200},
		"GET /contacts":                        {path: "/contacts", member: 200},
		"GET /contacts/{id}":                   {path: "/contacts/" + w.a.ContactID, member: 200, otherOrg: 404},
		"POST /contacts/{id}":                  {path: "/contacts/" + w.a.ContactID, form: url.Values{"name": {"Edited"}}, member: 303, otherOrg: 404},
		"GET /team":                            {path: "/team", member: 200},
		"POST /team/invite":                    {path: "/team/invite", form: url.Values{"email": {"x@example.com"}, "role": {"member"}}, member: 403},
		"POST /team/members/{userId}/role":     {path: "/team/members/" + w.admin.User.ID + "/role", form: url.Values{"role": {"member"}}, member: 403, otherOrg: 404},
		"POST /team/members/{userId}/remove":   {path: "/team/members/" + w.admin.User.ID + "/remove", member: 403, otherOrg: 404},
		"POST /team/invitations/{id}/revoke":   {path: "/team/invitations/" + invID + "/revoke", member: 403, otherOrg: 404},
		"GET /settings":                        {path: "/settings", member: 200},
		"POST /settings/org":                   {path: "/settings/org", form: url.Values{"name": {"Renamed"}}, member: 403},
		"POST /settings/numbers":               {path: "/settings/numbers", form: url.Values{"e164": {"+14155550188"}, "provider": {"vapi"}, "label": {"x"}}, member: 403},
		"POST /settings/numbers/{id}/delete":   {path: "/settings/numbers/" + w.a.PhoneID + "/delete", member: 403, otherOrg: 404},
		"POST /settings/endpoints":             {path: "/settings/endpoints", form: url.Values{"provider": {"vapi"}}, member: 403},
		"POST /settings/endpoints/{id}/rotate": {path: "/settings/endpoints/" + ep.ID + "/rotate", member: 403, otherOrg: 404},
		"POST /settings/endpoints/{id}/delete": {path: "/settings/endpoints/" + ep.ID + "/delete", member: 403, otherOrg: 404},
		"GET /audit":                           {path: "/audit", member: 403},
		"GET /audit/export":                    {path: "/audit/export", member: 403},
		"GET /account":                         {path: "/account", member: 200},
		"POST /account/password":               {path: "/account/password"},
		"POST /account/logout-everywhere":      {path: "/account/logout-everywhere"},
		"POST /orgs/switch":                    {path: "/orgs/switch", form: url.Values{"org": {w.owner.OrgID()}}, otherOrg: 403},
		"POST /orgs":                           {path: "/orgs", form: url.Values{"name": {"Another"}}},
		"GET /mfa":                             {path: "/mfa", member: 200},
		"POST /mfa/enroll":                     {path: "/mfa/enroll", member: 200},
		"POST /mfa/verify":                     {path: "/mfa/verify", form: url.Values{"factor_id": {"00000000-0000-4000-8000-000000000000"}, "code": {"000000"}}, member: 400},
		"POST /settings/mfa":                   {path: "/settings/mfa", form: url.Values{"require_mfa": {"on"}}, member: 403},
	}
	routes := web.New(web.Config{}).Routes()
	for _, r := range routes {
		if _, ok := cases[r]; !ok {
			t.Errorf("route %s has no case in this walk", r)
		}
	}
	anon := webtest.NewClient(t, w.e.URL)
	b := w.signedIn(t, "owner-b@example.com")
	bTok := b.Token("/calls")
	for _, pattern := range routes {
		c := cases[pattern]
		method, _, _ := strings.Cut(pattern, " ")
		if method == "/" {
			method = "GET"
		}
		// No session: every app route sends the browser to sign in.
		if !c.public {
			var r *webtest.Page
			if method == "GET" {
				r = anon.Get(c.path)
			} else {
				r = anon.Post(c.path, c.form)
			}
			if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/login") {
				t.Errorf("%s without a session: %d %q", pattern, r.Status, r.Location)
			}
		}
		// Another org's session: org A's objects are not found, and no page
		// shows any of org A's data.
		if !c.public && (c.otherOrg != 0 || method == "GET") {
			var r *webtest.Page
			if method == "GET" {
				r = b.Get(c.path)
			} else {
				form := url.Values{"csrf": {bTok}}
				for k, v := range c.form {
					form[k] = v
				}
				r = b.Post(c.path, form)
			}
			want := c.otherOrg
			if want == 0 {
				want = 200
			}
			if r.Status != want {
				t.Errorf("%s with org B's session: %d, want %d", pattern, r.Status, want)
			}
			for _, s := range w.a.Secrets {
				if strings.Contains(r.Body, s) {
					t.Errorf("%s with org B's session shows org A's %q", pattern, s)
				}
			}
		}
	}
	// Each role of org A.
	for _, who := range []string{"member-a@example.com", "admin-a@example.com", "owner-a@example.com"} {
		c := w.signedIn(t, who)
		tok := c.Token("/calls")
		for _, pattern := range routes {
			rc := cases[pattern]
			if rc.public || rc.member == 0 {
				continue
			}
			method, _, _ := strings.Cut(pattern, " ")
			want := rc.member
			if who != "member-a@example.com" {
				switch {
				case method == "GET":
					want = 200
				case want == 403:
					continue // admins' actions are covered by the flow tests
				}
			}
			var r *webtest.Page
			if method == "GET" {
				r = c.Get(rc.path)
			} else {
				form := url.Values{"csrf": {tok}}
				for k, v := range rc.form {
					form[k] = v
				}
				r = c.Post(rc.path, form)
			}
			if r.Status != want {
				t.Errorf("%s as %s: %d, want %d", pattern, who, r.Status, want)
			}
		}
	}
}
