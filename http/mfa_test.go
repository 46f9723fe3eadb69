package http_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/voxanne/voxanne/auth/totp"
	"github.com/voxanne/voxanne/internal/testenv"
)

const mfaAPIVersion = "2024-01-01"

// factor is an enrolled TOTP factor as the test knows it.
type factor struct {
	ID     string
	Secret []byte
}

func enroll(t *testing.T, e *testenv.Env, tok, name string) factor {
	t.Helper()
	r := e.Do("POST", "/auth/v1/factors", map[string]any{"factor_type": "totp", "friendly_name": name}, testenv.Bearer(tok)...)
	if r.Status != 200 {
		t.Fatalf("enroll: %d %s", r.Status, r.Body)
	}
	var out struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		TOTP struct {
			QRCode string `json:"qr_code"`
			Secret string `json:"secret"`
			URI    string `json:"uri"`
		} `json:"totp"`
	}
	r.Decode(t, &out)
	if out.Type != "totp" || !strings.HasPrefix(out.TOTP.QRCode, "<svg") || !strings.HasPrefix(out.TOTP.URI, "otpauth://totp/") ||
		!strings.Contains(out.TOTP.URI, "secret="+out.TOTP.Secret) || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("enrolment answer: %s", r.Body)
	}
	secret, err := totp.DecodeSecret(out.TOTP.Secret)
	if err != nil {
		t.Fatal(err)
	}
	return factor{ID: out.ID, Secret: secret}
}

