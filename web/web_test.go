package web_test

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/internal/testenv"
	"github.com/voxanne/voxanne/postgres"
	"github.com/voxanne/voxanne/web/webtest"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// appPaths are the dashboard pages that need a session.
var appPaths = []string{"/overview", "/calls", "/messages", "/contacts", "/team", "/settings", "/audit", "/account"}

// world is two orgs: A with an owner, an admin and a member, and B with an
// owner; each org has a contact, a call, a text and a number.
type world struct {
	e                    *testenv.Env
	owner, admin, member *testenv.Session
	ownerB               *testenv.Session
	a, b                 webtest.Fixture
}

func newWorld(t *testing.T, opts testenv.Options) *world {
	t.Helper()
	e := testenv.New(t, opts)
	w := &world{e: e}
	w.owner = e.SignUp("owner-a@example.com")
	w.admin = e.AddMember(w.owner, "admin-a@example.com", "admin")
	w.member = e.AddMember(w.owner, "member-a@example.com", "member")
	w.ownerB = e.SignUp("owner-b@example.com")
	w.a = webtest.Seed(t, e, w.owner.OrgID(), "Alpha")
	w.b = webtest.Seed(t, e, w.ownerB.OrgID(), "Bravo")
	return w
}

// signedIn returns a dashboard client signed in as email.
func (w *world) signedIn(t *testing.T, email string) *webtest.Client {
	t.Helper()
	c := webtest.NewClient(t, w.e.URL)
	c.Login(email, testenv.Password)
	return c
}

// follow fetches path and follows redirects, failing after max hops; it
// returns the final page and the hops taken.
func follow(t *testing.T, c *webtest.Client, path string, max int) (*webtest.Page, []string) {
	t.Helper()
	var hops []string
	for i := 0; i <= max; i++ {
		p := c.Get(path)
		if p.Status != http.StatusSeeOther && p.Status != http.StatusFound && p.Status != http.StatusMovedPermanently {
			return p, hops
		}
		u, err := url.Parse(p.Location)
		if err != nil {
			t.Fatal(err)
		}
		path = u.RequestURI()
		hops = append(hops, path)
	}
	t.Fatalf("more than %d redirects: %v", max, hops)
	return nil, nil
}

func TestWithoutSessionEveryPageGoesToLoginOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.Options{})
	c := webtest.NewClient(t, w.e.URL)
	for _, p := range append(appPaths, "/calls/"+w.a.CallID, "/contacts/"+w.a.ContactID, "/calls?q=x&status=ended") {
		r := c.Get(p)
		if r.Status != http.StatusSeeOther || r.Location != "/login?next="+url.QueryEscape(p) {
			t.Errorf("GET %s: %d to %q, want 303 to the login page with next", p, r.Status, r.Location)
		}
		final, hops := follow(t, c, p, 3)
		if final.Status != 200 || len(hops) != 1 || !strings.Contains(final.Body, `action="/login"`) {
			t.Errorf("GET %s: ended with %d after %v", p, final.Status, hops)
		}
		if strings.Contains(final.Body, "Alpha") {
			t.Errorf("GET %s without a session shows tenant data", p)
		}
	}
	if r := c.Get("/"); r.Status != http.StatusSeeOther || r.Location != "/login" {
		t.Errorf("GET / without session: %d %q", r.Status, r.Location)
	}
	// POSTs without a session change nothing and go to the login page.
	if r := c.Post("/contacts/"+w.a.ContactID, url.Values{"name": {"x"}}); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/login") {
		t.Errorf("POST without session: %d %q", r.Status, r.Location)
	}

	// After sign-in the user lands on next; then / and /login go to /calls.
	tok := c.Token("/login?next=%2Fcontacts")
	r := c.Post("/login", url.Values{"csrf": {tok}, "email": {"owner-a@example.com"}, "password": {testenv.Password}, "next": {"/contacts"}})
	if r.Status != http.StatusSeeOther || r.Location != "/contacts" {
		t.Fatalf("login with next: %d %q", r.Status, r.Location)
	}
	for _, p := range []string{"/", "/login", "/login?next=%2Fteam"} {
		want := "/calls"
		if strings.Contains(p, "team") {
			want = "/team"
		}
		if r := c.Get(p); r.Status != http.StatusSeeOther || r.Location != want {
			t.Errorf("GET %s signed in: %d %q, want %s", p, r.Status, r.Location, want)
		}
	}
	for _, p := range appPaths {
		if r := c.Get(p); r.Status != 200 {
			t.Errorf("GET %s signed in: %d", p, r.Status)
		}
	}
}

