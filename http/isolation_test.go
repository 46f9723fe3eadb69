package http_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/internal/testenv"
	"github.com/voxanne/voxanne/postgres"
)

// The isolation proof walks the router's own route table: every /api route must
// have a case below, so a new route cannot be left out. For each route it checks
// that no token gives 401; that a token of org B aimed at org A's objects gets
// 403 or 404 (or B's own data) and never a byte of A's data; that each role in
// A is allowed or refused as the role rules say; and that org_id, role, id and
// created_at in a request body never change those fields.

// world is two orgs: A with an owner, an admin, a member and an open
// invitation; B with an owner.
type world struct {
	e                     *testenv.Env
	ownerA, adminA, membA *testenv.Session
	ownerB                *testenv.Session
	orgA, orgB            string
	inviteA               string // an open invitation of A
	secrets               []string
	seq                   atomic.Int64
	voiceA                voiceFixture // a call, contact, message and number of A
	endpointA             string       // a webhook endpoint of A
	orgC                  string       // a third org, the target of operator assignments
}

func newWorld(t *testing.T, opts testenv.Options) *world {
	t.Helper()
	e := testenv.New(t, opts)
	w := &world{e: e}
	w.ownerA = e.SignUp("owner-a@example.com")
	w.orgA = w.ownerA.OrgID()
	if r := e.Do("PATCH", "/api/org", map[string]any{"name": "Alpha Clinic"}, testenv.Bearer(w.ownerA.AccessToken)...); r.Status != 200 {
		t.Fatalf("rename A: %d %s", r.Status, r.Body)
	}
	w.adminA = e.AddMember(w.ownerA, "admin-a@example.com", "admin")
	w.membA = e.AddMember(w.ownerA, "member-a@example.com", "member")
	w.inviteA, _ = e.Invite(w.ownerA, "guest-a@example.com", "member")
	w.ownerB = e.SignUp("owner-b@example.com")
	w.orgB = w.ownerB.OrgID()
	// What must never appear in an answer to org B.
	w.secrets = []string{w.orgA, "Alpha Clinic", "owner-a@example.com", "admin-a@example.com",
		"member-a@example.com", "guest-a@example.com", w.inviteA, w.adminA.User.ID, w.membA.User.ID, w.ownerA.User.ID}
	w.voiceA = seedVoice(t, e, w.orgA)
	w.secrets = append(w.secrets, w.voiceA.secrets...)
	w.endpointA = w.newEndpoint(t)
	w.secrets = append(w.secrets, w.endpointA)
	return w
}

func (w *world) session(role string) *testenv.Session {
	switch role {
	case "owner":
		return w.ownerA
	case "admin":
		return w.adminA
	}
	return w.membA
}

// fresh returns a unique email.
func (w *world) fresh(prefix string) string {
	return fmt.Sprintf("%s-%d@example.com", prefix, w.seq.Add(1))
}

// req is one request: method, path and body.
type req struct {
	method, path string
	body         any
}

// routeCase says how to call a route as a caller of org A (build may create
// targets, acting as A's owner) and which role it needs ("" any member,
// "service_role" an operator token). cross builds the request org B's owner
// sends at A's objects (nil: the same request as build's, with B's token).
type routeCase struct {
	pattern string
	name    string
	minRole string
	want    int
	build   func(t *testing.T, w *world, caller *testenv.Session) req
	cross   func(t *testing.T, w *world) req
}

func fixed(method, path string, body any) func(*testing.T, *world, *testenv.Session) req {
	return func(*testing.T, *world, *testenv.Session) req { return req{method, path, body} }
}