func challenge(t *testing.T, e *testenv.Env, tok, factorID string, headers ...string) string {
	t.Helper()
	r := e.Do("POST", "/auth/v1/factors/"+factorID+"/challenge", nil, append(testenv.Bearer(tok), headers...)...)
	if r.Status != 200 {
		t.Fatalf("challenge: %d %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	if exp, _ := m["expires_at"].(float64); int64(exp) <= time.Now().Unix() || m["type"] != "totp" {
		t.Fatalf("challenge answer: %s", r.Body)
	}
	return m["id"].(string)
}

// codeAt is the factor's code for the step offset steps from now.
func (f factor) codeAt(offset int64) string {
	return totp.HOTP(totp.SHA1, f.Secret, totp.Step(time.Now())+offset, totp.Digits)
}

func verify(e *testenv.Env, tok, factorID, challengeID, code string, headers ...string) *testenv.Response {
	e.T.Helper()
	return e.Do("POST", "/auth/v1/factors/"+factorID+"/verify", map[string]any{"challenge_id": challengeID, "code": code},
		append(append(testenv.Bearer(tok), "X-Supabase-Api-Version", mfaAPIVersion), headers...)...)
}

// passMFA enrolls (or reuses) a factor and verifies a fresh code: the aal2
// session's access token.
func passMFA(t *testing.T, e *testenv.Env, tok string, f *factor, offset int64) *testenv.Session {
	t.Helper()
	if f.ID == "" {
		*f = enroll(t, e, tok, "")
	}
	r := verify(e, tok, f.ID, challenge(t, e, tok, f.ID), f.codeAt(offset))
	if r.Status != 200 {
		t.Fatalf("verify: %d %s", r.Status, r.Body)
	}
	var s testenv.Session
	r.Decode(t, &s)
	return &s
}

func wantAuthError(t *testing.T, r *testenv.Response, status int, code string) {
	t.Helper()
	if r.Status != status || r.JSON(t)["code"] != code {
		t.Errorf("got %d %s, want %d %s", r.Status, r.Body, status, code)
	}
}

// Enrol, challenge and verify: the session becomes aal2 with a totp amr
// entry, keeps it through refreshes, and lists the factor; every way of
// getting a code wrong is refused.
func TestTOTPFactorLifecycle(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{KEK: "a-key-encryption-key-for-tests", ClientIPHeader: "X-Test-Client-IP"})
	s := e.SignUp("ann@clinic.example")
	other := e.SignIn("ann@clinic.example") // another aal1 session of the same user
	_, claims := decodeJWT(t, s.AccessToken)
	if claims["aal"] != "aal1" {
		t.Fatalf("aal before MFA: %v", claims["aal"])
	}
	f := enroll(t, e, s.AccessToken, "phone app")

	// The secret is sealed at rest with the key-encryption key.
	var stored []byte
	var encrypted bool
	if err := e.QueryRow(context.Background(), "select secret, encrypted from auth.mfa_factors where id = $1", f.ID).Scan(&stored, &encrypted); err != nil {
		t.Fatal(err)
	}
	if !encrypted || bytes.Contains(stored, f.Secret) || len(stored) <= len(f.Secret) {
		t.Errorf("stored secret not sealed: encrypted=%v", encrypted)
	}
	// An unverified factor is listed as such.
	u := e.Do("GET", "/auth/v1/user", nil, testenv.Bearer(s.AccessToken)...).JSON(t)
	if fs, _ := u["factors"].([]any); len(fs) != 1 || fs[0].(map[string]any)["status"] != "unverified" || u["aal"] != "aal1" {
		t.Errorf("user before verify: factors %v aal %v", u["factors"], u["aal"])
	}

	ch := challenge(t, e, s.AccessToken, f.ID)
	// Wrong code, a code two steps away, an unknown challenge, a malformed
	// challenge id, another factor id, an empty code.
	wrong := []byte(f.codeAt(0))
	wrong[5] = '0' + (wrong[5]-'0'+1)%10
	wantAuthError(t, verify(e, s.AccessToken, f.ID, ch, string(wrong)), 422, "mfa_verification_failed")
	wantAuthError(t, verify(e, s.AccessToken, f.ID, ch, f.codeAt(3)), 422, "mfa_verification_failed")
	wantAuthError(t, verify(e, s.AccessToken, f.ID, uuid.NewString(), f.codeAt(0)), 422, "mfa_factor_not_found")
	wantAuthError(t, verify(e, s.AccessToken, f.ID, "not-a-uuid", f.codeAt(0)), 422, "mfa_factor_not_found")
	wantAuthError(t, verify(e, s.AccessToken, uuid.NewString(), ch, f.codeAt(0)), 404, "mfa_factor_not_found")
	wantAuthError(t, verify(e, s.AccessToken, f.ID, ch, ""), 400, "validation_failed")
	// A challenge answered from another address.
	wantAuthError(t, verify(e, s.AccessToken, f.ID, ch, f.codeAt(0), "X-Test-Client-IP", "203.0.113.9"), 422, "mfa_ip_address_mismatch")
	// An expired challenge.
	old := challenge(t, e, s.AccessToken, f.ID)
	if _, err := e.Exec(context.Background(), "update auth.mfa_challenges set created_at = now() - interval '6 minutes' where id = $1", old); err != nil {
		t.Fatal(err)
	}
	wantAuthError(t, verify(e, s.AccessToken, f.ID, old, f.codeAt(0)), 422, "mfa_challenge_expired")

	// The right code.
	r := verify(e, s.AccessToken, f.ID, ch, f.codeAt(0))
	if r.Status != 200 {
		t.Fatalf("verify: %d %s", r.Status, r.Body)
	}
	var up testenv.Session
	r.Decode(t, &up)
	_, claims = decodeJWT(t, up.AccessToken)
	amr, _ := claims["amr"].([]any)
	if claims["aal"] != "aal2" || claims["session_id"] == nil || len(amr) != 2 ||
		amr[0].(map[string]any)["method"] != "totp" || amr[1].(map[string]any)["method"] != "password" {
		t.Errorf("aal2 claims: aal %v amr %v", claims["aal"], claims["amr"])
	}
	_, oldClaims := decodeJWT(t, s.AccessToken)
	if claims["session_id"] != oldClaims["session_id"] {
		t.Error("verify started another session instead of raising this one")
	}
	// A challenge is answered once, and a code once: the same code on a new
	// challenge in the same step is a replay.
	wantAuthError(t, verify(e, up.AccessToken, f.ID, ch, f.codeAt(0)), 422, "mfa_ip_address_mismatch")
	wantAuthError(t, verify(e, up.AccessToken, f.ID, challenge(t, e, up.AccessToken, f.ID), f.codeAt(0)), 422, "mfa_verification_failed")

	u = e.Do("GET", "/auth/v1/user", nil, testenv.Bearer(up.AccessToken)...).JSON(t)
	if fs, _ := u["factors"].([]any); len(fs) != 1 || fs[0].(map[string]any)["status"] != "verified" ||
		fs[0].(map[string]any)["friendly_name"] != "phone app" || u["aal"] != "aal2" {
		t.Errorf("user after verify: factors %v aal %v", u["factors"], u["aal"])
	}
	// The session's refresh keeps aal2; its old refresh token is spent (a
	// reuse ends the session, so it is tried last); the user's other aal1
	// session has ended.
	rr := e.Do("POST", "/auth/v1/token?grant_type=refresh_token", map[string]any{"refresh_token": up.RefreshToken})
	var refreshed testenv.Session
	rr.Decode(t, &refreshed)
	if _, c := decodeJWT(t, refreshed.AccessToken); rr.Status != 200 || c["aal"] != "aal2" {
		t.Errorf("refresh of an aal2 session: %d aal %v", rr.Status, c["aal"])
	}
	if r := e.Do("GET", "/auth/v1/user", nil, testenv.Bearer(other.AccessToken)...); r.Status != 401 {
		t.Errorf("the user's other aal1 session: %d", r.Status)
	}
	wantAuthError(t, e.Do("POST", "/auth/v1/token?grant_type=refresh_token", map[string]any{"refresh_token": s.RefreshToken},
		"X-Supabase-Api-Version", mfaAPIVersion), 400, "refresh_token_already_used")
}

