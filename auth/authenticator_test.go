package auth_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/voxanne/voxanne/auth"
	"github.com/voxanne/voxanne/auth/token"
	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// craft builds a compact JWS with any header and payload.
func craft(t *testing.T, header map[string]any, payload any, sign func(input string) []byte) string {
	t.Helper()
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(payload)
	in := b64(h) + "." + b64(p)
	return in + "." + b64(sign(in))
}

func claimsOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func headerOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	b, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// expectRejected asserts a 401 with code and that no data leaked.
func expectRejected(t *testing.T, e *testenv.Env, tok, code string) {
	t.Helper()
	r := e.Do("GET", "/api/session", nil, testenv.Bearer(tok)...)
	if r.Status != 401 || r.JSON(t)["code"] != code {
		t.Fatalf("want 401 %s, got %d %s", code, r.Status, r.Body)
	}
	if strings.Contains(string(r.Body), "org_id") || strings.Contains(string(r.Body), "user_id") {
		t.Fatalf("rejected response carries data: %s", r.Body)
	}
}

func TestEveryTokenCheckRejects(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := e.SignUp("alice@example.com")
	if r := e.Do("GET", "/api/session", nil, testenv.Bearer(s.AccessToken)...); r.Status != 200 {
		t.Fatalf("valid token: %d %s", r.Status, r.Body)
	}
	key := e.Keys.Current()
	valid := claimsOf(t, s.AccessToken)
	with := func(mod func(m map[string]any)) map[string]any {
		m := map[string]any{}
		for k, v := range valid {
			m[k] = v
		}
		mod(m)
		return m
	}
	es256 := func(c map[string]any) string {
		mc := jwt.MapClaims(c)
		tk := jwt.NewWithClaims(jwt.SigningMethodES256, mc)
		tk.Header["kid"] = key.ID
		raw, err := tk.SignedString(key.Private)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	pubDER, _ := json.Marshal(token.PublicJWK(key))
	parts := strings.Split(s.AccessToken, ".")
	tamperedPayload := with(func(m map[string]any) {
		m["app_metadata"] = map[string]any{"org_id": "00000000-0000-0000-0000-000000000001", "org_role": "owner"}
	})
	tp, _ := json.Marshal(tamperedPayload)
	now := time.Now().Unix()

	cases := map[string]string{
		"alg none": craft(t, map[string]any{"alg": "none", "typ": "JWT", "kid": key.ID}, valid, func(string) []byte { return nil }),
		"HS256 keyed with the public key": craft(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": key.ID}, valid, func(in string) []byte {
			m := hmac.New(sha256.New, pubDER)
			m.Write([]byte(in))
			return m.Sum(nil)
		}),
		"tampered org_id":   parts[0] + "." + b64(tp) + "." + parts[2],
		"unknown kid":       craft(t, map[string]any{"alg": "ES256", "typ": "JWT", "kid": "nope"}, valid, func(string) []byte { return make([]byte, 64) }),
		"expired":           es256(with(func(m map[string]any) { m["exp"] = now - 120; m["iat"] = now - 3600 })),
		"future nbf":        es256(with(func(m map[string]any) { m["nbf"] = now + 600 })),
		"future iat":        es256(with(func(m map[string]any) { m["iat"] = now + 600 })),
		"wrong iss":         es256(with(func(m map[string]any) { m["iss"] = "https://evil.example/auth/v1" })),
		"wrong aud":         es256(with(func(m map[string]any) { m["aud"] = "service" })),
		"oversized":         es256(with(func(m map[string]any) { m["user_metadata"] = map[string]any{"pad": strings.Repeat("x", 17<<10)} })),
		"garbage":           "not.a.jwt",
		"empty segments":    "..",
		"jwk header forged": forgedWithEmbeddedJWK(t, valid),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) { expectRejected(t, e, tok, "bad_jwt") })
	}
	t.Run("service_role token where a user is needed", func(t *testing.T) {
		svc, err := e.Auth.ServiceRoleToken(context.Background(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		expectRejected(t, e, svc, "bad_jwt")
		if r := e.Do("GET", "/api/monitoring/cache-stats", nil, testenv.Bearer(svc)...); r.Status != 200 {
			t.Fatalf("cache-stats with service_role: %d", r.Status)
		}
		if r := e.Do("GET", "/api/monitoring/cache-stats", nil, testenv.Bearer(s.AccessToken)...); r.Status != 403 {
			t.Fatalf("cache-stats with a user token: %d", r.Status)
		}
	})
	t.Run("no token", func(t *testing.T) {
		r := e.Do("GET", "/api/session", nil)
		if r.Status != 401 || r.JSON(t)["code"] != "no_authorization" || r.Header.Get("WWW-Authenticate") != "Bearer" {
			t.Fatalf("%d %v %s", r.Status, r.Header, r.Body)
		}
	})
}

// forgedWithEmbeddedJWK signs with an attacker key and embeds its public key in
// the header's jwk (and jku): both must be ignored.
func forgedWithEmbeddedJWK(t *testing.T, claims map[string]any) string {
	k, err := token.NewES256Key()
	if err != nil {
		t.Fatal(err)
	}
	tk := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims(claims))
	tk.Header["kid"] = k.ID
	tk.Header["jwk"] = token.PublicJWK(k)
	tk.Header["jku"] = "http://127.0.0.1:1/jwks.json"
	raw, err := tk.SignedString(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestOrgComesOnlyFromTheToken(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	a := e.SignUp("a@example.com")
	b := e.SignUp("b@example.com")
	r := e.Do("GET", "/api/session?org_id="+b.OrgID(), nil, append(testenv.Bearer(a.AccessToken), "X-Org-Id", b.OrgID())...)
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	if got := r.JSON(t)["org_id"]; got != a.OrgID() || strings.Contains(string(r.Body), b.OrgID()) {
		t.Fatalf("org %v, body %s", got, r.Body)
	}
	m := e.Do("GET", "/metrics", nil)
	for _, want := range []string{`voxanne_cross_tenant_attempts_total{via="header"} 1`, `voxanne_cross_tenant_attempts_total{via="query"} 1`} {
		if !strings.Contains(string(m.Body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !strings.Contains(e.Logs.String(), "cross_tenant_attempt") {
		t.Error("no security log of the spoof")
	}
}

func TestCacheHitsAndStats(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := e.SignUp("c@example.com")
	for i := 0; i < 5; i++ {
		if r := e.Do("GET", "/api/session", nil, testenv.Bearer(s.AccessToken)...); r.Status != 200 {
			t.Fatal(r.Status)
		}
	}
	st := e.Authn.Stats()
	if st.Misses != 1 || st.Hits != 4 || st.Entries != 1 {
		t.Fatalf("stats %+v", st)
	}
	m := e.Do("GET", "/metrics", nil)
	if !strings.Contains(string(m.Body), "voxanne_auth_cache_hits_total 4") {
		t.Errorf("metrics: %s", m.Body)
	}
}

// Revocations on the instance that makes them: the next request fails.
func TestRevocationTakesEffectOnTheNextRequest(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	cases := map[string]func(s *testenv.Session){
		"logout": func(s *testenv.Session) {
			if r := e.Do("POST", "/auth/v1/logout?scope=local", nil, testenv.Bearer(s.AccessToken)...); r.Status != 204 {
				t.Fatal(r.Status)
			}
		},
		"role change": func(s *testenv.Session) {
			if _, err := e.Exec(ctx, "update memberships set role = 'member' where user_id = $1", s.User.ID); err != nil {
				t.Fatal(err)
			}
		},
		"removal from org": func(s *testenv.Session) {
			if _, err := e.Exec(ctx, "delete from memberships where user_id = $1", s.User.ID); err != nil {
				t.Fatal(err)
			}
		},
		"password change": func(s *testenv.Session) {
			other := e.SignIn(s.User.Email)
			if r := e.Do("PUT", "/auth/v1/user", map[string]any{"password": "another-Strong-pass-77"}, testenv.Bearer(other.AccessToken)...); r.Status != 200 {
				t.Fatal(r.Status, string(r.Body))
			}
		},
		"user deleted": func(s *testenv.Session) {
			if _, err := e.Exec(ctx, "delete from auth.users where id = $1", s.User.ID); err != nil {
				t.Fatal(err)
			}
		},
	}
	i := 0
	for name, revoke := range cases {
		i++
		t.Run(name, func(t *testing.T) {
			s := e.SignUp(strings.ReplaceAll(name, " ", "-") + "@example.com")
			// Warm the cache.
			for j := 0; j < 2; j++ {
				if r := e.Do("GET", "/api/session", nil, testenv.Bearer(s.AccessToken)...); r.Status != 200 {
					t.Fatal(r.Status)
				}
			}
			revoke(s)
			// Revocations made outside this instance's own code (a direct SQL
			// change) arrive through NOTIFY: allow the listener a moment.
			deadline := time.Now().Add(2 * time.Second)
			var r *testenv.Response
			for time.Now().Before(deadline) {
				r = e.Do("GET", "/api/session", nil, testenv.Bearer(s.AccessToken)...)
				if r.Status == 401 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if r.Status != 401 || r.JSON(t)["code"] != "session_revoked" {
				t.Fatalf("after %s: %d %s", name, r.Status, r.Body)
			}
		})
	}
}

// A refreshed token carries the new state: after a role change, the old token is
// revoked and the refreshed one works with the new role.
func TestRefreshCarriesNewRole(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := e.SignUp("role@example.com")
	if _, err := e.Exec(context.Background(), "update memberships set role = 'admin' where user_id = $1", s.User.ID); err != nil {
		t.Fatal(err)
	}
	r := e.Do("POST", "/auth/v1/token?grant_type=refresh_token", map[string]any{"refresh_token": s.RefreshToken})
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	var fresh testenv.Session
	r.Decode(t, &fresh)
	if am := claimsOf(t, fresh.AccessToken)["app_metadata"].(map[string]any); am["org_role"] != "admin" {
		t.Fatalf("refreshed token role %v", am)
	}
	if r := e.Do("GET", "/api/session", nil, testenv.Bearer(fresh.AccessToken)...); r.Status != 200 || r.JSON(t)["role"] != "admin" {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	expectRejected(t, e, s.AccessToken, "session_revoked")
}

// A key rotated elsewhere (another instance, or the CLI) is picked up when a
// token names its kid.
func TestKeyRotatedByAnotherInstance(t *testing.T) {
	t.Parallel()
	e1 := testenv.New(t, testenv.Options{})
	e2 := testenv.NewOn(t, e1.DB, testenv.Options{})
	if _, err := e2.Keys.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	// e2 signs with the new key; e1 has never seen it.
	s := e2.SignUp("rot@example.com")
	if headerOf(t, s.AccessToken)["kid"] == e1.Keys.Current().ID {
		t.Fatal("e2 did not sign with the rotated key")
	}
	// The issuers differ per test server: ask e2 itself, then check e1 reloads
	// its ring on the unknown kid.
	if r := e2.Do("GET", "/api/session", nil, testenv.Bearer(s.AccessToken)...); r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	if _, ok := e1.Keys.Lookup(headerOf(t, s.AccessToken)["kid"].(string)); ok {
		t.Fatal("precondition: e1 already knows the key")
	}
	e1.Authn.Authenticate(context.Background(), s.AccessToken) //nolint:errcheck // wrong issuer for e1; the reload is what counts
	if _, ok := e1.Keys.Lookup(headerOf(t, s.AccessToken)["kid"].(string)); !ok {
		t.Fatal("e1 did not reload its keys on an unknown kid")
	}
}

// Tokens of an external Supabase project: keys from its JWKS, exact issuer, and
// the same org rules (membership with the token's role).
func TestExternalProjectTokens(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	local := e.SignUp("ext@example.com")
	ext, err := token.NewES256Key()
	if err != nil {
		t.Fatal(err)
	}
	fetches := 0
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches++
		w.Write(token.MarshalJWKS([]*token.Key{ext}))
	}))
	defer jwks.Close()
	remote := auth.NewRemoteJWKS(jwks.URL)
	v := &token.Verifier{Issuer: e.Issuer, Keys: e.Keys.Lookup, External: remote.Lookup, ExternalIssuer: "https://proj.supabase.co/auth/v1"}
	a := auth.New(auth.Config{Verifier: v, State: e.DB, RefreshKeys: func(ctx context.Context) bool {
		ok, _ := remote.Refresh(ctx)
		return ok
	}})
	a.SetTrusted(true)
	now := time.Now().Unix()
	mk := func(iss, org, role string) string {
		raw, err := token.Sign(ext, &token.Claims{Issuer: iss, Subject: local.User.ID, Audience: "authenticated",
			ExpiresAt: now + 600, IssuedAt: now, Role: "authenticated",
			AppMetadata: token.AppMetadata{OrgID: org, OrgRole: role}})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	ctx := context.Background()
	p, err := a.Authenticate(ctx, mk("https://proj.supabase.co/auth/v1", local.OrgID(), "owner"))
	if err != nil || p.OrgID != local.OrgID() {
		t.Fatalf("external token: %v %+v", err, p)
	}
	if _, err := a.Authenticate(ctx, mk(e.Issuer, local.OrgID(), "owner")); err == nil {
		t.Fatal("external key accepted with the local issuer")
	}
	if _, err := a.Authenticate(ctx, mk("https://proj.supabase.co/auth/v1", local.OrgID(), "member")); err != auth.ErrRevoked {
		t.Fatalf("role not matching the membership: %v", err)
	}
	// A service_role token of the external project grants nothing here.
	svc, err := token.Sign(ext, &token.Claims{Issuer: "https://proj.supabase.co/auth/v1", Subject: "service_role",
		Audience: "authenticated", ExpiresAt: now + 600, IssuedAt: now, Role: token.RoleServiceRole})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, svc); err != auth.ErrBadToken {
		t.Fatalf("external service_role token: %v", err)
	}
	// Unknown kids refetch at most once a minute.
	for i := 0; i < 5; i++ {
		a.Authenticate(ctx, craft(t, map[string]any{"alg": "ES256", "kid": "other"}, map[string]any{}, func(string) []byte { return make([]byte, 64) })) //nolint:errcheck
	}
	if fetches != 1 {
		t.Fatalf("JWKS fetched %d times", fetches)
	}
}