func TestLoginNextMustBeSameOriginPath(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	e.SignUp("next@example.com")
	for next, want := range map[string]string{
		"":                        "/calls",
		"/messages?cursor=abc":    "/messages?cursor=abc",
		"//evil.example/x":        "/calls",
		"/\\evil.example":         "/calls",
		"https://evil.example/":   "/calls",
		"http:/evil.example":      "/calls",
		"javascript:alert(1)":     "/calls",
		"/api/me":                 "/calls",
		"/login":                  "/calls",
		"/%2F%2Fevil.example":     "/calls",
		"/calls\r\nSet-Cookie: x": "/calls",
		"evil.example":            "/calls",
	} {
		c := webtest.NewClient(t, e.URL)
		tok := c.Token("/login")
		r := c.Post("/login", url.Values{"csrf": {tok}, "email": {"next@example.com"}, "password": {testenv.Password}, "next": {next}})
		if r.Status != http.StatusSeeOther || r.Location != want {
			t.Errorf("next %q: %d to %q, want %q", next, r.Status, r.Location, want)
		}
	}
}

func TestCSRFRefusalsChangeNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.Options{})
	c := w.signedIn(t, "owner-a@example.com")
	good := c.Token("/contacts/" + w.a.ContactID)
	other := w.signedIn(t, "admin-a@example.com").Token("/contacts/" + w.a.ContactID)
	path := "/contacts/" + w.a.ContactID
	for name, tc := range map[string]struct {
		form    url.Values
		headers []string
	}{
		"no token":              {url.Values{"name": {"Changed"}}, nil},
		"empty token":           {url.Values{"name": {"Changed"}, "csrf": {""}}, nil},
		"forged token":          {url.Values{"name": {"Changed"}, "csrf": {strings.Repeat("A", 43)}}, nil},
		"another user's token":  {url.Values{"name": {"Changed"}, "csrf": {other}}, nil},
		"cross-origin":          {url.Values{"name": {"Changed"}, "csrf": {good}}, []string{"Origin", "https://evil.example"}},
		"cross-site fetch mark": {url.Values{"name": {"Changed"}, "csrf": {good}}, []string{"Sec-Fetch-Site", "cross-site"}},
	} {
		r := c.Post(path, tc.form, tc.headers...)
		if r.Status != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, r.Status)
		}
	}
	if got := c.Get(path).Body; strings.Contains(got, "Changed") || !strings.Contains(got, "Alpha Caller") {
		t.Error("a refused POST changed the contact")
	}
	// Other forms: invite, logout, sign-in.
	if r := c.Post("/team/invite", url.Values{"email": {"x@example.com"}, "role": {"member"}}); r.Status != 403 {
		t.Errorf("invite without token: %d", r.Status)
	}
	if r := c.Post("/logout", url.Values{}); r.Status != 403 {
		t.Errorf("logout without token: %d", r.Status)
	}
	if r := c.Get("/calls"); r.Status != 200 {
		t.Errorf("after a refused logout the session should still work: %d", r.Status)
	}
	anon := webtest.NewClient(t, w.e.URL)
	anon.Get("/login")
	if r := anon.Post("/login", url.Values{"email": {"owner-a@example.com"}, "password": {testenv.Password}}); r.Status != 403 || anon.Cookie("vx_session") != "" {
		t.Errorf("login without token: %d", r.Status)
	}
	var n int
	if err := w.e.QueryRow(context.Background(), "select count(*) from invitations where email = 'x@example.com'").Scan(&n); err != nil || n != 0 {
		t.Errorf("invitations after refused POST: %d %v", n, err)
	}
	// With the right token and origin it works.
	r := c.Post(path, url.Values{"name": {"Renamed Caller"}, "email": {""}, "notes": {"ok"}, "csrf": {good}}, "Origin", w.e.URL)
	if r.Status != http.StatusSeeOther {
		t.Fatalf("valid POST: %d %s", r.Status, r.Body)
	}
	if got := c.Get(path).Body; !strings.Contains(got, "Renamed Caller") {
		t.Error("valid POST did not change the contact")
	}
}

