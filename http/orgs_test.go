package http_test

// Tests of the organization endpoints of API.md §4: every route's success path
// and each of its error codes, the role rules, invitations, the revocation of
// tokens whose membership changed, and the hash-chained audit log. Everything
// runs against the real router and a real PostgreSQL with row-level security
// (internal/testenv).

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/voxanne/voxanne/internal/testenv"
)

// ---- helpers ----

// orgRequest sends a request with tok as the bearer token (none when tok is
// empty). body is JSON-encoded unless it is a string or []byte; headers are
// name, value pairs. It checks the X-Request-Id every response must carry.
func orgRequest(t testing.TB, e *testenv.Env, tok, method, path string, body any, headers ...string) *testenv.Response {
	t.Helper()
	if tok != "" {
		headers = append([]string{"Authorization", "Bearer " + tok}, headers...)
	}
	return e.DoFor(t, method, path, body, headers...)
}

// orgExpect stops the test unless r has status.
func orgExpect(t testing.TB, r *testenv.Response, status int, what string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.Status, status, r.Body)
	}
}

// orgExpectError checks an /api error answer: status, JSON body of exactly
// {code, message} with the wanted code and a message.
func orgExpectError(t testing.TB, r *testenv.Response, status int, code, what string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: status %d, want %d (%s): %s", what, r.Status, status, code, r.Body)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want JSON", what, ct)
	}
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Errorf("%s: error body is not a JSON object: %v: %s", what, err, r.Body)
		return
	}
	if m["code"] != code {
		t.Errorf("%s: code %v, want %q: %s", what, m["code"], code, r.Body)
	}
	if msg, _ := m["message"].(string); msg == "" {
		t.Errorf("%s: error without a message: %s", what, r.Body)
	}
	if len(m) != 2 {
		t.Errorf("%s: error body has members besides code and message: %s", what, r.Body)
	}
}

// orgKeys checks that m has exactly the keys want.
func orgKeys(t testing.TB, what string, m map[string]any, want ...string) {
	t.Helper()
	var got []string
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("%s: keys %v, want %v", what, got, want)
	}
}

// orgMap asserts that v is a JSON object.
func orgMap(t testing.TB, v any, what string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s = %v (%T), want an object", what, v, v)
	}
	return m
}

// orgArray decodes a JSON array of objects.
func orgArray(t testing.TB, r *testenv.Response, what string) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("%s: not an array of objects: %v: %s", what, err, r.Body)
	}
	return out
}

// orgUTC checks that v is an RFC 3339 time in UTC and returns it.
func orgUTC(t testing.TB, what string, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Errorf("%s = %v, want an RFC 3339 time", what, v)
		return time.Time{}
	}
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Errorf("%s = %q: %v", what, s, err)
		return time.Time{}
	}
	if !strings.HasSuffix(s, "Z") {
		t.Errorf("%s = %q, want UTC (Z)", what, s)
	}
	return tm
}

func orgIsUUID(v any) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

// orgClaims returns an access token's claims (unverified).
func orgClaims(t testing.TB, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("access token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("token payload: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("token payload: %v: %s", err, b)
	}
	return c
}

// orgOfToken returns app_metadata.org_id and org_role of an access token.
func orgOfToken(t testing.TB, tok string) (orgID, role string) {
	t.Helper()
	am := orgMap(t, orgClaims(t, tok)["app_metadata"], "app_metadata")
	orgID, _ = am["org_id"].(string)
	role, _ = am["org_role"].(string)
	return orgID, role
}

// orgRefresh spends a refresh token and returns the new session.
func orgRefresh(t testing.TB, e *testenv.Env, refreshToken string) *testenv.Session {
	t.Helper()
	r := orgRequest(t, e, "", "POST", "/auth/v1/token?grant_type=refresh_token", map[string]any{"refresh_token": refreshToken})
	orgExpect(t, r, http.StatusOK, "refresh")
	var s testenv.Session
	r.Decode(t, &s)
	if s.AccessToken == "" || s.RefreshToken == "" {
		t.Fatalf("refresh: not a session: %s", r.Body)
	}
	return &s
}

// orgAccept posts an invitation secret as the holder of tok.
func orgAccept(t testing.TB, e *testenv.Env, tok, secret string) *testenv.Response {
	t.Helper()
	return orgRequest(t, e, tok, "POST", "/api/invitations/accept", map[string]any{"token": secret})
}

// orgRoles returns the org's members as user id → role.
func orgRoles(t testing.TB, e *testenv.Env, tok string) map[string]string {
	t.Helper()
	r := orgRequest(t, e, tok, "GET", "/api/org/members", nil)
	orgExpect(t, r, http.StatusOK, "GET /api/org/members")
	out := map[string]string{}
	for _, m := range orgArray(t, r, "members") {
		id, _ := m["user_id"].(string)
		out[id], _ = m["role"].(string)
	}
	return out
}

// orgWorks checks that tok still works on GET /api/org and is for org.
func orgWorks(t testing.TB, e *testenv.Env, tok, org, what string) {
	t.Helper()
	r := orgRequest(t, e, tok, "GET", "/api/org", nil)
	if r.Status != http.StatusOK {
		t.Errorf("%s: GET /api/org: status %d, want 200: %s", what, r.Status, r.Body)
		return
	}
	if id := r.JSON(t)["id"]; id != org {
		t.Errorf("%s: GET /api/org is for %v, want %s", what, id, org)
	}
}

// orgRevoked checks that tok gets 401 session_revoked on its next request.
func orgRevoked(t testing.TB, e *testenv.Env, tok, what string) {
	t.Helper()
	orgExpectError(t, orgRequest(t, e, tok, "GET", "/api/org", nil), http.StatusUnauthorized, "session_revoked", what)
}

var orgAuditKeys = []string{"id", "seq", "at", "actor_id", "action", "target_type", "target_id", "ip", "details", "hash"}

var orgHexHash = regexp.MustCompile(`^[0-9a-f]{64}$`)

// orgCheckEntry checks the shape of an audit entry.
func orgCheckEntry(t testing.TB, en map[string]any) {
	t.Helper()
	what := fmt.Sprintf("audit entry %v (%v)", en["seq"], en["action"])
	orgKeys(t, what, en, orgAuditKeys...)
	if !orgIsUUID(en["id"]) {
		t.Errorf("%s: id %v is not a UUID", what, en["id"])
	}
	if s, ok := en["seq"].(float64); !ok || s < 1 || s != float64(int64(s)) {
		t.Errorf("%s: seq %v is not a positive integer", what, en["seq"])
	}
	orgUTC(t, what+" at", en["at"])
	if a, _ := en["action"].(string); a == "" {
		t.Errorf("%s: no action", what)
	}
	if h, _ := en["hash"].(string); !orgHexHash.MatchString(h) {
		t.Errorf("%s: hash %v is not a hex SHA-256", what, en["hash"])
	}
	if _, ok := en["details"].(map[string]any); !ok {
		t.Errorf("%s: details %v is not an object", what, en["details"])
	}
}

func orgSeq(en map[string]any) int64 { s, _ := en["seq"].(float64); return int64(s) }

// orgAuditPage reads one page of the audit log.
func orgAuditPage(t testing.TB, e *testenv.Env, tok, query string) (data []map[string]any, next any) {
	t.Helper()
	r := orgRequest(t, e, tok, "GET", "/api/org/audit-log"+query, nil)
	orgExpect(t, r, http.StatusOK, "GET /api/org/audit-log"+query)
	var page struct {
		Data       []map[string]any `json:"data"`
		NextCursor any              `json:"next_cursor"`
	}
	r.Decode(t, &page)
	m := r.JSON(t)
	orgKeys(t, "audit log page", m, "data", "next_cursor")
	if page.Data == nil {
		t.Fatalf("audit log page without a data array: %s", r.Body)
	}
	return page.Data, page.NextCursor
}

// orgAuditAll walks the whole audit log, newest first.
func orgAuditAll(t testing.TB, e *testenv.Env, tok string) []map[string]any {
	t.Helper()
	var all []map[string]any
	q := "?limit=100"
	for range 100 {
		data, next := orgAuditPage(t, e, tok, q)
		all = append(all, data...)
		c, ok := next.(string)
		if !ok {
			return all
		}
		q = "?limit=100&cursor=" + url.QueryEscape(c)
	}
	t.Fatal("audit log pagination does not end")
	return nil
}

// orgAuditOf returns the entries of one action.
func orgAuditOf(entries []map[string]any, action string) []map[string]any {
	var out []map[string]any
	for _, en := range entries {
		if en["action"] == action {
			out = append(out, en)
		}
	}
	return out
}

// orgVerify returns GET /api/org/audit-log/verify.
func orgVerify(t testing.TB, e *testenv.Env, tok string) (valid bool, entries int64) {
	t.Helper()
	r := orgRequest(t, e, tok, "GET", "/api/org/audit-log/verify", nil)
	orgExpect(t, r, http.StatusOK, "verify")
	m := r.JSON(t)
	keys := []string{"valid", "entries"}
	if m["valid"] == false {
		// An invalid chain names where and why.
		keys = append(keys, "reason")
		if _, ok := m["first_invalid_seq"]; ok {
			keys = append(keys, "first_invalid_seq")
		}
	}
	orgKeys(t, "verify", m, keys...)
	v, ok := m["valid"].(bool)
	if !ok {
		t.Fatalf("verify: valid = %v, want a boolean", m["valid"])
	}
	n, ok := m["entries"].(float64)
	if !ok {
		t.Fatalf("verify: entries = %v, want a number", m["entries"])
	}
	return v, int64(n)
}

// orgSecret returns the token parameter of an accept_url.
func orgSecret(t testing.TB, acceptURL string) string {
	t.Helper()
	u, err := url.Parse(acceptURL)
	if err != nil {
		t.Fatalf("accept_url %q: %v", acceptURL, err)
	}
	s := u.Query().Get("token")
	if s == "" {
		t.Fatalf("accept_url %q has no token", acceptURL)
	}
	return s
}

// orgRename renames the org of tok (one more audit entry).
func orgRename(t testing.TB, e *testenv.Env, tok, name string) {
	t.Helper()
	orgExpect(t, orgRequest(t, e, tok, "PATCH", "/api/org", map[string]any{"name": name}), http.StatusOK, "rename to "+name)
}

// orgSignUp signs up email (with an org name of "Org <email>") and returns the
// session; like testenv's SignUp but failing the calling (sub)test.
func orgSignUp(t testing.TB, e *testenv.Env, email string) *testenv.Session {
	t.Helper()
	r := orgRequest(t, e, "", "POST", "/auth/v1/signup", map[string]any{"email": email, "password": testenv.Password,
		"data": map[string]any{"org_name": "Org " + email}})
	return orgSessionOf(t, r, "sign up "+email)
}

// orgSignIn signs in with testenv.Password.
func orgSignIn(t testing.TB, e *testenv.Env, email string) *testenv.Session {
	t.Helper()
	r := orgRequest(t, e, "", "POST", "/auth/v1/token?grant_type=password", map[string]any{"email": email, "password": testenv.Password})
	return orgSessionOf(t, r, "sign in "+email)
}

func orgSessionOf(t testing.TB, r *testenv.Response, what string) *testenv.Session {
	t.Helper()
	orgExpect(t, r, http.StatusOK, what)
	var s testenv.Session
	r.Decode(t, &s)
	if s.AccessToken == "" || s.RefreshToken == "" {
		t.Fatalf("%s: not a session: %s", what, r.Body)
	}
	return &s
}

