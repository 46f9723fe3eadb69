package http_test

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/voxanne/voxanne/internal/testenv"
)

// Every token answer and every answer with tenant data is kept out of caches;
// the public JWKS may be cached.
func TestNoStoreOnTokensAndTenantData(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	signup := e.Do("POST", "/auth/v1/signup", map[string]any{"email": "cache@example.com", "password": testenv.Password})
	s := e.SignIn("cache@example.com")
	refresh := e.Do("POST", "/auth/v1/token?grant_type=refresh_token", map[string]any{"refresh_token": s.RefreshToken})
	checks := map[string]*testenv.Response{
		"signup":   signup,
		"password": e.Do("POST", "/auth/v1/token?grant_type=password", map[string]any{"email": "cache@example.com", "password": testenv.Password}),
		"refresh":  refresh,
		"user":     e.Do("GET", "/auth/v1/user", nil, testenv.Bearer(s.AccessToken)...),
		"me":       e.Do("GET", "/api/me", nil, testenv.Bearer(s.AccessToken)...),
		"calls":    e.Do("GET", "/api/calls", nil, testenv.Bearer(s.AccessToken)...),
		"members":  e.Do("GET", "/api/org/members", nil, testenv.Bearer(s.AccessToken)...),
		"contacts": e.Do("GET", "/api/contacts", nil, testenv.Bearer(s.AccessToken)...),
		"error":    e.Do("GET", "/api/calls/not-a-uuid", nil, testenv.Bearer(s.AccessToken)...),
	}
	for name, r := range checks {
		if r.Status >= 500 || r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d Cache-Control %q", name, r.Status, r.Header.Get("Cache-Control"))
		}
	}
	if cc := e.Do("GET", "/auth/v1/.well-known/jwks.json", nil).Header.Get("Cache-Control"); cc == "no-store" {
		t.Errorf("JWKS: %q", cc)
	}
}

var crossTenantHeader = regexp.MustCompile(`voxanne_cross_tenant_attempts_total\{via="header"\} (\d+)`)

func crossTenantCount(t *testing.T, e *testenv.Env) int {
	t.Helper()
	m := crossTenantHeader.FindSubmatch(e.Do("GET", "/metrics", nil).Body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// Naming another of one's own orgs is not an attack; naming someone else's is
// counted.
func TestCrossTenantCounterCountsOnlyForeignOrgs(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	owner := e.SignUp("two-orgs@example.com")
	r := e.Do("POST", "/api/orgs", map[string]any{"name": "Second clinic"}, testenv.Bearer(owner.AccessToken)...)
	if r.Status != 201 {
		t.Fatalf("second org: %d %s", r.Status, r.Body)
	}
	second, _ := r.JSON(t)["id"].(string)
	other := e.SignUp("stranger@example.com")
	before := crossTenantCount(t, e)
	e.Do("GET", "/api/calls", nil, append(testenv.Bearer(owner.AccessToken), "X-Org-Id", second)...)
	if n := crossTenantCount(t, e); n != before {
		t.Fatalf("own other org counted: %d -> %d", before, n)
	}
	e.Do("GET", "/api/calls", nil, append(testenv.Bearer(owner.AccessToken), "X-Org-Id", other.OrgID())...)
	if n := crossTenantCount(t, e); n != before+1 {
		t.Fatalf("foreign org not counted: %d -> %d", before, n)
	}
}