func TestSecurityHeadersAndCookie(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.Options{})
	anon := webtest.NewClient(t, w.e.URL)
	login := anon.Get("/login")
	c := webtest.NewClient(t, w.e.URL)
	tok := c.Token("/login")
	r := c.Post("/login", url.Values{"csrf": {tok}, "email": {"owner-a@example.com"}, "password": {testenv.Password}})
	var sc string
	for _, v := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, "vx_session=") {
			sc = v
		}
	}
	for _, want := range []string{"HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(sc, want) {
			t.Errorf("session cookie %q lacks %s", sc, want)
		}
	}
	if strings.Contains(sc, "Secure") {
		t.Error("Secure cookie on an http public URL")
	}
	if v := c.Cookie("vx_session"); strings.Contains(v, "eyJ") || len(v) < 100 {
		t.Errorf("the session cookie is not opaque: %q", v)
	}
	pages := map[string]*webtest.Page{"/login": login}
	for _, p := range append(appPaths, "/calls/"+w.a.CallID, "/contacts/"+w.a.ContactID, "/calls/not-a-call") {
		pages[p] = c.Get(p)
	}
	for p, r := range pages {
		h := r.Header
		csp := h.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("%s: CSP %q lacks %s", p, csp, d)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP allows unsafe: %s", p, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "same-origin" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", p, h)
		}
		if strings.Contains(r.Body, " style=") || strings.Contains(r.Body, "<style") || strings.Contains(r.Body, "<script>") {
			t.Errorf("%s: inline style or script", p)
		}
		if strings.Contains(r.Body, "eyJ") {
			t.Errorf("%s: a token is in the page", p)
		}
	}
	if r := c.Get("/calls/not-a-call"); r.Status != 404 {
		t.Errorf("/calls/not-a-call: %d", r.Status)
	}
}

func TestAnotherOrgsIDsAreNotFound(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.Options{})
	b := w.signedIn(t, "owner-b@example.com")
	tok := b.Token("/calls")
	check := func(name string, r *webtest.Page, want int) {
		t.Helper()
		if r.Status != want {
			t.Errorf("%s: %d, want %d", name, r.Status, want)
		}
		for _, s := range w.a.Secrets {
			if strings.Contains(r.Body, s) {
				t.Errorf("%s: org A's %q in org B's page", name, s)
			}
		}
	}
	check("call", b.Get("/calls/"+w.a.CallID), 404)
	check("contact", b.Get("/contacts/"+w.a.ContactID), 404)
	check("messages of A's contact", b.Get("/messages?contact_id="+w.a.ContactID), 200)
	check("search", b.Get("/calls?q=Alpha"), 200)
	for _, p := range appPaths {
		check(p, b.Get(p), 200)
	}
	check("edit A's contact", b.Post("/contacts/"+w.a.ContactID, url.Values{"csrf": {tok}, "name": {"Hijacked"}}), 404)
	check("delete A's number", b.Post("/settings/numbers/"+w.a.PhoneID+"/delete", url.Values{"csrf": {tok}}), 404)
	check("remove A's member", b.Post("/team/members/"+w.member.User.ID+"/remove", url.Values{"csrf": {tok}}), 404)
	check("switch to A", b.Post("/orgs/switch", url.Values{"csrf": {tok}, "org": {w.owner.OrgID()}}), 403)
	check("bad id", b.Get("/calls/not-a-uuid"), 404)
	// Nothing of A changed, and A still sees its own.
	a := w.signedIn(t, "owner-a@example.com")
	if p := a.Get("/contacts/" + w.a.ContactID); p.Status != 200 || !strings.Contains(p.Body, "Alpha Caller") || strings.Contains(p.Body, "Hijacked") {
		t.Errorf("org A's contact: %d", p.Status)
	}
	if p := a.Get("/settings"); !strings.Contains(p.Body, "Alpha-only line") {
		t.Error("org A's number is gone")
	}
	// Lists name the callers (read through org A's tenant path).
	for _, p := range []string{"/calls", "/messages", "/overview"} {
		if body := a.Get(p).Body; !strings.Contains(body, "Alpha Caller") {
			t.Errorf("%s does not name org A's caller", p)
		}
	}
	// The org comes from the session only: an x-org-id header or org_id
	// parameter changes nothing.
	if p := b.Do("GET", "/calls?org_id="+w.owner.OrgID(), nil, "X-Org-Id", w.owner.OrgID()); strings.Contains(p.Body, "Alpha") {
		t.Error("x-org-id selected another org")
	}
}