// orgInvite has s invite email with role and returns the invitation's id and
// secret.
func orgInvite(t testing.TB, e *testenv.Env, s *testenv.Session, email, role string) (id, secret string) {
	t.Helper()
	r := orgRequest(t, e, s.AccessToken, "POST", "/api/org/invitations", map[string]any{"email": email, "role": role})
	orgExpect(t, r, http.StatusCreated, "invite "+email)
	var inv struct {
		ID        string `json:"id"`
		AcceptURL string `json:"accept_url"`
	}
	r.Decode(t, &inv)
	return inv.ID, orgSecret(t, inv.AcceptURL)
}

// orgSwitch switches s to org.
func orgSwitch(t testing.TB, e *testenv.Env, s *testenv.Session, org string) *testenv.Session {
	t.Helper()
	return orgSessionOf(t, orgRequest(t, e, s.AccessToken, "POST", "/api/orgs/"+org+"/switch", nil), "switch to "+org)
}

// orgAddMember signs email up, has it accept an invitation of owner's with
// role, and returns its session switched to owner's org.
func orgAddMember(t testing.TB, e *testenv.Env, owner *testenv.Session, email, role string) *testenv.Session {
	t.Helper()
	_, secret := orgInvite(t, e, owner, email, role)
	s := orgSignUp(t, e, email)
	orgExpect(t, orgAccept(t, e, s.AccessToken, secret), http.StatusOK, "accept for "+email)
	return orgSwitch(t, e, s, owner.OrgID())
}

// ---- every endpoint needs a live user token ----

func TestOrgEndpointsNeedAToken(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	loggedOut := e.SignUp("gone@example.com")
	orgExpect(t, orgRequest(t, e, loggedOut.AccessToken, "POST", "/auth/v1/logout?scope=local", nil), http.StatusNoContent, "logout")

	id := uuid.NewString()
	endpoints := []struct {
		pattern, method, path string
		body                  any
	}{
		{"GET /api/orgs/validate/{orgId}", "GET", "/api/orgs/validate/" + id, nil},
		{"GET /api/me", "GET", "/api/me", nil},
		{"POST /api/orgs", "POST", "/api/orgs", map[string]any{"name": "x"}},
		{"POST /api/orgs/{orgId}/switch", "POST", "/api/orgs/" + id + "/switch", nil},
		{"GET /api/org", "GET", "/api/org", nil},
		{"PATCH /api/org", "PATCH", "/api/org", map[string]any{"name": "x"}},
		{"DELETE /api/org", "DELETE", "/api/org?confirm=" + id, nil},
		{"GET /api/org/members", "GET", "/api/org/members", nil},
		{"PATCH /api/org/members/{userId}", "PATCH", "/api/org/members/" + id, map[string]any{"role": "admin"}},
		{"DELETE /api/org/members/{userId}", "DELETE", "/api/org/members/" + id, nil},
		{"POST /api/org/invitations", "POST", "/api/org/invitations", map[string]any{"email": "x@example.com", "role": "member"}},
		{"GET /api/org/invitations", "GET", "/api/org/invitations", nil},
		{"DELETE /api/org/invitations/{id}", "DELETE", "/api/org/invitations/" + id, nil},
		{"POST /api/invitations/accept", "POST", "/api/invitations/accept", map[string]any{"token": "x"}},
		{"GET /api/org/audit-log", "GET", "/api/org/audit-log", nil},
		{"GET /api/org/audit-log/export", "GET", "/api/org/audit-log/export", nil},
		{"GET /api/org/audit-log/verify", "GET", "/api/org/audit-log/verify", nil},
		{"GET /api/org/webhook-endpoints", "GET", "/api/org/webhook-endpoints", nil},
		{"POST /api/org/webhook-endpoints", "POST", "/api/org/webhook-endpoints", map[string]any{"provider": "vapi"}},
		{"POST /api/org/webhook-endpoints/{id}/rotate", "POST", "/api/org/webhook-endpoints/" + id + "/rotate", nil},
		{"DELETE /api/org/webhook-endpoints/{id}", "DELETE", "/api/org/webhook-endpoints/" + id, nil},
	}
	// The table covers every organization route the router has.
	var covered []string
	for _, ep := range endpoints {
		covered = append(covered, ep.pattern)
	}
	for _, p := range e.Handler.Routes() {
		_, path, _ := strings.Cut(p, " ")
		isOrgRoute := path == "/api/me" || strings.HasPrefix(path, "/api/org") || strings.HasPrefix(path, "/api/invitations")
		if isOrgRoute && !slices.Contains(covered, p) {
			t.Errorf("route %q is not in this test's table", p)
		}
	}
	for _, ep := range endpoints {
		t.Run(ep.pattern, func(t *testing.T) {
			r := orgRequest(t, e, "", ep.method, ep.path, ep.body)
			orgExpectError(t, r, http.StatusUnauthorized, "no_authorization", "no token")
			if got := r.Header.Get("WWW-Authenticate"); got != "Bearer" {
				t.Errorf("no token: WWW-Authenticate %q, want Bearer", got)
			}
			orgExpectError(t, orgRequest(t, e, "not.a.jwt", ep.method, ep.path, ep.body), http.StatusUnauthorized, "bad_jwt", "garbage token")
			orgExpectError(t, orgRequest(t, e, loggedOut.AccessToken, ep.method, ep.path, ep.body), http.StatusUnauthorized, "session_revoked", "logged-out token")
		})
	}
}

// ---- GET /api/orgs/validate/{orgId} ----

func TestOrgValidate(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	owner := e.SignUp("owner@example.com")
	orgA := owner.OrgID()
	other := e.SignUp("other@example.com")
	orgB := other.OrgID()
	admin := e.AddMember(owner, "admin@example.com", "admin")

	t.Run("own org", func(t *testing.T) {
		for _, c := range []struct {
			who  string
			s    *testenv.Session
			role string
		}{{"owner", owner, "owner"}, {"admin", admin, "admin"}} {
			r := orgRequest(t, e, c.s.AccessToken, "GET", "/api/orgs/validate/"+orgA, nil)
			orgExpect(t, r, http.StatusOK, c.who+" validates own org")
			m := r.JSON(t)
			orgKeys(t, "validate", m, "valid", "org", "role")
			if m["valid"] != true {
				t.Errorf("%s: valid = %v", c.who, m["valid"])
			}
			o := orgMap(t, m["org"], "org")
			orgKeys(t, "validate org", o, "id", "name")
			if o["id"] != orgA || o["name"] != "Org owner@example.com" {
				t.Errorf("%s: org = %v, want %s named %q", c.who, o, orgA, "Org owner@example.com")
			}
			if m["role"] != c.role {
				t.Errorf("%s: role = %v, want %s", c.who, m["role"], c.role)
			}
		}
	})

	t.Run("not a UUID", func(t *testing.T) {
		for _, bad := range []string{"not-a-uuid", "12345", strings.ReplaceAll(orgA, "-", ""), orgA[:35] + "g", orgA + "0"} {
			r := orgRequest(t, e, owner.AccessToken, "GET", "/api/orgs/validate/"+bad, nil)
			orgExpectError(t, r, http.StatusBadRequest, "validation_failed", "validate "+bad)
		}
	})

	t.Run("another org and an unknown org look alike", func(t *testing.T) {
		existing := orgRequest(t, e, owner.AccessToken, "GET", "/api/orgs/validate/"+orgB, nil)
		orgExpectError(t, existing, http.StatusForbidden, "forbidden", "validate another existing org")
		missing := orgRequest(t, e, owner.AccessToken, "GET", "/api/orgs/validate/"+uuid.NewString(), nil)
		orgExpectError(t, missing, http.StatusForbidden, "forbidden", "validate a non-existent org")
		if !bytes.Equal(existing.Body, missing.Body) {
			t.Errorf("existing and non-existent orgs answer differently:\n%s\n%s", existing.Body, missing.Body)
		}
		for _, secret := range []string{orgB, "Org other@example.com"} {
			if bytes.Contains(existing.Body, []byte(secret)) {
				t.Errorf("the 403 reveals %q: %s", secret, existing.Body)
			}
		}
		// Only the token chooses the org: naming B in the header or the query changes nothing.
		r := orgRequest(t, e, owner.AccessToken, "GET", "/api/orgs/validate/"+orgB+"?org_id="+orgB, nil, "X-Org-Id", orgB)
		orgExpectError(t, r, http.StatusForbidden, "forbidden", "validate B while naming B in header and query")
		r = orgRequest(t, e, owner.AccessToken, "GET", "/api/orgs/validate/"+orgA, nil, "X-Org-Id", orgB)
		orgExpect(t, r, http.StatusOK, "validate own org while naming B in the header")
		if o := orgMap(t, r.JSON(t)["org"], "org"); o["id"] != orgA {
			t.Errorf("X-Org-Id changed the org: %v", o)
		}
	})

	t.Run("after removal", func(t *testing.T) {
		orgExpect(t, orgRequest(t, e, owner.AccessToken, "DELETE", "/api/org/members/"+admin.User.ID, nil), http.StatusNoContent, "remove admin")
		// The contract's token checks come first: the membership the token was
		// issued for has changed, so the old token is refused as a whole with 401
		// session_revoked (refresh) rather than getting a 403 from this route.
		r := orgRequest(t, e, admin.AccessToken, "GET", "/api/orgs/validate/"+orgA, nil)
		orgExpectError(t, r, http.StatusUnauthorized, "session_revoked", "removed member's old token")
		// A refreshed token is no longer for org A, and validating A is then 403.
		s := orgRefresh(t, e, admin.RefreshToken)
		// It is for no org (never silently another one: see noorg_test.go), and
		// validating A is refused.
		if org, _ := orgOfToken(t, s.AccessToken); org != "" {
			t.Errorf("refreshed token after removal is for org %q, want none", org)
		}
		r = orgRequest(t, e, s.AccessToken, "GET", "/api/orgs/validate/"+orgA, nil)
		orgExpectError(t, r, http.StatusForbidden, "no_active_org", "validate the org one was removed from")
	})
}

// ---- GET /api/me ----