// Wrong codes are limited per factor: after five in five minutes even the
// right code is refused with 429 until the window has passed.
func TestTOTPAttemptsLimited(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := e.SignUp("bea@clinic.example")
	f := enroll(t, e, s.AccessToken, "")
	ch := challenge(t, e, s.AccessToken, f.ID)
	for i := range 5 {
		r := verify(e, s.AccessToken, f.ID, ch, fmt.Sprintf("%06d", (i*7919)%1000000))
		if r.Status != 422 {
			t.Fatalf("wrong code %d: %d %s", i, r.Status, r.Body)
		}
	}
	r := verify(e, s.AccessToken, f.ID, ch, f.codeAt(0))
	wantAuthError(t, r, 429, "over_request_rate_limit")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Once the window has passed, the right code works.
	if _, err := e.Exec(context.Background(), "update auth.mfa_factors set failed_since = now() - interval '6 minutes' where id = $1", f.ID); err != nil {
		t.Fatal(err)
	}
	if r := verify(e, s.AccessToken, f.ID, ch, f.codeAt(0)); r.Status != 200 {
		t.Errorf("after the window: %d %s", r.Status, r.Body)
	}
}

// Unenrolling a verified factor needs aal2; it lowers the sessions it raised.
// Enrolling a second factor needs aal2 too, and names are unique; other
// factor types are refused as GoTrue refuses disabled ones.
func TestTOTPUnenrollAndEnrollRules(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := e.SignUp("cal@clinic.example")
	var f factor
	aal2 := passMFA(t, e, s.AccessToken, &f, 0)
	low := e.SignIn("cal@clinic.example")
	api := func(method, path string, body any, tok string) *testenv.Response {
		return e.Do(method, path, body, append(testenv.Bearer(tok), "X-Supabase-Api-Version", mfaAPIVersion)...)
	}
	wantAuthError(t, api("POST", "/auth/v1/factors", map[string]any{"factor_type": "totp", "friendly_name": "second"}, low.AccessToken), 403, "insufficient_aal")
	wantAuthError(t, api("DELETE", "/auth/v1/factors/"+f.ID, nil, low.AccessToken), 422, "insufficient_aal")
	wantAuthError(t, api("POST", "/auth/v1/factors", map[string]any{"factor_type": "phone", "phone": "+15551234567"}, aal2.AccessToken), 422, "mfa_phone_enroll_not_enabled")
	wantAuthError(t, api("POST", "/auth/v1/factors", map[string]any{"factor_type": "webauthn"}, aal2.AccessToken), 422, "mfa_webauthn_enroll_not_enabled")
	wantAuthError(t, api("POST", "/auth/v1/factors", map[string]any{"factor_type": "sms"}, aal2.AccessToken), 400, "validation_failed")
	g := enroll(t, e, aal2.AccessToken, "backup")
	wantAuthError(t, api("POST", "/auth/v1/factors", map[string]any{"factor_type": "totp", "friendly_name": "backup"}, aal2.AccessToken), 422, "mfa_factor_name_conflict")
	// Another user cannot see or touch the factor.
	stranger := e.SignUp("dee@clinic.example")
	wantAuthError(t, api("POST", "/auth/v1/factors/"+f.ID+"/challenge", nil, stranger.AccessToken), 404, "mfa_factor_not_found")
	wantAuthError(t, api("DELETE", "/auth/v1/factors/"+f.ID, nil, stranger.AccessToken), 404, "mfa_factor_not_found")
	// An unverified factor can go at aal1.
	if r := api("DELETE", "/auth/v1/factors/"+g.ID, nil, low.AccessToken); r.Status != 200 || r.JSON(t)["id"] != g.ID {
		t.Errorf("unenroll unverified at aal1: %d %s", r.Status, r.Body)
	}
	if r := api("DELETE", "/auth/v1/factors/"+f.ID, nil, aal2.AccessToken); r.Status != 200 {
		t.Fatalf("unenroll at aal2: %d %s", r.Status, r.Body)
	}
	// The session it raised is aal1 again from its next refresh.
	rr := e.Do("POST", "/auth/v1/token?grant_type=refresh_token", map[string]any{"refresh_token": aal2.RefreshToken})
	var s2 testenv.Session
	rr.Decode(t, &s2)
	if _, c := decodeJWT(t, s2.AccessToken); rr.Status != 200 || c["aal"] != "aal1" {
		t.Errorf("after unenroll: %d aal %v amr %v", rr.Status, c["aal"], c["amr"])
	}
	if u := e.Do("GET", "/auth/v1/user", nil, testenv.Bearer(s2.AccessToken)...).JSON(t); u["factors"] != nil {
		t.Errorf("factors after unenrolling all: %v", u["factors"])
	}
}