func TestRolesHideAndRefuse(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.Options{})
	m := w.signedIn(t, "member-a@example.com")
	team := m.Get("/team")
	for _, s := range []string{`action="/team/invite"`, "/remove", "/role", "Revoke"} {
		if strings.Contains(team.Body, s) {
			t.Errorf("member's team page shows %s", s)
		}
	}
	if strings.Contains(m.Get("/calls").Body, `href="/audit"`) {
		t.Error("member sees the audit log link")
	}
	if strings.Contains(m.Get("/settings").Body, `action="/settings/numbers"`) {
		t.Error("member sees the add-number form")
	}
	tok := webtest.CSRF(team.Body)
	for name, r := range map[string]*webtest.Page{
		"invite":      m.Post("/team/invite", url.Values{"csrf": {tok}, "email": {"new@example.com"}, "role": {"member"}}),
		"remove":      m.Post("/team/members/"+w.admin.User.ID+"/remove", url.Values{"csrf": {tok}}),
		"role":        m.Post("/team/members/"+w.admin.User.ID+"/role", url.Values{"csrf": {tok}, "role": {"member"}}),
		"rename":      m.Post("/settings/org", url.Values{"csrf": {tok}, "name": {"Taken over"}}),
		"add number":  m.Post("/settings/numbers", url.Values{"csrf": {tok}, "e164": {"+14155550999"}, "provider": {"vapi"}, "label": {"x"}}),
		"audit":       m.Get("/audit"),
		"audit json":  m.Get("/audit/export"),
		"delete num":  m.Post("/settings/numbers/"+w.a.PhoneID+"/delete", url.Values{"csrf": {tok}}),
		"self-promo":  m.Post("/team/members/"+w.member.User.ID+"/role", url.Values{"csrf": {tok}, "role": {"owner"}}),
		"remove boss": m.Post("/team/members/"+w.owner.User.ID+"/remove", url.Values{"csrf": {tok}}),
	} {
		if r.Status != http.StatusForbidden {
			t.Errorf("member %s: %d, want 403", name, r.Status)
		}
	}
	// An admin manages members but not the owner.
	ad := w.signedIn(t, "admin-a@example.com")
	page := ad.Get("/team")
	if !strings.Contains(page.Body, `action="/team/invite"`) || !strings.Contains(page.Body, "/team/members/"+w.member.User.ID+"/remove") {
		t.Error("admin lacks the invite form or the member's remove button")
	}
	if strings.Contains(page.Body, "/team/members/"+w.owner.User.ID+"/remove") {
		t.Error("admin is shown a button to remove the owner")
	}
	if r := ad.Post("/team/members/"+w.owner.User.ID+"/remove", url.Values{"csrf": {webtest.CSRF(page.Body)}}); r.Status != http.StatusForbidden {
		t.Errorf("admin removing the owner: %d", r.Status)
	}
	var n int
	_ = w.e.QueryRow(context.Background(), "select count(*) from memberships where org_id = $1", w.owner.OrgID()).Scan(&n)
	if n != 3 {
		t.Errorf("members after refused changes: %d", n)
	}
	// The owner invites; the accept link is shown once.
	o := w.signedIn(t, "owner-a@example.com")
	r := o.Post("/team/invite", url.Values{"csrf": {o.Token("/team")}, "email": {"new@example.com"}, "role": {"admin"}})
	if r.Status != 200 || !strings.Contains(r.Body, "/invitations/accept?token=") {
		t.Errorf("owner invite: %d", r.Status)
	}
}