func TestOrgMe(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	owner := e.SignUp("owner@example.com")
	orgA := owner.OrgID()
	u := e.SignUp("user@example.com")
	own := u.OrgID()
	_, secret := e.Invite(owner, "user@example.com", "admin")
	orgExpect(t, orgAccept(t, e, u.AccessToken, secret), http.StatusOK, "accept")

	check := func(t *testing.T, tok, wantOrg, wantName, wantRole string) {
		t.Helper()
		r := orgRequest(t, e, tok, "GET", "/api/me", nil)
		orgExpect(t, r, http.StatusOK, "GET /api/me")
		m := r.JSON(t)
		for _, k := range []string{"user", "org", "role", "orgs"} {
			if _, ok := m[k]; !ok {
				t.Errorf("/api/me has no %s: %s", k, r.Body)
			}
		}
		user := orgMap(t, m["user"], "user")
		if user["id"] != u.User.ID || user["email"] != "user@example.com" {
			t.Errorf("user = %v, want %s user@example.com", user, u.User.ID)
		}
		o := orgMap(t, m["org"], "org")
		if o["id"] != wantOrg || o["name"] != wantName {
			t.Errorf("org = %v, want %s %q", o, wantOrg, wantName)
		}
		if m["role"] != wantRole {
			t.Errorf("role = %v, want %s", m["role"], wantRole)
		}
		list, ok := m["orgs"].([]any)
		if !ok {
			t.Fatalf("orgs = %v, want an array", m["orgs"])
		}
		got := map[string]string{}
		for _, v := range list {
			ref := orgMap(t, v, "orgs[]")
			for _, k := range []string{"id", "name", "role"} {
				if _, ok := ref[k]; !ok {
					t.Errorf("orgs[] entry without %s: %v", k, ref)
				}
			}
			id, _ := ref["id"].(string)
			name, _ := ref["name"].(string)
			role, _ := ref["role"].(string)
			got[id] = name + "/" + role
		}
		want := map[string]string{own: "Org user@example.com/owner", orgA: "Org owner@example.com/admin"}
		if len(list) != 2 || got[own] != want[own] || got[orgA] != want[orgA] {
			t.Errorf("orgs = %v, want %v", got, want)
		}
	}
	t.Run("token for own org", func(t *testing.T) {
		check(t, u.AccessToken, own, "Org user@example.com", "owner")
	})
	switched := e.Switch(u, orgA)
	t.Run("token for the joined org", func(t *testing.T) {
		check(t, switched.AccessToken, orgA, "Org owner@example.com", "admin")
	})
	t.Run("owner sees only their org", func(t *testing.T) {
		r := orgRequest(t, e, owner.AccessToken, "GET", "/api/me", nil)
		orgExpect(t, r, http.StatusOK, "owner /api/me")
		var me struct {
			Orgs []struct{ ID, Role string } `json:"orgs"`
		}
		r.Decode(t, &me)
		if len(me.Orgs) != 1 || me.Orgs[0].ID != orgA || me.Orgs[0].Role != "owner" {
			t.Errorf("owner's orgs = %+v", me.Orgs)
		}
	})
}

// ---- POST /api/orgs ----

func TestOrgCreate(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	u := e.SignUp("founder@example.com")
	home := u.OrgID()

	r := orgRequest(t, e, u.AccessToken, "POST", "/api/orgs", map[string]any{"name": "  Second Org  "})
	orgExpect(t, r, http.StatusCreated, "create org")
	created := r.JSON(t)
	newOrg, _ := created["id"].(string)
	if !orgIsUUID(newOrg) {
		t.Fatalf("created org id %v is not a UUID: %s", created["id"], r.Body)
	}
	if newOrg == home {
		t.Fatal("the created org is the caller's existing org")
	}
	if created["name"] != "Second Org" {
		t.Errorf("name = %v, want the trimmed %q", created["name"], "Second Org")
	}
	orgUTC(t, "created_at", created["created_at"])

	// Creating an org does not move the caller's current token.
	orgWorks(t, e, u.AccessToken, home, "token after creating an org")

	t.Run("caller is the owner", func(t *testing.T) {
		r := orgRequest(t, e, u.AccessToken, "POST", "/api/orgs/"+newOrg+"/switch", nil)
		orgExpect(t, r, http.StatusOK, "switch to the new org")
		var s testenv.Session
		r.Decode(t, &s)
		if org, role := orgOfToken(t, s.AccessToken); org != newOrg || role != "owner" {
			t.Errorf("token for the new org: org %q role %q, want %s owner", org, role, newOrg)
		}
		r = orgRequest(t, e, s.AccessToken, "GET", "/api/org/members", nil)
		orgExpect(t, r, http.StatusOK, "members of the new org")
		members := orgArray(t, r, "members")
		if len(members) != 1 || members[0]["user_id"] != u.User.ID || members[0]["role"] != "owner" || members[0]["email"] != "founder@example.com" {
			t.Errorf("members of the new org = %v, want just the founder as owner", members)
		}
		r = orgRequest(t, e, u.AccessToken, "GET", "/api/me", nil)
		orgExpect(t, r, http.StatusOK, "/api/me")
		found := false
		for _, v := range r.JSON(t)["orgs"].([]any) {
			if o := orgMap(t, v, "orgs[]"); o["id"] == newOrg {
				found = o["role"] == "owner" && o["name"] == "Second Org"
			}
		}
		if !found {
			t.Errorf("/api/me does not list the new org as owner: %s", r.Body)
		}
		if en := orgAuditOf(orgAuditAll(t, e, s.AccessToken), "org_created"); len(en) != 1 || en[0]["actor_id"] != u.User.ID {
			t.Errorf("org_created entries of the new org: %v", en)
		}
	})

	t.Run("name lengths count characters", func(t *testing.T) {
		for _, name := range []string{strings.Repeat("a", 200), strings.Repeat("é", 200)} {
			r := orgRequest(t, e, u.AccessToken, "POST", "/api/orgs", map[string]any{"name": name})
			orgExpect(t, r, http.StatusCreated, fmt.Sprintf("create with a %d-character name", len([]rune(name))))
			if r.JSON(t)["name"] != name {
				t.Errorf("200-character name not kept")
			}
		}
	})

	t.Run("invalid", func(t *testing.T) {
		for _, c := range []struct {
			name string
			body any
		}{
			{"empty name", map[string]any{"name": ""}},
			{"whitespace name", map[string]any{"name": " \t\n "}},
			{"missing name", map[string]any{}},
			{"201 characters", map[string]any{"name": strings.Repeat("a", 201)}},
			{"201 multibyte characters", map[string]any{"name": strings.Repeat("é", 201)}},
			{"bad JSON", `{"name": `},
			{"not an object", `["x"]`},
			{"name not a string", `{"name": 5}`},
		} {
			r := orgRequest(t, e, u.AccessToken, "POST", "/api/orgs", c.body)
			orgExpectError(t, r, http.StatusBadRequest, "validation_failed", c.name)
		}
		big := orgRequest(t, e, u.AccessToken, "POST", "/api/orgs", map[string]any{"name": strings.Repeat("a", 1<<20)})
		orgExpectError(t, big, http.StatusRequestEntityTooLarge, "request_entity_too_large", "body over 1 MiB")
		r := orgRequest(t, e, u.AccessToken, "GET", "/api/me", nil)
		if n := len(r.JSON(t)["orgs"].([]any)); n != 4 {
			t.Errorf("caller has %d orgs after the rejected creations, want 4", n)
		}
	})
}

// ---- POST /api/orgs/{orgId}/switch ----

func TestOrgSwitch(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	owner := e.SignUp("owner@example.com")
	orgA := owner.OrgID()
	stranger := e.SignUp("stranger@example.com")
	u := e.SignUp("user@example.com")
	home := u.OrgID()
	_, secret := e.Invite(owner, "user@example.com", "admin")
	orgExpect(t, orgAccept(t, e, u.AccessToken, secret), http.StatusOK, "accept")

	r := orgRequest(t, e, u.AccessToken, "POST", "/api/orgs/"+orgA+"/switch", nil)
	orgExpect(t, r, http.StatusOK, "switch")
	m := r.JSON(t)
	for _, k := range []string{"access_token", "token_type", "expires_in", "expires_at", "refresh_token", "user"} {
		if _, ok := m[k]; !ok {
			t.Errorf("switch answer has no %s: %s", k, r.Body)
		}
	}
	if m["token_type"] != "bearer" {
		t.Errorf("token_type = %v", m["token_type"])
	}
	if n, _ := m["expires_in"].(float64); n <= 0 {
		t.Errorf("expires_in = %v", m["expires_in"])
	}
	var sw testenv.Session
	r.Decode(t, &sw)
	if sw.User.ID != u.User.ID || sw.User.Email != "user@example.com" {
		t.Errorf("switch session user = %s %s", sw.User.ID, sw.User.Email)
	}
	if sw.User.AppMetadata["org_id"] != orgA || sw.User.AppMetadata["org_role"] != "admin" {
		t.Errorf("session user app_metadata = %v, want org %s admin", sw.User.AppMetadata, orgA)
	}
	if sw.RefreshToken == u.RefreshToken || sw.AccessToken == u.AccessToken {
		t.Error("switch reused the old session's tokens")
	}
	c := orgClaims(t, sw.AccessToken)
	if c["sub"] != u.User.ID {
		t.Errorf("sub = %v", c["sub"])
	}
	if org, role := orgOfToken(t, sw.AccessToken); org != orgA || role != "admin" {
		t.Errorf("switched token: org_id %q org_role %q, want %s admin", org, role, orgA)
	}

	t.Run("new token works for the target org", func(t *testing.T) {
		r := orgRequest(t, e, sw.AccessToken, "GET", "/api/org", nil)
		orgExpect(t, r, http.StatusOK, "GET /api/org with the switched token")
		if o := r.JSON(t); o["id"] != orgA || o["name"] != "Org owner@example.com" {
			t.Errorf("GET /api/org = %v, want org A", o)
		}
		// Its refresh token stays in org A.
		s := orgRefresh(t, e, sw.RefreshToken)
		if org, role := orgOfToken(t, s.AccessToken); org != orgA || role != "admin" {
			t.Errorf("refreshed switched token: %q %q", org, role)
		}
	})
	t.Run("old token still works for the old org", func(t *testing.T) {
		orgWorks(t, e, u.AccessToken, home, "old token")
		if org, role := orgOfToken(t, u.AccessToken); org != home || role != "owner" {
			t.Errorf("old token: %q %q", org, role)
		}
		// The old session stays in its org when refreshed, too.
		s := orgRefresh(t, e, u.RefreshToken)
		if org, role := orgOfToken(t, s.AccessToken); org != home || role != "owner" {
			t.Errorf("refreshed old session: %q %q, want %s owner", org, role, home)
		}
	})
	t.Run("errors", func(t *testing.T) {
		orgExpectError(t, orgRequest(t, e, u.AccessToken, "POST", "/api/orgs/"+stranger.OrgID()+"/switch", nil),
			http.StatusForbidden, "forbidden", "switch to an org one is not a member of")
		orgExpectError(t, orgRequest(t, e, u.AccessToken, "POST", "/api/orgs/"+uuid.NewString()+"/switch", nil),
			http.StatusForbidden, "forbidden", "switch to a non-existent org")
		orgExpectError(t, orgRequest(t, e, u.AccessToken, "POST", "/api/orgs/not-a-uuid/switch", nil),
			http.StatusBadRequest, "validation_failed", "switch to a non-UUID")
		orgExpectError(t, orgRequest(t, e, stranger.AccessToken, "POST", "/api/orgs/"+orgA+"/switch", nil),
			http.StatusForbidden, "forbidden", "stranger switches to org A")
	})
	t.Run("audited in the target org", func(t *testing.T) {
		en := orgAuditOf(orgAuditAll(t, e, owner.AccessToken), "org_switched")
		if len(en) != 1 {
			t.Fatalf("org_switched entries in org A: %d, want 1", len(en))
		}
		if en[0]["actor_id"] != u.User.ID || en[0]["target_id"] != orgA || en[0]["target_type"] != "org" {
			t.Errorf("org_switched entry = %v", en[0])
		}
		if d := orgMap(t, en[0]["details"], "details"); d["from"] != home {
			t.Errorf("org_switched details = %v, want from %s", d, home)
		}
		// Nothing was logged in the org the stranger tried to reach.
		if en := orgAuditOf(orgAuditAll(t, e, stranger.AccessToken), "org_switched"); len(en) != 0 {
			t.Errorf("stranger's org has org_switched entries: %v", en)
		}
	})
}

// ---- GET and PATCH /api/org ----