func routeCases() []routeCase {
	return []routeCase{
		{pattern: "GET /api/session", want: 200, build: fixed("GET", "/api/session", nil)},
		{pattern: "GET /api/monitoring/cache-stats", minRole: "service_role", want: 200, build: fixed("GET", "/api/monitoring/cache-stats", nil)},
		{pattern: "GET /api/me", want: 200, build: fixed("GET", "/api/me", nil)},
		{pattern: "GET /api/orgs/validate/{orgId}", want: 200,
			build: func(t *testing.T, w *world, _ *testenv.Session) req {
				return req{"GET", "/api/orgs/validate/" + w.orgA, nil}
			}},
		{pattern: "POST /api/orgs", want: 201, build: fixed("POST", "/api/orgs", map[string]any{"name": "Side org"})},
		{pattern: "POST /api/orgs/{orgId}/switch", want: 200,
			build: func(t *testing.T, w *world, _ *testenv.Session) req {
				return req{"POST", "/api/orgs/" + w.orgA + "/switch", nil}
			}},
		{pattern: "GET /api/org", want: 200, build: fixed("GET", "/api/org", nil)},
		{pattern: "PATCH /api/org", minRole: "admin", want: 200, build: fixed("PATCH", "/api/org", map[string]any{"name": "Alpha Clinic"}),
			cross: func(t *testing.T, w *world) req {
				return req{"PATCH", "/api/org", map[string]any{"name": "Bravo Renamed"}}
			}},
		// Deleting an org needs ?confirm=<its id>: without it the owner passes
		// the role check and gets 400 (TestDeleteOrg deletes one); B's owner
		// naming A is refused.
		{pattern: "DELETE /api/org", minRole: "owner", want: 400, build: fixed("DELETE", "/api/org", nil),
			cross: func(t *testing.T, w *world) req { return req{"DELETE", "/api/org?confirm=" + w.orgA, nil} }},
		{pattern: "GET /api/org/members", want: 200, build: fixed("GET", "/api/org/members", nil)},
		{pattern: "PATCH /api/org/members/{userId}", name: "to admin", minRole: "admin", want: 200,
			build: func(t *testing.T, w *world, _ *testenv.Session) req {
				m := w.e.AddMember(w.ownerA, w.fresh("target"), "member")
				return req{"PATCH", "/api/org/members/" + m.User.ID, map[string]any{"role": "admin"}}
			},
			cross: func(t *testing.T, w *world) req {
				return req{"PATCH", "/api/org/members/" + w.membA.User.ID, map[string]any{"role": "owner"}}
			}},
		{pattern: "PATCH /api/org/members/{userId}", name: "to owner", minRole: "owner", want: 200,
			build: func(t *testing.T, w *world, _ *testenv.Session) req {
				m := w.e.AddMember(w.ownerA, w.fresh("promote"), "member")
				return req{"PATCH", "/api/org/members/" + m.User.ID, map[string]any{"role": "owner"}}
			}},
		{pattern: "DELETE /api/org/members/{userId}", minRole: "admin", want: 204,
			build: func(t *testing.T, w *world, _ *testenv.Session) req {
				m := w.e.AddMember(w.ownerA, w.fresh("removed"), "member")
				return req{"DELETE", "/api/org/members/" + m.User.ID, nil}
			},
			cross: func(t *testing.T, w *world) req { return req{"DELETE", "/api/org/members/" + w.membA.User.ID, nil} }},
		{pattern: "POST /api/org/invitations", name: "member", minRole: "admin", want: 201,
			build: func(t *testing.T, w *world, _ *testenv.Session) req {
				return req{"POST", "/api/org/invitations", map[string]any{"email": w.fresh("inv"), "role": "member"}}
			}},
		{pattern: "POST /api/org/invitations", name: "owner", minRole: "owner", want: 201,
			build: func(t *testing.T, w *world, _ *testenv.Session) req {
				return req{"POST", "/api/org/invitations", map[string]any{"email": w.fresh("inv-owner"), "role": "owner"}}
			}},
		{pattern: "GET /api/org/invitations", minRole: "admin", want: 200, build: fixed("GET", "/api/org/invitations", nil)},
		{pattern: "DELETE /api/org/invitations/{id}", minRole: "admin", want: 204,
			build: func(t *testing.T, w *world, _ *testenv.Session) req {
				id, _ := w.e.Invite(w.ownerA, w.fresh("revoked"), "member")
				return req{"DELETE", "/api/org/invitations/" + id, nil}
			},
			cross: func(t *testing.T, w *world) req { return req{"DELETE", "/api/org/invitations/" + w.inviteA, nil} }},
		{pattern: "POST /api/invitations/accept", want: 200,
			// An invitation of a third org for the caller's own address.
			build: func(t *testing.T, w *world, caller *testenv.Session) req {
				third := w.e.SignUp(w.fresh("third-owner"))
				_, secret := w.e.Invite(third, caller.User.Email, "member")
				return req{"POST", "/api/invitations/accept", map[string]any{"token": secret}}
			},
			// A's invitation for someone else, presented by B's owner.
			cross: func(t *testing.T, w *world) req {
				_, secret := w.e.Invite(w.ownerA, w.fresh("not-b"), "member")
				return req{"POST", "/api/invitations/accept", map[string]any{"token": secret}}
			}},
		{pattern: "GET /api/org/audit-log", minRole: "admin", want: 200, build: fixed("GET", "/api/org/audit-log", nil)},
		{pattern: "GET /api/org/audit-log/export", minRole: "admin", want: 200, build: fixed("GET", "/api/org/audit-log/export", nil)},
		{pattern: "GET /api/org/audit-log/verify", minRole: "admin", want: 200, build: fixed("GET", "/api/org/audit-log/verify", nil)},
		// Voice data: org A's fixture (seedVoice) is the target of B's requests.
		{pattern: "GET /api/calls", want: 200, build: fixed("GET", "/api/calls", nil)},
		{pattern: "GET /api/calls", name: "search", want: 200, build: fixed("GET", "/api/calls?q=kneecap&status=ended&from=2000-01-01", nil)},
		{pattern: "GET /api/calls/{id}", want: 200,
			build: func(t *testing.T, w *world, _ *testenv.Session) req {
				return req{"GET", "/api/calls/" + w.voiceA.callID, nil}
			},
			cross: func(t *testing.T, w *world) req { return req{"GET", "/api/calls/" + w.voiceA.callID, nil} }},
		{pattern: "GET /api/messages", want: 200,
			build: func(t *testing.T, w *world, _ *testenv.Session) req {
				return req{"GET", "/api/messages?contact_id=" + w.voiceA.contactID, nil}
			}},
		{pattern: "GET /api/contacts", want: 200, build: fixed("GET", "/api/contacts", nil)},
		{pattern: "GET /api/contacts/{id}", want: 200,
			build: func(t *testing.T, w *world, _ *testenv.Session) req {
				return req{"GET", "/api/contacts/" + w.voiceA.contactID, nil}
			},
			cross: func(t *testing.T, w *world) req { return req{"GET", "/api/contacts/" + w.voiceA.contactID, nil} }},
		{pattern: "PATCH /api/contacts/{id}", want: 200,
			build: func(t *testing.T, w *world, _ *testenv.Session) req {
				return req{"PATCH", "/api/contacts/" + w.voiceA.contactID, map[string]any{"notes": "called back"}}
			},
			cross: func(t *testing.T, w *world) req {
				return req{"PATCH", "/api/contacts/" + w.voiceA.contactID, map[string]any{"name": "Bravo was here", "notes": "B"}}
			}},
		{pattern: "GET /api/stats", want: 200, build: fixed("GET", "/api/stats?from=2000-01-01", nil)},
		{pattern: "GET /api/phone-numbers", want: 200, build: fixed("GET", "/api/phone-numbers", nil)},
		{pattern: "POST /api/phone-numbers", minRole: "admin", want: 201,
			build: func(t *testing.T, w *world, _ *testenv.Session) req {
				n := w.seq.Add(1)
				return req{"POST", "/api/phone-numbers", map[string]any{"e164": fmt.Sprintf("+1628555%04d", n),
					"provider": "vapi", "provider_id": fmt.Sprintf("pn-fresh-%d", n), "label": "Front desk"}}
			}},
		{pattern: "DELETE /api/phone-numbers/{id}", minRole: "admin", want: 204,
			build: func(t *testing.T, w *world, _ *testenv.Session) req {
				id := insertRow(t, w.e, "phone_numbers", w.orgA, map[string]any{"e164": fmt.Sprintf("+1628556%04d", w.seq.Add(1))})
				return req{"DELETE", "/api/phone-numbers/" + id, nil}
			},
			cross: func(t *testing.T, w *world) req { return req{"DELETE", "/api/phone-numbers/" + w.voiceA.phoneID, nil} }},
		// An org's own webhook endpoints: B's owner reaches none of A's.
		{pattern: "GET /api/org/webhook-endpoints", minRole: "admin", want: 200, build: fixed("GET", "/api/org/webhook-endpoints", nil)},
		{pattern: "POST /api/org/webhook-endpoints", minRole: "admin", want: 201,
			build: fixed("POST", "/api/org/webhook-endpoints", map[string]any{"provider": "vapi", "org_id": "00000000-0000-0000-0000-000000000000"})},
		{pattern: "POST /api/org/webhook-endpoints/{id}/rotate", minRole: "admin", want: 200,
			build: func(t *testing.T, w *world, _ *testenv.Session) req {
				return req{"POST", "/api/org/webhook-endpoints/" + w.newEndpoint(t) + "/rotate", nil}
			},
			cross: func(t *testing.T, w *world) req {
				return req{"POST", "/api/org/webhook-endpoints/" + w.endpointA + "/rotate", nil}
			}},
		{pattern: "DELETE /api/org/webhook-endpoints/{id}", minRole: "admin", want: 204,
			build: func(t *testing.T, w *world, _ *testenv.Session) req {
				return req{"DELETE", "/api/org/webhook-endpoints/" + w.newEndpoint(t), nil}
			},
			cross: func(t *testing.T, w *world) req {
				return req{"DELETE", "/api/org/webhook-endpoints/" + w.endpointA, nil}
			}},
		// The operator's number assignments, made here for orgs other than A.
		{pattern: "GET /api/admin/phone-numbers", minRole: "service_role", want: 200, build: fixed("GET", "/api/admin/phone-numbers", nil)},
		{pattern: "POST /api/admin/phone-numbers", minRole: "service_role", want: 201,
			build: func(t *testing.T, w *world, _ *testenv.Session) req {
				n := w.seq.Add(1)
				return req{"POST", "/api/admin/phone-numbers", map[string]any{"org_id": w.otherOrg(t),
					"e164": fmt.Sprintf("+1628557%04d", n), "provider": "vapi", "assistant_id": fmt.Sprintf("asst-op-%d", n)}}
			}},
		{pattern: "DELETE /api/admin/phone-numbers/{id}", minRole: "service_role", want: 204,
			build: func(t *testing.T, w *world, _ *testenv.Session) req {
				e164 := fmt.Sprintf("+1628558%04d", w.seq.Add(1))
				a, err := w.e.Endpoints.Assign(context.Background(), voxanne.PhoneAssignment{OrgID: w.otherOrg(t), E164: &e164, Provider: "twilio"})
				if err != nil {
					t.Fatal(err)
				}
				return req{"DELETE", "/api/admin/phone-numbers/" + a.ID, nil}
			}},
	}
}