func TestHostileContentIsEscaped(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := e.SignUp("escape@example.com")
	org := s.OrgID()
	const script = `<script>alert("x")</script>`
	const img = `"><img src=x onerror=alert(1)>`
	ct := webtest.InsertRow(t, e, "contacts", org, map[string]any{"name": script, "email": "e@example.com", "notes": img})
	call := webtest.InsertRow(t, e, "calls", org, map[string]any{"contact_id": ct, "from_number": img, "summary": script + img,
		"transcript": "AI: " + img + " User: " + script, "ended_reason": img, "started_at": time.Now(),
		"structured_data": `{"x": "</pre><script>alert(2)</script>"}`, "recording_url": `javascript:alert(3)`})
	webtest.InsertRow(t, e, "messages", org, map[string]any{"contact_id": ct, "body": script + img, "from_number": img})
	if _, err := e.Exec(context.Background(), "update organizations set name = $1 where id = $2", script, org); err != nil {
		t.Fatal(err)
	}
	c := webtest.NewClient(t, e.URL)
	c.Login("escape@example.com", testenv.Password)
	for _, p := range []string{"/overview", "/calls", "/calls/" + call, "/messages", "/contacts", "/contacts/" + ct, "/settings", "/calls?q=" + url.QueryEscape(script)} {
		r := c.Get(p)
		if r.Status != 200 {
			t.Errorf("%s: %d", p, r.Status)
		}
		for _, bad := range []string{"<script>alert", "<img src=x", "javascript:alert", "</pre><script>"} {
			if strings.Contains(r.Body, bad) {
				t.Errorf("%s: unescaped %q", p, bad)
			}
		}
	}
	if body := c.Get("/calls/" + call).Body; !strings.Contains(body, "&lt;script&gt;") || !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Error("the call page does not show the hostile text escaped")
	}
}

func TestLogoutEndsTheAuthSession(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := e.SignUp("bye@example.com")
	c := webtest.NewClient(t, e.URL)
	c.Login("bye@example.com", testenv.Password)
	old := c.Cookie("vx_session")
	r := c.Post("/logout", url.Values{"csrf": {c.Token("/calls")}})
	if r.Status != http.StatusSeeOther || r.Location != "/login" || c.Cookie("vx_session") != "" {
		t.Fatalf("logout: %d %q cookie %q", r.Status, r.Location, c.Cookie("vx_session"))
	}
	// The old cookie is dead: its refresh token no longer works.
	c.SetCookie("vx_session", old)
	if r := c.Get("/calls"); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/login") {
		t.Errorf("old cookie after logout: %d %q", r.Status, r.Location)
	}
	var active int
	if err := e.QueryRow(context.Background(), `select count(*) from auth.sessions where user_id = $1 and revoked_at is null
		and id <> (select id from auth.sessions where user_id = $1 order by created_at limit 1)`, s.User.ID).Scan(&active); err != nil || active != 0 {
		t.Errorf("dashboard sessions still active: %d %v", active, err)
	}
	// The API session of the same user is untouched (local logout).
	if r := e.Do("GET", "/api/me", nil, testenv.Bearer(s.AccessToken)...); r.Status != 200 {
		t.Errorf("API session after dashboard logout: %d", r.Status)
	}
}

func TestRevokedElsewhereSignsOutOnNextPage(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := e.SignUp("revoke@example.com")
	c := webtest.NewClient(t, e.URL)
	c.Login("revoke@example.com", testenv.Password)
	if r := c.Get("/calls"); r.Status != 200 {
		t.Fatalf("calls: %d", r.Status)
	}
	if r := e.Do("POST", "/auth/v1/logout?scope=global", nil, testenv.Bearer(s.AccessToken)...); r.Status != 204 {
		t.Fatalf("global logout: %d %s", r.Status, r.Body)
	}
	r := c.Get("/calls")
	if r.Status != http.StatusSeeOther || r.Location != "/login?next=%2Fcalls" {
		t.Errorf("after global logout: %d %q", r.Status, r.Location)
	}
	if c.Cookie("vx_session") != "" {
		t.Error("the dead session's cookie was kept")
	}
	if p, hops := follow(t, c, "/calls", 3); p.Status != 200 || len(hops) != 1 {
		t.Errorf("no loop: %d %v", p.Status, hops)
	}
}