func TestOrgGetAndRename(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	owner := e.SignUp("owner@example.com")
	orgA := owner.OrgID()
	admin := e.AddMember(owner, "admin@example.com", "admin")
	member := e.AddMember(owner, "member@example.com", "member")

	t.Run("get", func(t *testing.T) {
		for _, s := range []*testenv.Session{owner, admin, member} {
			r := orgRequest(t, e, s.AccessToken, "GET", "/api/org", nil)
			orgExpect(t, r, http.StatusOK, "GET /api/org as "+s.User.Email)
			o := r.JSON(t)
			orgKeys(t, "org", o, "id", "name", "require_mfa", "created_at", "updated_at")
			if o["id"] != orgA || o["name"] != "Org owner@example.com" {
				t.Errorf("GET /api/org = %v", o)
			}
			orgUTC(t, "created_at", o["created_at"])
			orgUTC(t, "updated_at", o["updated_at"])
		}
	})

	t.Run("rename", func(t *testing.T) {
		for _, c := range []struct {
			s    *testenv.Session
			name string
		}{{owner, "Renamed by owner"}, {admin, "  Renamed by admin "}} {
			r := orgRequest(t, e, c.s.AccessToken, "PATCH", "/api/org", map[string]any{"name": c.name})
			orgExpect(t, r, http.StatusOK, "rename as "+c.s.User.Email)
			if o := r.JSON(t); o["id"] != orgA || o["name"] != strings.TrimSpace(c.name) {
				t.Errorf("rename answer = %v", o)
			}
		}
		r := orgRequest(t, e, member.AccessToken, "GET", "/api/org", nil)
		if n := r.JSON(t)["name"]; n != "Renamed by admin" {
			t.Errorf("name after renames = %v", n)
		}
	})

	t.Run("only the token chooses the org", func(t *testing.T) {
		other := orgSignUp(t, e, "other@example.com")
		r := orgRequest(t, e, member.AccessToken, "GET", "/api/org?org_id="+other.OrgID(), nil, "X-Org-Id", other.OrgID())
		orgExpect(t, r, http.StatusOK, "GET /api/org naming another org")
		if id := r.JSON(t)["id"]; id != orgA {
			t.Errorf("GET /api/org naming another org answered %v", id)
		}
		r = orgRequest(t, e, admin.AccessToken, "PATCH", "/api/org?org_id="+other.OrgID(),
			map[string]any{"name": "Renamed by admin", "org_id": other.OrgID(), "id": other.OrgID()}, "X-Org-Id", other.OrgID())
		orgExpect(t, r, http.StatusOK, "PATCH /api/org naming another org")
		if id := r.JSON(t)["id"]; id != orgA {
			t.Errorf("PATCH /api/org naming another org renamed %v", id)
		}
		if n := orgRequest(t, e, other.AccessToken, "GET", "/api/org", nil).JSON(t)["name"]; n != "Org other@example.com" {
			t.Errorf("the other org was renamed to %v", n)
		}
	})

	t.Run("errors", func(t *testing.T) {
		orgExpectError(t, orgRequest(t, e, member.AccessToken, "PATCH", "/api/org", map[string]any{"name": "Member's org"}),
			http.StatusForbidden, "forbidden", "member renames")
		for _, c := range []struct {
			name string
			body any
		}{
			{"empty", map[string]any{"name": ""}},
			{"whitespace", map[string]any{"name": "   "}},
			{"201 characters", map[string]any{"name": strings.Repeat("x", 201)}},
			{"bad JSON", "{"},
			{"no body", nil},
		} {
			orgExpectError(t, orgRequest(t, e, admin.AccessToken, "PATCH", "/api/org", c.body), http.StatusBadRequest, "validation_failed", c.name)
		}
		if n := orgRequest(t, e, owner.AccessToken, "GET", "/api/org", nil).JSON(t)["name"]; n != "Renamed by admin" {
			t.Errorf("a refused rename changed the name to %v", n)
		}
	})

	t.Run("audited", func(t *testing.T) {
		en := orgAuditOf(orgAuditAll(t, e, owner.AccessToken), "org_renamed")
		if len(en) != 3 {
			t.Fatalf("org_renamed entries: %d, want 3: %v", len(en), en)
		}
		want := []struct{ actor, from, to string }{
			{admin.User.ID, "Renamed by admin", "Renamed by admin"},
			{admin.User.ID, "Renamed by owner", "Renamed by admin"},
			{owner.User.ID, "Org owner@example.com", "Renamed by owner"},
		}
		for i, w := range want {
			d := orgMap(t, en[i]["details"], "details")
			if en[i]["actor_id"] != w.actor || d["from"] != w.from || d["to"] != w.to || en[i]["target_id"] != orgA {
				t.Errorf("org_renamed #%d = %v, want actor %s from %q to %q", i, en[i], w.actor, w.from, w.to)
			}
		}
	})
}

// ---- GET /api/org/members ----

func TestOrgMembers(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	owner := e.SignUp("owner@example.com")
	admin := e.AddMember(owner, "admin@example.com", "admin")
	member := e.AddMember(owner, "member@example.com", "member")
	outsider := e.SignUp("outsider@example.com")

	want := map[string][2]string{
		owner.User.ID:  {"owner@example.com", "owner"},
		admin.User.ID:  {"admin@example.com", "admin"},
		member.User.ID: {"member@example.com", "member"},
	}
	for _, s := range []*testenv.Session{owner, admin, member} {
		r := orgRequest(t, e, s.AccessToken, "GET", "/api/org/members", nil)
		orgExpect(t, r, http.StatusOK, "members as "+s.User.Email)
		list := orgArray(t, r, "members")
		if len(list) != len(want) {
			t.Errorf("%d members, want %d: %s", len(list), len(want), r.Body)
		}
		for _, m := range list {
			orgKeys(t, "member", m, "user_id", "email", "role", "joined_at")
			id, _ := m["user_id"].(string)
			w, ok := want[id]
			if !ok {
				t.Errorf("unexpected member %v", m)
				continue
			}
			if m["email"] != w[0] || m["role"] != w[1] {
				t.Errorf("member %s = %v, want %v", id, m, w)
			}
			if j := orgUTC(t, "joined_at", m["joined_at"]); time.Since(j) > time.Hour || time.Until(j) > time.Minute {
				t.Errorf("joined_at %v is not about now", j)
			}
		}
	}
	// The outsider's own org lists only the outsider.
	if roles := orgRoles(t, e, outsider.AccessToken); len(roles) != 1 || roles[outsider.User.ID] != "owner" {
		t.Errorf("outsider's org members = %v", roles)
	}
}

// ---- PATCH /api/org/members/{userId} ----

func TestOrgChangeRole(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	owner := e.SignUp("owner@example.com")
	orgA := owner.OrgID()
	admin := e.AddMember(owner, "admin@example.com", "admin")
	m1 := e.AddMember(owner, "m1@example.com", "member")
	m2 := e.AddMember(owner, "m2@example.com", "member")
	outsider := e.SignUp("outsider@example.com")

	patch := func(t *testing.T, tok, userID string, body any) *testenv.Response {
		t.Helper()
		return orgRequest(t, e, tok, "PATCH", "/api/org/members/"+userID, body)
	}
	role := func(r string) map[string]any { return map[string]any{"role": r} }
	initial := map[string]string{owner.User.ID: "owner", admin.User.ID: "admin", m1.User.ID: "member", m2.User.ID: "member"}

	t.Run("invalid input", func(t *testing.T) {
		for _, c := range []struct {
			name, user string
			body       any
			status     int
			code       string
		}{
			{"non-UUID user", "not-a-uuid", role("admin"), 400, "validation_failed"},
			{"unknown role", m1.User.ID, role("superuser"), 400, "validation_failed"},
			{"empty role", m1.User.ID, role(""), 400, "validation_failed"},
			{"role in capitals", m1.User.ID, role("Admin"), 400, "validation_failed"},
			{"bad JSON", m1.User.ID, `{"role":`, 400, "validation_failed"},
			{"unknown user", uuid.NewString(), role("admin"), 404, "not_found"},
			{"another org's user", outsider.User.ID, role("admin"), 404, "not_found"},
		} {
			orgExpectError(t, patch(t, owner.AccessToken, c.user, c.body), c.status, c.code, c.name)
		}
	})

	t.Run("not allowed", func(t *testing.T) {
		for _, c := range []struct {
			name string
			as   *testenv.Session
			user string
			role string
		}{
			{"member promotes a member", m1, m2.User.ID, "admin"},
			{"member promotes self", m1, m1.User.ID, "admin"},
			{"member demotes the admin", m1, admin.User.ID, "member"},
			{"admin demotes the owner", admin, owner.User.ID, "member"},
			{"admin makes the owner an admin", admin, owner.User.ID, "admin"},
			{"admin promotes a member to owner", admin, m2.User.ID, "owner"},
			{"admin promotes self to owner", admin, admin.User.ID, "owner"},
		} {
			orgExpectError(t, patch(t, c.as.AccessToken, c.user, role(c.role)), http.StatusForbidden, "forbidden", c.name)
		}
		if got := orgRoles(t, e, owner.AccessToken); !orgEqualRoles(got, initial) {
			t.Errorf("refused changes changed roles: %v", got)
		}
		// Nobody's role changed, so every token still works.
		for _, s := range []*testenv.Session{owner, admin, m1, m2} {
			orgWorks(t, e, s.AccessToken, orgA, s.User.Email)
		}
	})

	orgExpectError(t, orgRequest(t, e, m1.AccessToken, "GET", "/api/org/invitations", nil), http.StatusForbidden, "forbidden", "member lists invitations")

	t.Run("admin promotes a member", func(t *testing.T) {
		r := patch(t, admin.AccessToken, m1.User.ID, role("admin"))
		orgExpect(t, r, http.StatusOK, "promote m1")
		m := r.JSON(t)
		orgKeys(t, "changed member", m, "user_id", "email", "role", "joined_at")
		if m["user_id"] != m1.User.ID || m["role"] != "admin" || m["email"] != "m1@example.com" {
			t.Errorf("promote answer = %v", m)
		}
		// m1's token was issued for the member role: refused on the next request.
		orgRevoked(t, e, m1.AccessToken, "promoted member's old token")
		// Tokens of others are untouched.
		orgWorks(t, e, m2.AccessToken, orgA, "m2 after m1's promotion")
		orgWorks(t, e, admin.AccessToken, orgA, "admin after m1's promotion")
		// A refreshed token carries the new role, and the role is in force.
		s := orgRefresh(t, e, m1.RefreshToken)
		if org, r := orgOfToken(t, s.AccessToken); org != orgA || r != "admin" {
			t.Errorf("m1's refreshed token: %q %q, want %s admin", org, r, orgA)
		}
		orgExpect(t, orgRequest(t, e, s.AccessToken, "GET", "/api/org/invitations", nil), http.StatusOK, "m1 as admin lists invitations")
		m1 = s
	})

	t.Run("unchanged role keeps the token", func(t *testing.T) {
		r := patch(t, owner.AccessToken, owner.User.ID, role("owner"))
		orgExpect(t, r, http.StatusOK, "owner sets own role to owner")
		if got := r.JSON(t)["role"]; got != "owner" {
			t.Errorf("role = %v", got)
		}
		// Nothing changed, so nothing is revoked.
		orgWorks(t, e, owner.AccessToken, orgA, "owner after a no-op role change")
	})

	t.Run("last owner cannot be demoted", func(t *testing.T) {
		for _, r := range []string{"admin", "member"} {
			orgExpectError(t, patch(t, owner.AccessToken, owner.User.ID, role(r)), http.StatusConflict, "conflict", "sole owner demotes self to "+r)
		}
		if got := orgRoles(t, e, owner.AccessToken)[owner.User.ID]; got != "owner" {
			t.Errorf("sole owner's role = %s after refused demotion", got)
		}
		orgWorks(t, e, owner.AccessToken, orgA, "owner after refused demotion")
	})

	t.Run("owner makes an owner, then can be demoted", func(t *testing.T) {
		r := patch(t, owner.AccessToken, m2.User.ID, role("owner"))
		orgExpect(t, r, http.StatusOK, "owner makes m2 owner")
		if got := r.JSON(t)["role"]; got != "owner" {
			t.Errorf("role = %v", got)
		}
		orgRevoked(t, e, m2.AccessToken, "new owner's old token")
		m2 = orgRefresh(t, e, m2.RefreshToken)
		if _, r := orgOfToken(t, m2.AccessToken); r != "owner" {
			t.Errorf("m2's refreshed role = %q", r)
		}

		r = patch(t, owner.AccessToken, owner.User.ID, role("admin"))
		orgExpect(t, r, http.StatusOK, "one of two owners steps down")
		orgRevoked(t, e, owner.AccessToken, "former owner's old token")
		s := orgRefresh(t, e, owner.RefreshToken)
		if _, r := orgOfToken(t, s.AccessToken); r != "admin" {
			t.Errorf("former owner's refreshed role = %q", r)
		}
		// m2 is now the last owner.
		orgExpectError(t, patch(t, m2.AccessToken, m2.User.ID, role("member")), http.StatusConflict, "conflict", "new sole owner demotes self")
		// An owner manages owners: m2 may promote the former owner back.
		orgExpect(t, patch(t, m2.AccessToken, owner.User.ID, role("owner")), http.StatusOK, "owner makes an owner")
		want := map[string]string{owner.User.ID: "owner", admin.User.ID: "admin", m1.User.ID: "admin", m2.User.ID: "owner"}
		if got := orgRoles(t, e, m2.AccessToken); !orgEqualRoles(got, want) {
			t.Errorf("roles = %v, want %v", got, want)
		}
	})

	t.Run("audited", func(t *testing.T) {
		en := orgAuditOf(orgAuditAll(t, e, m2.AccessToken), "member_role_changed")
		if len(en) != 4 {
			t.Errorf("member_role_changed entries: %d, want 4: %v", len(en), en)
		}
		found := false
		for _, x := range en {
			d := orgMap(t, x["details"], "details")
			if x["target_id"] == m1.User.ID && x["actor_id"] == admin.User.ID && x["target_type"] == "user" && d["from"] == "member" && d["to"] == "admin" {
				found = true
			}
		}
		if !found {
			t.Errorf("no member_role_changed entry for m1 member→admin by the admin: %v", en)
		}
	})
}