// newEndpoint creates a Vapi endpoint of org A as its owner.
func (w *world) newEndpoint(t *testing.T) string {
	t.Helper()
	r := w.e.Do("POST", "/api/org/webhook-endpoints", map[string]any{"provider": "vapi"}, testenv.Bearer(w.ownerA.AccessToken)...)
	if r.Status != 201 {
		t.Fatalf("create endpoint: %d %s", r.Status, r.Body)
	}
	id, _ := r.JSON(t)["id"].(string)
	return id
}

// otherOrg is an org that is neither A nor B, made once per world.
func (w *world) otherOrg(t *testing.T) string {
	t.Helper()
	if w.orgC == "" {
		w.orgC = w.e.SignUp(w.fresh("operator-target")).OrgID()
	}
	return w.orgC
}

// apiRoutes lists the router's /api routes that need a token (all but the
// webhooks and the public OpenAPI document).
func apiRoutes(w *world) []string {
	var out []string
	for _, p := range w.e.Handler.Routes() {
		_, path, _ := strings.Cut(p, " ")
		if strings.HasPrefix(path, "/api/") && path != "/api/" && !strings.HasPrefix(path, "/api/webhooks/") && path != "/api/openapi.json" {
			out = append(out, p)
		}
	}
	return out
}

func TestIsolationProofCoversEveryRoute(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.Options{})
	cases := routeCases()
	for _, p := range apiRoutes(w) {
		if !slices.ContainsFunc(cases, func(c routeCase) bool { return c.pattern == p }) {
			t.Errorf("route %s has no case in the isolation proof", p)
		}
	}
	for _, c := range cases {
		if !slices.Contains(apiRoutes(w), c.pattern) {
			t.Errorf("case for %s names no route", c.pattern)
		}
	}
}

func TestIsolationProofNoToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.Options{})
	for _, c := range routeCases() {
		r := c.build(t, w, w.ownerA)
		resp := w.e.Do(r.method, r.path, r.body)
		if resp.Status != 401 || resp.JSON(t)["code"] != "no_authorization" {
			t.Errorf("%s %s without a token: %d %s", c.pattern, c.name, resp.Status, resp.Body)
		}
	}
}

// crossTenant sends every route as org B's owner at org A's objects.
func crossTenant(t *testing.T, w *world) {
	t.Helper()
	for _, c := range routeCases() {
		t.Run(c.pattern+" "+c.name, func(t *testing.T) {
			var r req
			if c.cross != nil {
				r = c.cross(t, w)
			} else {
				r = c.build(t, w, w.ownerB)
			}
			headers := testenv.Bearer(w.ownerB.AccessToken)
			if c.minRole == "service_role" {
				tok, err := w.e.Auth.ServiceRoleToken(context.Background(), 60e9)
				if err != nil {
					t.Fatal(err)
				}
				headers = testenv.Bearer(tok)
			}
			resp := w.e.Do(r.method, r.path, r.body, append(headers, "X-Org-Id", w.orgA)...)
			secrets := w.secrets
			if strings.HasPrefix(r.path, "/api/org/audit-log") {
				// B's own log records B's attempts, naming the org id B sent.
				secrets = secrets[1:]
			}
			for _, s := range secrets {
				if strings.Contains(string(resp.Body), s) {
					t.Fatalf("answer to org B carries org A's %q: %d %s", s, resp.Status, resp.Body)
				}
			}
			if (c.cross != nil && c.pattern != "PATCH /api/org") || strings.Contains(r.path, w.orgA) {
				if resp.Status != 403 && resp.Status != 404 {
					t.Fatalf("org B at org A's object: %d %s", resp.Status, resp.Body)
				}
			}
		})
	}
	// Org A is intact: its members, roles and invitation are as they were.
	resp := w.e.Do("GET", "/api/org/members", nil, testenv.Bearer(w.ownerA.AccessToken)...)
	for _, want := range []string{`"member-a@example.com","role":"member"`, `"admin-a@example.com","role":"admin"`} {
		if !strings.Contains(string(resp.Body), want) {
			t.Errorf("org A's members changed: %s", resp.Body)
		}
	}
	inv := w.e.Do("GET", "/api/org/invitations", nil, testenv.Bearer(w.ownerA.AccessToken)...)
	if !strings.Contains(string(inv.Body), w.inviteA) {
		t.Errorf("org A's invitation is gone: %s", inv.Body)
	}
	org := w.e.Do("GET", "/api/org", nil, testenv.Bearer(w.ownerA.AccessToken)...)
	if !strings.Contains(string(org.Body), "Alpha Clinic") {
		t.Errorf("org A renamed: %s", org.Body)
	}
}