// mfaRouteKind says how an /api route must answer an aal1 session of an org
// that requires MFA: "tenant" routes 403 mfa_required; the routes that give
// a user an org or another one stay open; operator and public routes are not
// the org's.
func mfaRouteKind(pattern string) string {
	switch {
	case strings.Contains(pattern, "/api/webhooks/"), pattern == "GET /api/openapi.json":
		return "public"
	case strings.Contains(pattern, "/api/admin/"), strings.Contains(pattern, "/api/monitoring/"):
		return "operator"
	}
	switch pattern {
	case "GET /api/me", "POST /api/orgs", "POST /api/orgs/{orgId}/switch", "POST /api/invitations/accept":
		return "any org"
	}
	return "tenant"
}

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

// walkAPI sends every /api route of the router's own table once with tok and
// returns each pattern's answer.
func walkAPI(t *testing.T, e *testenv.Env, tok, orgID string) map[string]*testenv.Response {
	t.Helper()
	out := map[string]*testenv.Response{}
	for _, pattern := range e.Handler.Routes() {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok || !strings.HasPrefix(path, "/api/") || path == "/api/" || mfaRouteKind(pattern) == "public" {
			continue
		}
		path = pathParam.ReplaceAllStringFunc(path, func(p string) string {
			if p == "{orgId}" {
				return orgID
			}
			return uuid.NewString()
		})
		var body any
		if method == "POST" || method == "PATCH" {
			body = map[string]any{}
		}
		out[pattern] = e.DoFor(t, method, path, body, testenv.Bearer(tok)...)
	}
	return out
}