func orgEqualRoles(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// ---- DELETE /api/org/members/{userId} ----

func TestOrgRemoveMember(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	owner := e.SignUp("owner@example.com")
	orgA := owner.OrgID()
	admin := e.AddMember(owner, "admin@example.com", "admin")
	m1 := e.AddMember(owner, "m1@example.com", "member")
	m2 := e.AddMember(owner, "m2@example.com", "member")
	m3 := e.AddMember(owner, "m3@example.com", "member")
	outsider := e.SignUp("outsider@example.com")

	del := func(t *testing.T, tok, userID string) *testenv.Response {
		t.Helper()
		return orgRequest(t, e, tok, "DELETE", "/api/org/members/"+userID, nil)
	}
	initial := map[string]string{owner.User.ID: "owner", admin.User.ID: "admin", m1.User.ID: "member", m2.User.ID: "member", m3.User.ID: "member"}

	t.Run("refused", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			as     *testenv.Session
			user   string
			status int
			code   string
		}{
			{"non-UUID", owner, "nope", 400, "validation_failed"},
			{"unknown user", owner, uuid.NewString(), 404, "not_found"},
			{"another org's user", owner, outsider.User.ID, 404, "not_found"},
			{"member removes a member", m1, m2.User.ID, 403, "forbidden"},
			{"member removes the admin", m1, admin.User.ID, 403, "forbidden"},
			{"member removes the owner", m1, owner.User.ID, 403, "forbidden"},
			{"admin removes the owner", admin, owner.User.ID, 403, "forbidden"},
			// Only an owner may remove an owner, so with a single owner the
			// only way to "remove" them is their own leaving.
			{"last owner leaves", owner, owner.User.ID, 409, "conflict"},
		} {
			orgExpectError(t, del(t, c.as.AccessToken, c.user), c.status, c.code, c.name)
		}
		if got := orgRoles(t, e, owner.AccessToken); !orgEqualRoles(got, initial) {
			t.Errorf("refused removals changed the members: %v", got)
		}
	})

	t.Run("admin removes a member", func(t *testing.T) {
		r := del(t, admin.AccessToken, m1.User.ID)
		orgExpect(t, r, http.StatusNoContent, "admin removes m1")
		if len(r.Body) != 0 {
			t.Errorf("204 with a body: %s", r.Body)
		}
		orgRevoked(t, e, m1.AccessToken, "removed member's token")
		if _, ok := orgRoles(t, e, owner.AccessToken)[m1.User.ID]; ok {
			t.Error("m1 is still listed")
		}
		orgExpectError(t, del(t, admin.AccessToken, m1.User.ID), http.StatusNotFound, "not_found", "remove m1 again")
		orgWorks(t, e, m2.AccessToken, orgA, "other member after m1's removal")
	})

	t.Run("member leaves", func(t *testing.T) {
		orgExpect(t, del(t, m2.AccessToken, m2.User.ID), http.StatusNoContent, "m2 leaves")
		orgRevoked(t, e, m2.AccessToken, "token of a member who left")
		// Their refreshed session is for their own org, not A.
		s := orgRefresh(t, e, m2.RefreshToken)
		if org, _ := orgOfToken(t, s.AccessToken); org == orgA {
			t.Error("refreshed token of a member who left is still for org A")
		}
	})

	t.Run("owner removed once a second owner exists", func(t *testing.T) {
		orgExpect(t, orgRequest(t, e, owner.AccessToken, "PATCH", "/api/org/members/"+admin.User.ID, map[string]any{"role": "owner"}),
			http.StatusOK, "owner makes the admin an owner")
		admin = orgRefresh(t, e, admin.RefreshToken)
		orgExpect(t, del(t, admin.AccessToken, owner.User.ID), http.StatusNoContent, "second owner removes the first")
		orgRevoked(t, e, owner.AccessToken, "removed owner's token")
		orgExpectError(t, del(t, admin.AccessToken, admin.User.ID), http.StatusConflict, "conflict", "now-last owner leaves")
		want := map[string]string{admin.User.ID: "owner", m3.User.ID: "member"}
		if got := orgRoles(t, e, admin.AccessToken); !orgEqualRoles(got, want) {
			t.Errorf("members = %v, want %v", got, want)
		}
		orgWorks(t, e, m3.AccessToken, orgA, "untouched member")
	})

	t.Run("audited", func(t *testing.T) {
		en := orgAuditOf(orgAuditAll(t, e, admin.AccessToken), "member_removed")
		type want struct {
			actor string
			left  bool
			role  string
		}
		wants := map[string]want{
			m1.User.ID:    {admin.User.ID, false, "member"},
			m2.User.ID:    {m2.User.ID, true, "member"},
			owner.User.ID: {admin.User.ID, false, "owner"},
		}
		if len(en) != len(wants) {
			t.Errorf("member_removed entries: %d, want %d", len(en), len(wants))
		}
		for _, x := range en {
			id, _ := x["target_id"].(string)
			w, ok := wants[id]
			d := orgMap(t, x["details"], "details")
			if !ok || x["actor_id"] != w.actor || d["left"] != w.left || d["role"] != w.role || x["target_type"] != "user" {
				t.Errorf("member_removed entry %v, want %+v", x, w)
			}
		}
	})
}

// ---- invitations: create, list, revoke ----