func TestRemovedMemberSeesOrgErrorPage(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.Options{})
	m := w.signedIn(t, "member-a@example.com")
	if r := m.Get("/calls"); r.Status != 200 || !strings.Contains(r.Body, "Alpha") {
		t.Fatalf("member calls: %d", r.Status)
	}
	if r := w.e.Do("DELETE", "/api/org/members/"+w.member.User.ID, nil, testenv.Bearer(w.owner.AccessToken)...); r.Status != 204 {
		t.Fatalf("remove: %d %s", r.Status, r.Body)
	}
	for _, p := range []string{"/calls", "/calls/" + w.a.CallID, "/team"} {
		r := m.Get(p)
		if r.Status != http.StatusForbidden {
			t.Errorf("%s after removal: %d, want 403", p, r.Status)
		}
		if strings.Contains(r.Body, "Alpha") {
			t.Errorf("%s after removal shows org A's data", p)
		}
		for _, want := range []string{"no longer have access", `action="/orgs"`, `action="/logout"`, `action="/orgs/switch"`} {
			if !strings.Contains(r.Body, want) {
				t.Errorf("%s: org error page lacks %s", p, want)
			}
		}
	}
	// /login goes to /calls, which is the error page: no loop.
	if p, hops := follow(t, m, "/login", 3); p.Status != http.StatusForbidden || len(hops) != 1 {
		t.Errorf("login after removal: %d %v", p.Status, hops)
	}
	// The member's own org (from sign-up) is offered; switching works.
	page := m.Get("/calls")
	var own string
	if err := w.e.QueryRow(context.Background(), "select org_id::text from memberships where user_id = $1", w.member.User.ID).Scan(&own); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.Body, own) {
		t.Fatal("the org error page does not offer the member's other org")
	}
	r := m.Post("/orgs/switch", url.Values{"csrf": {webtest.CSRF(page.Body)}, "org": {own}})
	if r.Status != http.StatusSeeOther || r.Location != "/calls" {
		t.Fatalf("switch: %d %q", r.Status, r.Location)
	}
	if r := m.Get("/calls"); r.Status != 200 || strings.Contains(r.Body, "Alpha") {
		t.Errorf("after switching: %d", r.Status)
	}
	// Creating an org from the error page also works.
	if r := m.Post("/orgs", url.Values{"csrf": {m.Token("/calls")}, "name": {"Fresh Start Clinic"}}); r.Status != http.StatusSeeOther {
		t.Errorf("create org: %d %s", r.Status, r.Body)
	}
	if r := m.Get("/settings"); !strings.Contains(r.Body, "Fresh Start Clinic") {
		t.Error("the new org is not the active one")
	}
}

func TestRoleChangeElsewhereSignsOut(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.Options{})
	m := w.signedIn(t, "member-a@example.com")
	if strings.Contains(m.Get("/team").Body, `action="/team/invite"`) {
		t.Fatal("member sees the invite form")
	}
	old := m.Cookie("vx_session")
	if r := w.e.Do("PATCH", "/api/org/members/"+w.member.User.ID, map[string]any{"role": "admin"}, testenv.Bearer(w.owner.AccessToken)...); r.Status != 200 {
		t.Fatalf("promote: %d %s", r.Status, r.Body)
	}
	r := m.Get("/team")
	if r.Status != http.StatusSeeOther || r.Location != "/login?next=%2Fteam" {
		t.Fatalf("next page after the role change: %d %q, want 303 to the login page", r.Status, r.Location)
	}
	if m.Cookie("vx_session") != "" {
		t.Error("the signed-out session's cookie was kept")
	}
	// The auth session ended too: the old cookie does not come back to life
	// by refreshing.
	m.SetCookie("vx_session", old)
	if r := m.Get("/calls"); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/login") {
		t.Errorf("old cookie after the role change: %d %q", r.Status, r.Location)
	}
	// Signing in again gives the new role at once.
	m = w.signedIn(t, "member-a@example.com")
	if r := m.Get("/team"); r.Status != 200 || !strings.Contains(r.Body, `action="/team/invite"`) {
		t.Errorf("signed in again as admin: %d, invite form shown: %v", r.Status, strings.Contains(r.Body, `action="/team/invite"`))
	}
	if r := m.Get("/audit"); r.Status != 200 {
		t.Errorf("promoted admin's audit log: %d", r.Status)
	}
}