// An org that requires MFA answers 403 mfa_required on every tenant route
// to an aal1 session, walking the router's route table; the routes that get
// a user an org stay open. After verify, the same session's aal2 token gets
// through; turning the policy off lets aal1 in again. Only an owner at aal2
// may turn it on.
func TestRequireMFABlocksEveryTenantRoute(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	owner := e.SignUp("owner@clinic.example")
	org := owner.OrgID()
	admin := e.AddMember(owner, "admin@clinic.example", "admin")
	member := e.AddMember(owner, "member@clinic.example", "member")

	wantAPI := func(r *testenv.Response, status int, code string) {
		t.Helper()
		if r.Status != status || (code != "" && r.JSON(t)["code"] != code) {
			t.Errorf("got %d %s, want %d %s", r.Status, r.Body, status, code)
		}
	}
	wantAPI(e.Do("PATCH", "/api/org", map[string]any{"require_mfa": true}, testenv.Bearer(admin.AccessToken)...), 403, "forbidden")
	wantAPI(e.Do("PATCH", "/api/org", map[string]any{"require_mfa": true}, testenv.Bearer(owner.AccessToken)...), 403, "insufficient_aal")
	var ownerFactor factor
	ownerAAL2 := passMFA(t, e, owner.AccessToken, &ownerFactor, 0)
	r := e.Do("PATCH", "/api/org", map[string]any{"require_mfa": true}, testenv.Bearer(ownerAAL2.AccessToken)...)
	if r.Status != 200 || r.JSON(t)["require_mfa"] != true {
		t.Fatalf("require MFA: %d %s", r.Status, r.Body)
	}
	var audited int
	if err := e.QueryRow(context.Background(), "select count(*) from audit_log where org_id = $1 and action = 'mfa_policy_changed'", org).Scan(&audited); err != nil || audited != 1 {
		t.Errorf("policy change audited %d times (%v)", audited, err)
	}

	// The member's token was verified (and cached) before the change: the
	// change reaches it anyway.
	blocked := walkAPI(t, e, member.AccessToken, org)
	if len(blocked) < 20 {
		t.Fatalf("walked only %d /api routes", len(blocked))
	}
	for pattern, r := range blocked {
		isMFA := r.Status == http.StatusForbidden && strings.Contains(string(r.Body), `"mfa_required"`)
		switch kind := mfaRouteKind(pattern); kind {
		case "tenant":
			if !isMFA {
				t.Errorf("%s at aal1: %d %s, want 403 mfa_required", pattern, r.Status, r.Body)
			}
		default:
			if isMFA {
				t.Errorf("%s (%s) at aal1 answered mfa_required", pattern, kind)
			}
		}
	}
	if r := e.Do("GET", "/api/org", nil, testenv.Bearer(ownerAAL2.AccessToken)...); r.Status != 200 {
		t.Errorf("the owner's aal2 session: %d %s", r.Status, r.Body)
	}

	// The member passes MFA: the same walk answers no mfa_required.
	var mf factor
	memberAAL2 := passMFA(t, e, member.AccessToken, &mf, 0)
	for pattern, r := range walkAPI(t, e, memberAAL2.AccessToken, org) {
		if r.Status == http.StatusForbidden && strings.Contains(string(r.Body), `"mfa_required"`) {
			t.Errorf("%s at aal2: mfa_required", pattern)
		}
	}
	if r := e.Do("GET", "/api/calls", nil, testenv.Bearer(memberAAL2.AccessToken)...); r.Status != 200 {
		t.Errorf("calls at aal2: %d %s", r.Status, r.Body)
	}

	// Policy off: aal1 sessions work again (the admin never enrolled).
	if r := e.Do("PATCH", "/api/org", map[string]any{"require_mfa": false}, testenv.Bearer(ownerAAL2.AccessToken)...); r.Status != 200 || r.JSON(t)["require_mfa"] != false {
		t.Fatalf("policy off: %d %s", r.Status, r.Body)
	}
	if r := e.Do("GET", "/api/calls", nil, testenv.Bearer(admin.AccessToken)...); r.Status != 200 {
		t.Errorf("aal1 after the policy is off: %d %s", r.Status, r.Body)
	}
}