func TestOrgInvitations(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	owner := e.SignUp("owner@example.com")
	orgA := owner.OrgID()
	admin := e.AddMember(owner, "admin@example.com", "admin")
	member := e.AddMember(owner, "member@example.com", "member")
	other := e.SignUp("other@example.com")

	invite := func(t *testing.T, tok string, body any) *testenv.Response {
		t.Helper()
		return orgRequest(t, e, tok, "POST", "/api/org/invitations", body)
	}
	list := func(t *testing.T, tok string) ([]map[string]any, *testenv.Response) {
		t.Helper()
		r := orgRequest(t, e, tok, "GET", "/api/org/invitations", nil)
		orgExpect(t, r, http.StatusOK, "list invitations")
		return orgArray(t, r, "invitations"), r
	}

	var firstID, firstSecret string
	t.Run("create", func(t *testing.T) {
		before := time.Now()
		mailsBefore := map[string]int{}
		for _, addr := range []string{"admin@example.com", "owner@example.com", "member@example.com"} {
			mailsBefore[addr] = e.Mail.Count(addr)
		}
		r := invite(t, admin.AccessToken, map[string]any{"email": "  New.Person@Example.COM ", "role": "member"})
		orgExpect(t, r, http.StatusCreated, "admin invites")
		inv := r.JSON(t)
		for _, k := range []string{"id", "email", "role", "expires_at", "accept_url"} {
			if _, ok := inv[k]; !ok {
				t.Errorf("invitation has no %s: %s", k, r.Body)
			}
		}
		for k := range inv {
			if !slices.Contains([]string{"id", "email", "role", "created_at", "expires_at", "accept_url"}, k) {
				t.Errorf("invitation has an unexpected member %q: %s", k, r.Body)
			}
		}
		firstID, _ = inv["id"].(string)
		if !orgIsUUID(firstID) {
			t.Errorf("id %v is not a UUID", inv["id"])
		}
		if inv["email"] != "new.person@example.com" || inv["role"] != "member" {
			t.Errorf("invitation = %v", inv)
		}
		exp := orgUTC(t, "expires_at", inv["expires_at"])
		if d := exp.Sub(before.Add(7 * 24 * time.Hour)); d < -time.Minute || d > time.Minute {
			t.Errorf("expires_at %v is not 7 days ahead (off by %v)", exp, d)
		}
		acceptURL, _ := inv["accept_url"].(string)
		if !strings.HasPrefix(acceptURL, e.URL+"/") {
			t.Errorf("accept_url %q is not under the public URL %s", acceptURL, e.URL)
		}
		firstSecret = orgSecret(t, acceptURL)
		if len(firstSecret) < 32 {
			t.Errorf("secret %q is short", firstSecret)
		}
		if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("the answer carrying the secret may be cached: Cache-Control %q", cc)
		}
		mail := e.Mail.WaitFor(t, "new.person@example.com")
		if !strings.Contains(mail.Body, acceptURL) {
			t.Errorf("the invitation mail does not carry the accept_url %s:\n%s", acceptURL, mail.Body)
		}
		if n := e.Mail.Count("new.person@example.com"); n != 1 {
			t.Errorf("%d mails to the invitee, want 1", n)
		}
		for addr, n := range mailsBefore {
			if got := e.Mail.Count(addr); got != n {
				t.Errorf("the invitation also mailed %s", addr)
			}
		}
	})

	t.Run("list hides the secret", func(t *testing.T) {
		for _, s := range []*testenv.Session{owner, admin} {
			items, r := list(t, s.AccessToken)
			if len(items) != 1 {
				t.Fatalf("%d invitations listed, want 1: %s", len(items), r.Body)
			}
			orgKeys(t, "listed invitation", items[0], "id", "email", "role", "created_at", "expires_at")
			if items[0]["id"] != firstID || items[0]["email"] != "new.person@example.com" || items[0]["role"] != "member" {
				t.Errorf("listed invitation = %v", items[0])
			}
			orgUTC(t, "created_at", items[0]["created_at"])
			orgUTC(t, "expires_at", items[0]["expires_at"])
			if bytes.Contains(r.Body, []byte(firstSecret)) || bytes.Contains(r.Body, []byte("token=")) {
				t.Errorf("the list reveals the secret: %s", r.Body)
			}
		}
		// Other orgs see nothing of it; an empty list is [], not null.
		if items, r := list(t, other.AccessToken); len(items) != 0 || strings.TrimSpace(string(r.Body)) != "[]" {
			t.Errorf("another org lists %s", r.Body)
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			as     *testenv.Session
			body   any
			status int
			code   string
		}{
			{"empty email", owner, map[string]any{"email": "", "role": "member"}, 400, "validation_failed"},
			{"not an email", owner, map[string]any{"email": "not-an-email", "role": "member"}, 400, "validation_failed"},
			{"no domain", owner, map[string]any{"email": "someone@", "role": "member"}, 400, "validation_failed"},
			{"no local part", owner, map[string]any{"email": "@example.com", "role": "member"}, 400, "validation_failed"},
			{"two addresses", owner, map[string]any{"email": "a@example.com, b@example.com", "role": "member"}, 400, "validation_failed"},
			{"unknown role", owner, map[string]any{"email": "x@example.com", "role": "superuser"}, 400, "validation_failed"},
			{"bad JSON", owner, `{"email": "x@example.com"`, 400, "validation_failed"},
			{"member invites", member, map[string]any{"email": "x@example.com", "role": "member"}, 403, "forbidden"},
			{"admin invites an owner", admin, map[string]any{"email": "x@example.com", "role": "owner"}, 403, "forbidden"},
		} {
			orgExpectError(t, invite(t, c.as.AccessToken, c.body), c.status, c.code, c.name)
		}
		orgExpectError(t, orgRequest(t, e, member.AccessToken, "GET", "/api/org/invitations", nil), 403, "forbidden", "member lists")
		orgExpectError(t, orgRequest(t, e, member.AccessToken, "DELETE", "/api/org/invitations/"+firstID, nil), 403, "forbidden", "member revokes")
		if items, _ := list(t, owner.AccessToken); len(items) != 1 {
			t.Errorf("refused invitations were created: %v", items)
		}
		if n := e.Mail.Count("x@example.com"); n != 0 {
			t.Errorf("refused invitations sent %d mails", n)
		}
	})

	t.Run("owner invites an owner", func(t *testing.T) {
		r := invite(t, owner.AccessToken, map[string]any{"email": "co-owner@example.com", "role": "owner"})
		orgExpect(t, r, http.StatusCreated, "owner invites an owner")
		if r.JSON(t)["role"] != "owner" {
			t.Errorf("role = %v", r.JSON(t)["role"])
		}
	})

	t.Run("re-inviting replaces the open invitation", func(t *testing.T) {
		id1, secret1 := orgInvite(t, e, owner, "again@example.com", "member")
		r := invite(t, admin.AccessToken, map[string]any{"email": "again@example.com", "role": "admin"})
		orgExpect(t, r, http.StatusCreated, "re-invite")
		inv := r.JSON(t)
		id2, _ := inv["id"].(string)
		secret2 := orgSecret(t, inv["accept_url"].(string))
		if id2 == id1 || secret2 == secret1 {
			t.Error("re-invitation reused the id or the secret")
		}
		items, _ := list(t, owner.AccessToken)
		var again []map[string]any
		for _, it := range items {
			if it["email"] == "again@example.com" {
				again = append(again, it)
			}
		}
		if len(again) != 1 || again[0]["id"] != id2 || again[0]["role"] != "admin" {
			t.Errorf("open invitations of again@example.com = %v, want just %s as admin", again, id2)
		}
		u := orgSignUp(t, e, "again@example.com")
		orgExpectError(t, orgAccept(t, e, u.AccessToken, secret1), http.StatusNotFound, "not_found", "accept the replaced invitation")
		r = orgAccept(t, e, u.AccessToken, secret2)
		orgExpect(t, r, http.StatusOK, "accept the new invitation")
		s := orgSwitch(t, e, u, orgA)
		if _, role := orgOfToken(t, s.AccessToken); role != "admin" {
			t.Errorf("joined as %q, want admin", role)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		id, secret := orgInvite(t, e, owner, "revoke@example.com", "member")
		// Another org cannot see or revoke it.
		orgExpectError(t, orgRequest(t, e, other.AccessToken, "DELETE", "/api/org/invitations/"+id, nil), 404, "not_found", "another org revokes")
		r := orgRequest(t, e, admin.AccessToken, "DELETE", "/api/org/invitations/"+id, nil)
		orgExpect(t, r, http.StatusNoContent, "admin revokes")
		items, _ := list(t, owner.AccessToken)
		for _, it := range items {
			if it["id"] == id {
				t.Error("revoked invitation still listed")
			}
		}
		orgExpectError(t, orgRequest(t, e, admin.AccessToken, "DELETE", "/api/org/invitations/"+id, nil), 404, "not_found", "revoke twice")
		orgExpectError(t, orgRequest(t, e, admin.AccessToken, "DELETE", "/api/org/invitations/"+uuid.NewString(), nil), 404, "not_found", "revoke unknown")
		orgExpectError(t, orgRequest(t, e, admin.AccessToken, "DELETE", "/api/org/invitations/nope", nil), 400, "validation_failed", "revoke non-UUID")
		u := orgSignUp(t, e, "revoke@example.com")
		orgExpectError(t, orgAccept(t, e, u.AccessToken, secret), 404, "not_found", "accept a revoked invitation")
	})

	t.Run("audited", func(t *testing.T) {
		entries := orgAuditAll(t, e, owner.AccessToken)
		invited := orgAuditOf(entries, "member_invited")
		found := false
		for _, x := range invited {
			d := orgMap(t, x["details"], "details")
			if x["target_id"] == firstID && x["actor_id"] == admin.User.ID && d["email"] == "new.person@example.com" && d["role"] == "member" {
				found = true
			}
			if bytes.Contains(orgMustJSON(t, x), []byte(firstSecret)) {
				t.Error("the audit log holds an invitation secret")
			}
		}
		if !found {
			t.Errorf("no member_invited entry for %s: %v", firstID, invited)
		}
		if len(orgAuditOf(entries, "invitation_revoked")) != 1 {
			t.Errorf("invitation_revoked entries: %v", orgAuditOf(entries, "invitation_revoked"))
		}
	})
}

func orgMustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ---- POST /api/invitations/accept ----

func TestOrgAcceptInvitation(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	owner := e.SignUp("owner@example.com")
	orgA := owner.OrgID()
	wrong := e.SignUp("wrong@example.com")

	orgExpect(t, orgRequest(t, e, owner.AccessToken, "POST", "/api/org/invitations",
		map[string]any{"email": "invitee@example.com", "role": "admin"}), http.StatusCreated, "invite")
	// The brand-new user follows the link in their mail.
	mail := e.Mail.WaitFor(t, "invitee@example.com")
	link := regexp.MustCompile(`https?://\S+/invitations/accept\?\S+`).FindString(mail.Body)
	if link == "" {
		t.Fatalf("no accept link in the mail:\n%s", mail.Body)
	}
	secret := orgSecret(t, link)

	t.Run("invalid", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			body   any
			status int
			code   string
		}{
			{"empty token", map[string]any{"token": ""}, 400, "validation_failed"},
			{"no token", map[string]any{}, 400, "validation_failed"},
			{"bad JSON", `{"token":`, 400, "validation_failed"},
			{"unknown token", map[string]any{"token": "no-such-invitation-token"}, 404, "not_found"},
		} {
			orgExpectError(t, orgRequest(t, e, wrong.AccessToken, "POST", "/api/invitations/accept", c.body), c.status, c.code, c.name)
		}
	})

	t.Run("wrong user", func(t *testing.T) {
		orgExpectError(t, orgAccept(t, e, wrong.AccessToken, secret), http.StatusForbidden, "forbidden", "another user accepts")
		if _, ok := orgRoles(t, e, owner.AccessToken)[wrong.User.ID]; ok {
			t.Error("the wrong user became a member")
		}
	})

	invitee := e.SignUp("invitee@example.com")
	t.Run("new user accepts", func(t *testing.T) {
		r := orgAccept(t, e, invitee.AccessToken, secret)
		orgExpect(t, r, http.StatusOK, "accept")
		m := r.JSON(t)
		orgKeys(t, "accept answer", m, "org")
		if o := orgMap(t, m["org"], "org"); o["id"] != orgA || o["name"] != "Org owner@example.com" {
			t.Errorf("accept answer org = %v", o)
		}
		r = orgRequest(t, e, invitee.AccessToken, "POST", "/api/orgs/"+orgA+"/switch", nil)
		orgExpect(t, r, http.StatusOK, "switch to the joined org")
		var s testenv.Session
		r.Decode(t, &s)
		if org, role := orgOfToken(t, s.AccessToken); org != orgA || role != "admin" {
			t.Errorf("switched token: %q %q", org, role)
		}
		orgWorks(t, e, s.AccessToken, orgA, "invitee in org A")
		if got := orgRoles(t, e, owner.AccessToken)[invitee.User.ID]; got != "admin" {
			t.Errorf("invitee's role = %q", got)
		}
		items := orgArray(t, orgRequest(t, e, owner.AccessToken, "GET", "/api/org/invitations", nil), "invitations")
		if len(items) != 0 {
			t.Errorf("accepted invitation still listed: %v", items)
		}
	})

	t.Run("single use", func(t *testing.T) {
		orgExpectError(t, orgAccept(t, e, invitee.AccessToken, secret), http.StatusNotFound, "not_found", "accept twice")
		var acceptedID string
		if err := e.QueryRow(context.Background(), `select id::text from invitations where email = 'invitee@example.com' and accepted_at is not null`).Scan(&acceptedID); err != nil {
			t.Fatal(err)
		}
		orgExpectError(t, orgRequest(t, e, owner.AccessToken, "DELETE", "/api/org/invitations/"+acceptedID, nil), http.StatusNotFound, "not_found", "revoke an accepted invitation")
		orgExpectError(t, orgAccept(t, e, wrong.AccessToken, secret), http.StatusNotFound, "not_found", "another user uses a spent invitation")
	})

	t.Run("already a member", func(t *testing.T) {
		_, again := orgInvite(t, e, owner, "invitee@example.com", "member")
		orgExpectError(t, orgAccept(t, e, invitee.AccessToken, again), http.StatusConflict, "conflict", "member accepts another invitation")
		if got := orgRoles(t, e, owner.AccessToken)[invitee.User.ID]; got != "admin" {
			t.Errorf("role after the refused acceptance = %q, want admin", got)
		}
	})

	t.Run("address case does not matter", func(t *testing.T) {
		_, mixed := orgInvite(t, e, owner, "Mixed.Case@Example.com", "member")
		u := orgSignUp(t, e, "MIXED.case@EXAMPLE.com")
		orgExpect(t, orgAccept(t, e, u.AccessToken, mixed), http.StatusOK, "accept with the address in other case")
	})

	t.Run("expired", func(t *testing.T) {
		id, late := orgInvite(t, e, owner, "late@example.com", "member")
		tag, err := e.Exec(context.Background(), `update invitations set expires_at = now() - interval '1 second' where id = $1`, id)
		if err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("expire invitation: %v (%d rows)", err, tag.RowsAffected())
		}
		for _, it := range orgArray(t, orgRequest(t, e, owner.AccessToken, "GET", "/api/org/invitations", nil), "invitations") {
			if it["id"] == id {
				t.Error("an expired invitation is listed as open")
			}
		}
		u := orgSignUp(t, e, "late@example.com")
		orgExpectError(t, orgAccept(t, e, u.AccessToken, late), http.StatusNotFound, "not_found", "accept an expired invitation")
		if _, ok := orgRoles(t, e, owner.AccessToken)[u.User.ID]; ok {
			t.Error("expired invitation made a member")
		}
	})

	t.Run("audited", func(t *testing.T) {
		var en []map[string]any
		for _, x := range orgAuditOf(orgAuditAll(t, e, owner.AccessToken), "member_joined") {
			if x["actor_id"] == invitee.User.ID {
				en = append(en, x)
			}
		}
		if len(en) != 1 {
			t.Fatalf("member_joined entries of the invitee: %v", en)
		}
		d := orgMap(t, en[0]["details"], "details")
		if en[0]["actor_id"] != invitee.User.ID || en[0]["target_id"] != invitee.User.ID || d["role"] != "admin" {
			t.Errorf("member_joined = %v", en[0])
		}
	})
}