func TestOwnRoleChangeKeepsTheSession(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.Options{})
	second := w.e.AddMember(w.owner, "second-owner@example.com", "owner")
	o := w.signedIn(t, "second-owner@example.com")
	r := o.Post("/team/members/"+second.User.ID+"/role", url.Values{"csrf": {o.Token("/team")}, "role": {"admin"}})
	if r.Status != http.StatusSeeOther || r.Location != "/team?done=role" {
		t.Fatalf("own role change: %d %q %s", r.Status, r.Location, r.Body)
	}
	p := o.Get("/team")
	if p.Status != 200 {
		t.Fatalf("team after the own role change: %d %q", p.Status, p.Location)
	}
	// An admin may not make owners: the role menu no longer offers it.
	if strings.Contains(p.Body, `<option value="owner"`) {
		t.Error("the page still shows the owner's choices")
	}
}

func TestAccessTokenIsRefreshedBeforeExpiry(t *testing.T) {
	e := testenv.New(t, testenv.Options{JWTExp: 4 * time.Second})
	e.SignUp("refresh@example.com")
	c := webtest.NewClient(t, e.URL)
	c.Login("refresh@example.com", testenv.Password)
	first := c.Cookie("vx_session")
	time.Sleep(3200 * time.Millisecond)
	if r := c.Get("/calls"); r.Status != 200 {
		t.Fatalf("calls near expiry: %d", r.Status)
	}
	if c.Cookie("vx_session") == first {
		t.Fatal("the session was not refreshed near expiry")
	}
	time.Sleep(2 * time.Second) // the first access token has expired now
	if r := c.Get("/calls"); r.Status != 200 {
		t.Errorf("calls after the first token expired: %d", r.Status)
	}
}

func TestListsPaginateAndFilter(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := e.SignUp("pages@example.com")
	for i := 0; i < 55; i++ {
		status := "ended"
		if i%11 == 0 {
			status = "in-progress"
		}
		webtest.InsertRow(t, e, "calls", s.OrgID(), map[string]any{"status": status, "summary": "routine call", "started_at": time.Now()})
	}
	c := webtest.NewClient(t, e.URL)
	c.Login("pages@example.com", testenv.Password)
	p := c.Get("/calls")
	if n := strings.Count(p.Body, `href="/calls/`); n != 50 {
		t.Errorf("first page: %d calls", n)
	}
	m := regexpNext.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatal("no next-page link")
	}
	p2 := c.Get(strings.ReplaceAll(m[1], "&amp;", "&"))
	if n := strings.Count(p2.Body, `href="/calls/`); n != 5 || regexpNext.MatchString(p2.Body) {
		t.Errorf("second page: %d calls", n)
	}
	if n := strings.Count(c.Get("/calls?status=in-progress").Body, `href="/calls/`); n != 5 {
		t.Errorf("status filter: %d", n)
	}
	if r := c.Get("/calls?from=yesterday"); r.Status != 400 || !strings.Contains(r.Body, "YYYY-MM-DD") {
		t.Errorf("bad date: %d", r.Status)
	}
	if r := c.Get("/calls?q=nothing-matches-this"); !strings.Contains(r.Body, "No calls match") {
		t.Error("no empty state for a search without results")
	}
	if r := c.Get("/messages"); !strings.Contains(r.Body, "No messages yet") {
		t.Error("no empty state for messages")
	}
}

var regexpNext = regexp.MustCompile(`href="([^"]+)" rel="next"`)

// stream reads a Server-Sent Events stream in the background.
type stream struct {
	lines chan string
	close func()
}

