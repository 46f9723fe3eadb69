package http_test

// Users without an active org: they left (or were removed from) the org their
// session was for, or belong to none at all. Their session goes on without an
// org, never silently in another one; /api/me says so; they can create an org,
// accept an invitation and switch; every other /api route answers 403
// no_active_org.

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/voxanne/voxanne/internal/testenv"
)

// handOver makes a second owner of s's org and has s leave it; it returns the
// new owner's session.
func handOver(t *testing.T, e *testenv.Env, s *testenv.Session, newOwner string) *testenv.Session {
	t.Helper()
	_, secret := e.Invite(s, newOwner, "owner")
	heir := e.SignUp(newOwner)
	orgExpect(t, orgAccept(t, e, heir.AccessToken, secret), http.StatusOK, "heir accepts")
	orgExpect(t, orgRequest(t, e, s.AccessToken, "DELETE", "/api/org/members/"+s.User.ID, nil), http.StatusNoContent, "leave")
	return heir
}

// meOrg returns /api/me's org (nil when null), role and the ids of orgs.
func meOrg(t *testing.T, e *testenv.Env, tok string) (org map[string]any, role any, orgs []string) {
	t.Helper()
	r := orgRequest(t, e, tok, "GET", "/api/me", nil)
	orgExpect(t, r, http.StatusOK, "GET /api/me")
	m := r.JSON(t)
	for _, k := range []string{"user", "org", "role", "orgs"} {
		if _, ok := m[k]; !ok {
			t.Errorf("/api/me has no %s: %s", k, r.Body)
		}
	}
	org, _ = m["org"].(map[string]any)
	for _, v := range m["orgs"].([]any) {
		orgs = append(orgs, v.(map[string]any)["id"].(string))
	}
	return org, m["role"], orgs
}

func TestLeavingTheActiveOrgRefreshesToNoOrg(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	owner := e.SignUp("owner@example.com")
	orgA := owner.OrgID()
	m := e.SignUp("leaver@example.com")
	home := m.OrgID()
	_, secret := e.Invite(owner, "leaver@example.com", "member")
	orgExpect(t, orgAccept(t, e, m.AccessToken, secret), http.StatusOK, "join A")

	// m leaves home, the org of their session, while still a member of A.
	handOver(t, e, m, "heir@example.com")
	orgRevoked(t, e, m.AccessToken, "token of the org left")
	s := orgRefresh(t, e, m.RefreshToken)
	if org, role := orgOfToken(t, s.AccessToken); org != "" || role != "" {
		t.Fatalf("refreshed session is for org %q (%s), want none (A is %s)", org, role, orgA)
	}
	if got := s.User.AppMetadata["org_id"]; got != nil {
		t.Errorf("session user app_metadata.org_id = %v, want none", got)
	}
	org, role, orgs := meOrg(t, e, s.AccessToken)
	if org != nil || role != nil {
		t.Errorf("/api/me org %v role %v, want null", org, role)
	}
	if len(orgs) != 1 || orgs[0] != orgA {
		t.Errorf("/api/me orgs %v, want just A", orgs)
	}
	orgExpectError(t, orgRequest(t, e, s.AccessToken, "GET", "/api/org", nil), http.StatusForbidden, "no_active_org", "GET /api/org")
	orgExpectError(t, orgRequest(t, e, s.AccessToken, "GET", "/api/calls", nil), http.StatusForbidden, "no_active_org", "GET /api/calls")
	// It stays without an org across refreshes, until the user switches.
	s = orgRefresh(t, e, s.RefreshToken)
	if org, _ := orgOfToken(t, s.AccessToken); org != "" {
		t.Fatalf("second refresh moved the session to %s", org)
	}
	sw := e.Switch(s, orgA)
	if org, role := orgOfToken(t, sw.AccessToken); org != orgA || role != "member" {
		t.Errorf("switched token: %q %q", org, role)
	}
	orgWorks(t, e, sw.AccessToken, orgA, "switched token")
	if org, _, _ := meOrg(t, e, sw.AccessToken); org["id"] != orgA {
		t.Errorf("/api/me after the switch: org %v", org)
	}
	_ = home
}