// orgVerifyFromMail confirms a sign-up through the link of the first mail to
// email and returns the session the confirmation starts.
func orgVerifyFromMail(t testing.TB, e *testenv.Env, email string) *testenv.Session {
	t.Helper()
	mail := e.Mail.WaitFor(t, email)
	link := regexp.MustCompile(`https?://\S+/auth/v1/verify\?\S+`).FindString(mail.Body)
	if link == "" {
		t.Fatalf("no verify link in the mail to %s:\n%s", email, mail.Body)
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	r := orgRequest(t, e, "", "POST", "/auth/v1/verify", map[string]any{"type": "signup", "token_hash": u.Query().Get("token_hash")})
	orgExpect(t, r, http.StatusOK, "verify "+email)
	var s testenv.Session
	r.Decode(t, &s)
	if s.AccessToken == "" {
		t.Fatalf("verify: no session: %s", r.Body)
	}
	return &s
}

func TestOrgAcceptInvitationNeedsConfirmedEmail(t *testing.T) {
	t.Parallel()
	no := false
	e := testenv.New(t, testenv.Options{Autoconfirm: &no})
	signUp := func(email string) {
		t.Helper()
		r := orgRequest(t, e, "", "POST", "/auth/v1/signup", map[string]any{"email": email, "password": testenv.Password})
		orgExpect(t, r, http.StatusOK, "sign up "+email)
		if _, ok := r.JSON(t)["access_token"]; ok {
			t.Fatalf("sign-up without autoconfirm returned a session: %s", r.Body)
		}
	}
	signUp("owner@example.com")
	owner := orgVerifyFromMail(t, e, "owner@example.com")
	orgA := owner.OrgID()

	// The invitee signs up first, so that the first mail they get is the
	// confirmation; the invitation comes second.
	signUp("slow@example.com")
	_, secret := e.Invite(owner, "slow@example.com", "member")

	// Unconfirmed, they cannot sign in, so they hold no token to accept with.
	r := orgRequest(t, e, "", "POST", "/auth/v1/token?grant_type=password", map[string]any{"email": "slow@example.com", "password": testenv.Password})
	orgExpect(t, r, http.StatusBadRequest, "sign in unconfirmed")
	if code := r.JSON(t)["error_code"]; code != "email_not_confirmed" {
		t.Errorf("sign in unconfirmed: %s", r.Body)
	}
	// Arrange a live token for the still-unconfirmed address (a session that
	// outlived its confirmation, say): acceptance must check the confirmation
	// itself, not rely on sign-in having done so.
	ctx := context.Background()
	if _, err := e.Exec(ctx, `update auth.users set email_confirmed_at = now() where email = 'slow@example.com'`); err != nil {
		t.Fatal(err)
	}
	signedIn := e.SignIn("slow@example.com")
	if _, err := e.Exec(ctx, `update auth.users set email_confirmed_at = null where email = 'slow@example.com'`); err != nil {
		t.Fatal(err)
	}
	orgExpectError(t, orgAccept(t, e, signedIn.AccessToken, secret), http.StatusForbidden, "forbidden", "accept before confirming")
	if _, ok := orgRoles(t, e, owner.AccessToken)[signedIn.User.ID]; ok {
		t.Fatal("an unconfirmed user joined")
	}

	// Confirming later through the mailed link lets them accept.
	confirmed := orgVerifyFromMail(t, e, "slow@example.com")
	r = orgAccept(t, e, confirmed.AccessToken, secret)
	orgExpect(t, r, http.StatusOK, "accept after confirming")
	if o := orgMap(t, r.JSON(t)["org"], "org"); o["id"] != orgA {
		t.Errorf("accepted into %v, want %s", o["id"], orgA)
	}
	if got := orgRoles(t, e, owner.AccessToken)[confirmed.User.ID]; got != "member" {
		t.Errorf("role after acceptance = %q", got)
	}
}

// ---- audit log ----

// orgScenario is an environment in which one of each audited action happened
// in the owner's org, with the actors and targets to look for.
type orgScenario struct {
	e                   *testenv.Env
	owner, admin        *testenv.Session
	orgA, otherOrg      string
	joinerID, removedID string
	signInSession       string
}

func newOrgScenario(t *testing.T) *orgScenario {
	t.Helper()
	e := testenv.New(t, testenv.Options{})
	sc := &orgScenario{e: e}
	sc.owner = e.SignUp("owner@example.com")
	sc.orgA = sc.owner.OrgID()
	sc.otherOrg = e.SignUp("other@example.com").OrgID()
	// sign_in and sign_out.
	s := e.SignIn("owner@example.com")
	sc.signInSession, _ = orgClaims(t, s.AccessToken)["session_id"].(string)
	orgExpect(t, orgRequest(t, e, s.AccessToken, "POST", "/auth/v1/logout?scope=local", nil), http.StatusNoContent, "logout")
	// member_invited, member_joined, org_switched (twice).
	sc.admin = e.AddMember(sc.owner, "admin@example.com", "admin")
	leaver := e.AddMember(sc.owner, "leaver@example.com", "member")
	sc.joinerID = sc.admin.User.ID
	sc.removedID = leaver.User.ID
	// member_role_changed, org_renamed, member_removed.
	orgExpect(t, orgRequest(t, e, sc.owner.AccessToken, "PATCH", "/api/org/members/"+leaver.User.ID, map[string]any{"role": "admin"}), http.StatusOK, "promote")
	orgRename(t, e, sc.owner.AccessToken, "Audited Org")
	orgExpect(t, orgRequest(t, e, sc.admin.AccessToken, "DELETE", "/api/org/members/"+leaver.User.ID, nil), http.StatusNoContent, "remove")
	// cross_tenant_attempt.
	orgExpect(t, orgRequest(t, e, sc.owner.AccessToken, "GET", "/api/orgs/validate/"+sc.otherOrg, nil), http.StatusForbidden, "cross-org validate")
	return sc
}

func TestOrgAuditLog(t *testing.T) {
	t.Parallel()
	sc := newOrgScenario(t)
	e, owner := sc.e, sc.owner

	all := orgAuditAll(t, e, owner.AccessToken)
	n := len(all)
	if n < 10 {
		t.Fatalf("only %d audit entries after the scenario", n)
	}

	t.Run("shape and order", func(t *testing.T) {
		data, next := orgAuditPage(t, e, owner.AccessToken, "")
		if next != nil {
			t.Errorf("next_cursor = %v with %d entries and the default limit of 50", next, n)
		}
		if len(data) != n {
			t.Errorf("default page has %d entries, want all %d", len(data), n)
		}
		for i, en := range data {
			orgCheckEntry(t, en)
			if got, want := orgSeq(en), int64(n-i); got != want {
				t.Errorf("entry %d has seq %d, want %d (newest first, no gaps)", i, got, want)
			}
		}
	})

	t.Run("events", func(t *testing.T) {
		one := func(action string, match func(en map[string]any, d map[string]any) bool) {
			t.Helper()
			for _, en := range orgAuditOf(all, action) {
				if match(en, orgMap(t, en["details"], "details")) {
					return
				}
			}
			t.Errorf("no matching %s entry in %v", action, orgAuditOf(all, action))
		}
		own := owner.User.ID
		one("sign_in", func(en, d map[string]any) bool { return en["actor_id"] == own })
		one("sign_out", func(en, d map[string]any) bool {
			return en["actor_id"] == own && en["target_id"] == sc.signInSession && d["scope"] == "local"
		})
		one("org_switched", func(en, d map[string]any) bool { return en["actor_id"] == sc.joinerID && en["target_id"] == sc.orgA })
		one("member_invited", func(en, d map[string]any) bool {
			ip, _ := en["ip"].(string)
			return en["actor_id"] == own && d["email"] == "admin@example.com" && d["role"] == "admin" && net.ParseIP(ip) != nil
		})
		one("member_joined", func(en, d map[string]any) bool { return en["actor_id"] == sc.joinerID && d["role"] == "admin" })
		one("member_role_changed", func(en, d map[string]any) bool {
			return en["target_id"] == sc.removedID && d["from"] == "member" && d["to"] == "admin"
		})
		one("org_renamed", func(en, d map[string]any) bool { return d["to"] == "Audited Org" })
		one("member_removed", func(en, d map[string]any) bool {
			return en["actor_id"] == sc.joinerID && en["target_id"] == sc.removedID
		})
		one("cross_tenant_attempt", func(en, d map[string]any) bool {
			return en["actor_id"] == own && en["target_id"] == sc.otherOrg
		})
		// The other org's log has none of this.
		otherLog := orgAuditAll(t, e, orgSignIn(t, e, "other@example.com").AccessToken)
		for _, en := range otherLog {
			if en["action"] != "sign_in" {
				t.Errorf("the other org's log has %v", en)
			}
		}
	})

	t.Run("pagination", func(t *testing.T) {
		var seqs []int64
		seen := map[string]bool{}
		q := "?limit=2"
		pages := 0
		for {
			data, next := orgAuditPage(t, e, owner.AccessToken, q)
			pages++
			if len(data) > 2 || len(data) == 0 {
				t.Fatalf("page %d has %d entries", pages, len(data))
			}
			for _, en := range data {
				id, _ := en["id"].(string)
				if seen[id] {
					t.Errorf("entry %s on two pages", id)
				}
				seen[id] = true
				seqs = append(seqs, orgSeq(en))
			}
			c, ok := next.(string)
			if !ok {
				if next != nil {
					t.Fatalf("next_cursor = %v, want a string or null", next)
				}
				break
			}
			if len(data) != 2 {
				t.Errorf("a page of %d entries before the end", len(data))
			}
			if pages > n {
				t.Fatal("pagination does not end")
			}
			q = "?limit=2&cursor=" + url.QueryEscape(c)
		}
		if pages != (n+1)/2 {
			t.Errorf("%d pages for %d entries at limit 2", pages, n)
		}
		if len(seqs) != n {
			t.Fatalf("walked %d entries, want %d", len(seqs), n)
		}
		for i, s := range seqs {
			if s != int64(n-i) {
				t.Fatalf("walked seqs %v: gap or duplicate at %d", seqs, i)
			}
		}
	})

	t.Run("action filter", func(t *testing.T) {
		want := orgAuditOf(all, "member_invited")
		if len(want) < 2 {
			t.Fatalf("scenario made %d invitations", len(want))
		}
		data, next := orgAuditPage(t, e, owner.AccessToken, "?action=member_invited")
		if len(data) != len(want) || next != nil {
			t.Errorf("filtered: %d entries (next %v), want %d", len(data), next, len(want))
		}
		for _, en := range data {
			if en["action"] != "member_invited" {
				t.Errorf("filter let through %v", en["action"])
			}
		}
		// Filtered pages walk too.
		first, next := orgAuditPage(t, e, owner.AccessToken, "?action=member_invited&limit=1")
		c, _ := next.(string)
		if len(first) != 1 || c == "" {
			t.Fatalf("first filtered page: %v, next %v", first, next)
		}
		second, _ := orgAuditPage(t, e, owner.AccessToken, "?action=member_invited&limit=1&cursor="+url.QueryEscape(c))
		if len(second) != 1 || second[0]["action"] != "member_invited" || orgSeq(second[0]) >= orgSeq(first[0]) {
			t.Errorf("second filtered page: %v after %v", second, first)
		}
		none, _ := orgAuditPage(t, e, owner.AccessToken, "?action=no_such_action")
		if len(none) != 0 {
			t.Errorf("unknown action matched %v", none)
		}
	})

	t.Run("bad parameters", func(t *testing.T) {
		b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
		for _, q := range []string{"limit=0", "limit=101", "limit=x", "limit=-1", "limit=1.5",
			"cursor=!!!", "cursor=" + b64("abc"), "cursor=" + b64("0"), "cursor=" + b64("-3"), "cursor=%20"} {
			orgExpectError(t, orgRequest(t, e, owner.AccessToken, "GET", "/api/org/audit-log?"+q, nil), 400, "validation_failed", q)
		}
		for _, q := range []string{"limit=1", "limit=100"} {
			data, _ := orgAuditPage(t, e, owner.AccessToken, "?"+q)
			l, _ := strconv.Atoi(strings.TrimPrefix(q, "limit="))
			if len(data) != min(l, n) {
				t.Errorf("%s: %d entries", q, len(data))
			}
		}
	})

	t.Run("admin reads, member does not", func(t *testing.T) {
		if data, _ := orgAuditPage(t, e, sc.admin.AccessToken, "?limit=1"); len(data) != 1 {
			t.Errorf("admin read %d entries", len(data))
		}
		member := orgAddMember(t, e, owner, "member@example.com", "member")
		for _, p := range []string{"/api/org/audit-log", "/api/org/audit-log/export", "/api/org/audit-log/verify"} {
			orgExpectError(t, orgRequest(t, e, member.AccessToken, "GET", p, nil), 403, "forbidden", "member GET "+p)
		}
	})
}

func TestOrgAuditExportAndVerify(t *testing.T) {
	t.Parallel()
	sc := newOrgScenario(t)
	e, owner := sc.e, sc.owner
	log := orgAuditAll(t, e, owner.AccessToken)
	n := len(log)

	t.Run("export", func(t *testing.T) {
		r := orgRequest(t, e, owner.AccessToken, "GET", "/api/org/audit-log/export", nil)
		orgExpect(t, r, http.StatusOK, "export")
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-ndjson") {
			t.Errorf("Content-Type %q, want application/x-ndjson", ct)
		}
		if !bytes.HasSuffix(r.Body, []byte("\n")) {
			t.Error("export does not end with a newline")
		}
		lines := strings.Split(strings.TrimSuffix(string(r.Body), "\n"), "\n")
		if len(lines) != n {
			t.Fatalf("export has %d lines, the log %d entries", len(lines), n)
		}
		for i, line := range lines {
			var en map[string]any
			if err := json.Unmarshal([]byte(line), &en); err != nil {
				t.Fatalf("line %d is not a JSON object: %v: %s", i+1, err, line)
			}
			orgCheckEntry(t, en)
			if orgSeq(en) != int64(i+1) {
				t.Errorf("line %d has seq %d", i+1, orgSeq(en))
			}
			// The same entry as the paged log shows (which is newest first).
			if p := log[n-1-i]; p["id"] != en["id"] || p["hash"] != en["hash"] || p["action"] != en["action"] {
				t.Errorf("line %d = %v, log has %v", i+1, en, p)
			}
		}
	})

	t.Run("empty log", func(t *testing.T) {
		fresh := orgSignUp(t, e, "fresh@example.com")
		r := orgRequest(t, e, fresh.AccessToken, "GET", "/api/org/audit-log/export", nil)
		orgExpect(t, r, http.StatusOK, "export of an empty log")
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-ndjson") || len(r.Body) != 0 {
			t.Errorf("empty export: Content-Type %q, body %q", ct, r.Body)
		}
		if data, next := orgAuditPage(t, e, fresh.AccessToken, ""); len(data) != 0 || next != nil {
			t.Errorf("audit log of a fresh org: %v, next %v", data, next)
		}
		if valid, entries := orgVerify(t, e, fresh.AccessToken); !valid || entries != 0 {
			t.Errorf("verify of an empty log: valid %v entries %d", valid, entries)
		}
	})

	t.Run("verify then tamper", func(t *testing.T) {
		if valid, entries := orgVerify(t, e, owner.AccessToken); !valid || entries != int64(n) {
			t.Fatalf("verify = valid %v entries %d, want true %d", valid, entries, n)
		}
		tag, err := e.Exec(context.Background(),
			`update audit_log set details = details || '{"tampered": true}' where org_id = $1 and seq = $2`, sc.orgA, n/2)
		if err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("tamper: %v (%d rows)", err, tag.RowsAffected())
		}
		if valid, entries := orgVerify(t, e, owner.AccessToken); valid || entries != int64(n) {
			t.Errorf("after editing entry %d: valid %v entries %d, want false %d", n/2, valid, entries, n)
		}
		// Another org's chain is unaffected.
		other := orgSignIn(t, e, "other@example.com")
		if valid, _ := orgVerify(t, e, other.AccessToken); !valid {
			t.Error("tampering with org A invalidated another org's log")
		}
	})
}