func openStream(t *testing.T, c *webtest.Client) (*stream, int) {
	t.Helper()
	req, err := http.NewRequest("GET", c.Base+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.HC.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		return nil, resp.StatusCode
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("content type %q", ct)
	}
	s := &stream{lines: make(chan string, 100), close: func() { resp.Body.Close() }}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	t.Cleanup(s.close)
	return s, 200
}

// next returns the next event's name and data within d ("" on timeout or
// the stream's end).
func (s *stream) next(d time.Duration) (string, string) {
	deadline := time.After(d)
	var name string
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				return "closed", ""
			}
			switch {
			case strings.HasPrefix(l, "event: "):
				name = strings.TrimPrefix(l, "event: ")
			case strings.HasPrefix(l, "data: ") && name != "":
				return name, strings.TrimPrefix(l, "data: ")
			}
		case <-deadline:
			return "", ""
		}
	}
}

func TestEventsStreamIsOrgIsolatedAndEndsWithTheSession(t *testing.T) {
	w := newWorld(t, testenv.Options{})
	if _, status := openStream(t, webtest.NewClient(t, w.e.URL)); status != http.StatusUnauthorized {
		t.Errorf("events without a session: %d", status)
	}
	a, _ := openStream(t, w.signedIn(t, "owner-a@example.com"))
	b, _ := openStream(t, w.signedIn(t, "owner-b@example.com"))
	deadline := time.Now().Add(5 * time.Second)
	for w.e.Events.Subscribers(w.owner.OrgID()) != 1 || w.e.Events.Subscribers(w.ownerB.OrgID()) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("streams did not subscribe")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Rows written as the webhook jobs write them, and announced as the
	// jobs announce them.
	callA := webtest.InsertRow(t, w.e, "calls", w.owner.OrgID(), map[string]any{"summary": "fresh"})
	if err := w.e.DB.NotifyDashboard(context.Background(), w.owner.OrgID()); err != nil {
		t.Fatal(err)
	}
	if name, data := a.next(3 * time.Second); name != "call" || data != `{"id":"`+callA+`"}` {
		t.Errorf("org A's stream: %q %q", name, data)
	}
	msgB := webtest.InsertRow(t, w.e, "messages", w.ownerB.OrgID(), map[string]any{"body": "hi"})
	if err := w.e.DB.NotifyDashboard(context.Background(), w.ownerB.OrgID()); err != nil {
		t.Fatal(err)
	}
	if name, data := b.next(3 * time.Second); name != "message" || data != `{"id":"`+msgB+`"}` {
		t.Errorf("org B's stream: %q %q (it must never carry org A's %s)", name, data, callA)
	}
	// The job wrapper announces what the webhook processor wrote.
	var written string
	n := &postgres.DashboardNotifier{DB: w.e.DB, Next: processorFunc(func(ctx context.Context, job voxanne.ProcessEventArgs) error {
		written = webtest.InsertRow(t, w.e, "messages", job.OrgID, map[string]any{"body": "via job"})
		return nil
	})}
	if err := n.ProcessEvent(context.Background(), voxanne.ProcessEventArgs{EventID: 1, OrgID: w.owner.OrgID()}); err != nil {
		t.Fatal(err)
	}
	if name, data := a.next(3 * time.Second); name != "message" || data != `{"id":"`+written+`"}` {
		t.Errorf("org A's stream after a processed event: %q %q", name, data)
	}
	// A session revoked elsewhere ends its stream.
	if r := w.e.Do("POST", "/auth/v1/logout?scope=global", nil, testenv.Bearer(w.owner.AccessToken)...); r.Status != 204 {
		t.Fatalf("logout: %d", r.Status)
	}
	for {
		name, _ := a.next(10 * time.Second)
		if name == "end" || name == "closed" {
			break
		}
		if name == "" {
			t.Fatal("the revoked session's stream did not end")
		}
	}
}

// processorFunc is an event processor made of a func.
type processorFunc func(ctx context.Context, job voxanne.ProcessEventArgs) error

func (f processorFunc) ProcessEvent(ctx context.Context, job voxanne.ProcessEventArgs) error {
	return f(ctx, job)
}