// Removed by an admin rather than leaving: the same.
func TestRemovedFromTheActiveOrgRefreshesToNoOrg(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	owner := e.SignUp("owner@example.com")
	m := e.AddMember(owner, "removed@example.com", "member") // a session for A; also owns their own org
	orgExpect(t, orgRequest(t, e, owner.AccessToken, "DELETE", "/api/org/members/"+m.User.ID, nil), http.StatusNoContent, "remove")
	s := orgRefresh(t, e, m.RefreshToken)
	if org, _ := orgOfToken(t, s.AccessToken); org != "" {
		t.Fatalf("refreshed session of a removed member is for %s, want none", org)
	}
	if org, _, orgs := meOrg(t, e, s.AccessToken); org != nil || len(orgs) != 1 {
		t.Errorf("/api/me: org %v, orgs %v", org, orgs)
	}
}

// A user who belongs to no org at all signs in, sees who they are, is refused
// everywhere else with no_active_org, and gets an org by creating one or by
// accepting an invitation.
func TestUserWithoutOrgs(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	u := e.SignUp("lonely@example.com")
	handOver(t, e, u, "successor@example.com")
	s := e.SignIn("lonely@example.com")
	if org, _ := orgOfToken(t, s.AccessToken); org != "" {
		t.Fatalf("sign-in of a user without orgs: token for %s", org)
	}
	if org, role, orgs := meOrg(t, e, s.AccessToken); org != nil || role != nil || len(orgs) != 0 {
		t.Errorf("/api/me: org %v role %v orgs %v", org, role, orgs)
	}
	// Every other /api route: 403 no_active_org (operator routes: 403).
	open := map[string]bool{"GET /api/me": true, "POST /api/orgs": true, "POST /api/invitations/accept": true, "POST /api/orgs/{orgId}/switch": true,
		"GET /api/openapi.json": true} // public
	param := regexp.MustCompile(`\{[^}]+\}`)
	n := 0
	for _, p := range e.Handler.Routes() {
		method, path, _ := strings.Cut(p, " ")
		if !strings.HasPrefix(path, "/api/") || path == "/api/" || strings.HasPrefix(path, "/api/webhooks/") || open[p] {
			continue
		}
		n++
		r := orgRequest(t, e, s.AccessToken, method, param.ReplaceAllString(path, uuid.NewString()), map[string]any{})
		if strings.HasPrefix(path, "/api/admin/") || strings.HasPrefix(path, "/api/monitoring/") {
			orgExpectError(t, r, http.StatusForbidden, "forbidden", p)
			continue
		}
		orgExpectError(t, r, http.StatusForbidden, "no_active_org", p)
	}
	if n < 20 {
		t.Errorf("only %d routes checked", n)
	}

	// Create an org, then switch into it.
	r := orgRequest(t, e, s.AccessToken, "POST", "/api/orgs", map[string]any{"name": "Fresh Start"})
	orgExpect(t, r, http.StatusCreated, "create an org without an active one")
	created, _ := r.JSON(t)["id"].(string)
	sw := e.Switch(s, created)
	orgWorks(t, e, sw.AccessToken, created, "token for the created org")

	// Accept an invitation, with the org-less session.
	inviter := e.SignUp("inviter@example.com")
	_, secret := e.Invite(inviter, "lonely@example.com", "admin")
	orgExpect(t, orgAccept(t, e, s.AccessToken, secret), http.StatusOK, "accept without an active org")
	if _, _, orgs := meOrg(t, e, s.AccessToken); len(orgs) != 2 {
		t.Errorf("orgs after create and accept: %v", orgs)
	}
	joined := e.Switch(s, inviter.OrgID())
	if org, role := orgOfToken(t, joined.AccessToken); org != inviter.OrgID() || role != "admin" {
		t.Errorf("joined token: %q %q", org, role)
	}
}