func TestOrgAuditVerifyDetectsDeletion(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		seq  func(n int) int
	}{
		{"middle entry", func(n int) int { return n / 2 }},
		{"newest entry", func(n int) int { return n }},
		{"oldest entry", func(n int) int { return 1 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := testenv.New(t, testenv.Options{})
			owner := e.SignUp("owner@example.com")
			for i := range 4 {
				orgRename(t, e, owner.AccessToken, fmt.Sprintf("Name %d", i))
			}
			valid, n := orgVerify(t, e, owner.AccessToken)
			if !valid || n != 4 {
				t.Fatalf("before deletion: valid %v entries %d", valid, n)
			}
			seq := c.seq(int(n))
			tag, err := e.Exec(context.Background(), `delete from audit_log where org_id = $1 and seq = $2`, owner.OrgID(), seq)
			if err != nil || tag.RowsAffected() != 1 {
				t.Fatalf("delete seq %d: %v (%d rows)", seq, err, tag.RowsAffected())
			}
			valid, n = orgVerify(t, e, owner.AccessToken)
			if valid || n != 3 {
				t.Errorf("after deleting seq %d: valid %v entries %d, want false 3", seq, valid, n)
			}
		})
	}
}

// ---- the last owner under concurrent changes ----

// orgStatus sends a request from any goroutine and returns the status.
func orgStatus(e *testenv.Env, tok, method, path string, body any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		return 0, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// Two owners acting at once cannot together leave the org without an owner:
// exactly one of the two changes succeeds; the other gets 409 conflict (or 401
// when the winner already changed the loser's membership).
func TestOrgLastOwnerUnderConcurrency(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	type step struct {
		method, path string
		body         any
	}
	variants := []struct {
		name string
		act  func(self, other string) step
	}{
		{"both leave", func(self, other string) step { return step{"DELETE", "/api/org/members/" + self, nil} }},
		{"each removes the other", func(self, other string) step { return step{"DELETE", "/api/org/members/" + other, nil} }},
		{"each demotes self", func(self, other string) step {
			return step{"PATCH", "/api/org/members/" + self, map[string]any{"role": "admin"}}
		}},
		{"each demotes the other", func(self, other string) step {
			return step{"PATCH", "/api/org/members/" + other, map[string]any{"role": "member"}}
		}},
	}
	for vi, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			for round := range 3 {
				o1 := orgSignUp(t, e, fmt.Sprintf("o1-%d-%d@example.com", vi, round))
				org := o1.OrgID()
				o2 := orgAddMember(t, e, o1, fmt.Sprintf("o2-%d-%d@example.com", vi, round), "owner")
				steps := []step{v.act(o1.User.ID, o2.User.ID), v.act(o2.User.ID, o1.User.ID)}
				toks := []string{o1.AccessToken, o2.AccessToken}
				statuses := make([]int, 2)
				errs := make([]error, 2)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range 2 {
					wg.Go(func() {
						<-start
						statuses[i], errs[i] = orgStatus(e, toks[i], steps[i].method, steps[i].path, steps[i].body)
					})
				}
				close(start)
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
				ok := 0
				for _, st := range statuses {
					switch {
					case st == http.StatusOK || st == http.StatusNoContent:
						ok++
					case st != http.StatusConflict && st != http.StatusUnauthorized:
						// 401 (session_revoked) is the loser's answer when the winner
						// changed the loser's own membership before the loser's token
						// was checked.
						t.Errorf("round %d: status %d, want success, 409 or 401", round, st)
					}
				}
				if ok != 1 {
					t.Errorf("round %d: %d of the two changes succeeded (%v), want exactly 1", round, ok, statuses)
				}
				var owners int
				if err := e.QueryRow(context.Background(), `select count(*) from memberships where org_id = $1 and role = 'owner'`, org).Scan(&owners); err != nil {
					t.Fatal(err)
				}
				if owners != 1 {
					t.Errorf("round %d: %d owners left, want 1", round, owners)
				}
			}
		})
	}
}

// ---- metrics ----

// orgMetric returns the value of one series of GET /metrics (0 when absent).
func orgMetric(t testing.TB, e *testenv.Env, series string) float64 {
	t.Helper()
	r := orgRequest(t, e, "", "GET", "/metrics", nil)
	orgExpect(t, r, http.StatusOK, "GET /metrics")
	for _, line := range strings.Split(string(r.Body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return f
		}
	}
	return 0
}

func TestOrgCrossTenantMetric(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	a := e.SignUp("a@example.com")
	b := e.SignUp("b@example.com")
	const series = `voxanne_cross_tenant_attempts_total{via="path"}`
	before := orgMetric(t, e, series)

	// Validating one's own org is no attempt.
	orgExpect(t, orgRequest(t, e, a.AccessToken, "GET", "/api/orgs/validate/"+a.OrgID(), nil), http.StatusOK, "validate own org")
	if got := orgMetric(t, e, series); got != before {
		t.Errorf("own-org validate counted: %v → %v", before, got)
	}
	orgExpect(t, orgRequest(t, e, a.AccessToken, "GET", "/api/orgs/validate/"+b.OrgID(), nil), http.StatusForbidden, "validate another org")
	if got := orgMetric(t, e, series); got != before+1 {
		t.Errorf("%s = %v after a cross-org validate, want %v", series, got, before+1)
	}
	orgExpect(t, orgRequest(t, e, a.AccessToken, "POST", "/api/orgs/"+b.OrgID()+"/switch", nil), http.StatusForbidden, "switch to another org")
	if got := orgMetric(t, e, series); got != before+2 {
		t.Errorf("%s = %v after a cross-org switch, want %v", series, got, before+2)
	}
}