func TestIsolationProofCrossTenant(t *testing.T) {
	t.Parallel()
	crossTenant(t, newWorld(t, testenv.Options{}))
}

// Layer knock-out: with the application's org_id filter off, row-level
// security alone keeps the orgs apart.
func TestIsolationProofRLSAlone(t *testing.T) {
	t.Parallel()
	db := knockedOut(t, postgres.Options{KnockOutOrgFilter: true})
	crossTenant(t, newWorld(t, testenv.Options{DB: db}))
}

// Layer knock-out: tenant transactions as the owner (row-level security
// bypassed), the application's org_id filter alone keeps the orgs apart.
func TestIsolationProofAppFilterAlone(t *testing.T) {
	t.Parallel()
	db := knockedOut(t, postgres.Options{KnockOutRLS: true})
	crossTenant(t, newWorld(t, testenv.Options{DB: db}))
}

func knockedOut(t *testing.T, opts postgres.Options) *postgres.DB {
	t.Helper()
	opts.MaxConns = 8
	db, err := postgres.Open(context.Background(), testdb.NewDatabase(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// The knock-outs really remove their layer: with both off, org B reads A's
// members (so the two tests above prove something).
func TestIsolationKnockOutsBite(t *testing.T) {
	t.Parallel()
	db := knockedOut(t, postgres.Options{KnockOutRLS: true, KnockOutOrgFilter: true})
	w := newWorld(t, testenv.Options{DB: db})
	resp := w.e.Do("GET", "/api/org/members", nil, testenv.Bearer(w.ownerB.AccessToken)...)
	if !strings.Contains(string(resp.Body), w.membA.User.ID) {
		t.Fatalf("with both layers off, B still cannot see A: %s", resp.Body)
	}
}

func TestIsolationProofRoles(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.Options{})
	for _, c := range routeCases() {
		for _, role := range []string{"member", "admin", "owner"} {
			t.Run(c.pattern+" "+c.name+" as "+role, func(t *testing.T) {
				caller := w.session(role)
				r := c.build(t, w, caller)
				resp := w.e.Do(r.method, r.path, r.body, testenv.Bearer(caller.AccessToken)...)
				allowed := c.minRole == "" || (c.minRole != "service_role" && voxanne.AtLeast(role, c.minRole))
				switch {
				case allowed && resp.Status != c.want:
					t.Fatalf("%s should be allowed: %d %s", role, resp.Status, resp.Body)
				case !allowed && resp.Status != 403:
					t.Fatalf("%s should get 403: %d %s", role, resp.Status, resp.Body)
				}
			})
		}
	}
	m := w.e.Do("GET", "/metrics", nil)
	if !strings.Contains(string(m.Body), "voxanne_forbidden_total") {
		t.Error("forbidden role actions are not counted in /metrics")
	}
}

// Fields a body must never set: org_id, role, id, created_at.
func TestIsolationProofBodyCannotSetProtectedFields(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.Options{})
	e := w.e
	h := testenv.Bearer(w.ownerA.AccessToken)
	forged := map[string]any{"org_id": w.orgB, "id": "00000000-0000-0000-0000-00000000f00d",
		"created_at": "2001-01-01T00:00:00Z", "role": "owner", "user_id": w.ownerB.User.ID}
	with := func(m map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range forged {
			out[k] = v
		}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	check := func(name string, r *testenv.Response, want int) map[string]any {
		t.Helper()
		if r.Status != want {
			t.Fatalf("%s: %d %s", name, r.Status, r.Body)
		}
		m := r.JSON(t)
		if m["id"] == forged["id"] || m["created_at"] == forged["created_at"] || m["org_id"] == w.orgB {
			t.Fatalf("%s took a forged field: %s", name, r.Body)
		}
		return m
	}
	check("POST /api/orgs", e.Do("POST", "/api/orgs", with(map[string]any{"name": "New"}), h...), 201)
	org := check("PATCH /api/org", e.Do("PATCH", "/api/org", with(map[string]any{"name": "Alpha Clinic"}), h...), 200)
	if org["id"] != w.orgA {
		t.Fatalf("PATCH /api/org moved to %v", org["id"])
	}
	inv := check("POST /api/org/invitations", e.Do("POST", "/api/org/invitations", with(map[string]any{"email": "x@example.com", "role": "member"}), h...), 201)
	if inv["role"] != "member" {
		t.Fatalf("invitation role %v", inv["role"])
	}
	m := check("PATCH member", e.Do("PATCH", "/api/org/members/"+w.membA.User.ID, with(map[string]any{"role": "member"}), h...), 200)
	if m["user_id"] != w.membA.User.ID {
		t.Fatalf("PATCH member changed %v", m["user_id"])
	}
	// The invitation landed in A, not in B.
	if r := e.Do("GET", "/api/org/invitations", nil, testenv.Bearer(w.ownerB.AccessToken)...); strings.Contains(string(r.Body), "x@example.com") {
		t.Fatal("invitation landed in org B")
	}
	// Role changes through a body of another route are ignored: the admin is
	// still an admin after sending role=owner to PATCH /api/org.
	if r := e.Do("PATCH", "/api/org", with(map[string]any{"name": "Alpha Clinic"}), testenv.Bearer(w.adminA.AccessToken)...); r.Status != 200 {
		t.Fatal(r.Status)
	}
	if r := e.Do("GET", "/api/session", nil, testenv.Bearer(w.adminA.AccessToken)...); r.JSON(t)["role"] != "admin" {
		t.Fatalf("admin's role changed: %s", r.Body)
	}
}
