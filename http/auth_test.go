package http_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/auth/token"
	voxhttp "github.com/voxanne/voxanne/http"
	"github.com/voxanne/voxanne/internal/testenv"
	"github.com/voxanne/voxanne/internal/testsmtp"
	"github.com/voxanne/voxanne/mailer"
)

const (
	apiVersionHeader = "X-Supabase-Api-Version"
	apiVersion       = "2024-01-01"
	// newPassword is a second strong password for password changes.
	newPassword = "Vx-new-staple-lantern-42"
	// maxBody is the documented body limit of /auth/v1 (1 MiB).
	maxBody = 1 << 20
)

var ctx = context.Background()

// ---- helpers ----

// request sends a request to e's server and checks what every response must
// carry (X-Request-Id). body is JSON-encoded unless it is a string or []byte;
// headers are name, value pairs and override the JSON Content-Type.
func request(t testing.TB, e *testenv.Env, method, path string, body any, headers ...string) *testenv.Response {
	t.Helper()
	return e.DoFor(t, method, path, body, headers...)
}

// wantStatus fails the test unless r has status.
func wantStatus(t testing.TB, r *testenv.Response, status int, what string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.Status, status, r.Body)
	}
}

// expectAuthError sends the request twice, with and without the API version
// header, and checks both of GoTrue's error formats (API.md §3):
// {"code":"<error_code>","message"} with the header echoed, and the legacy
// {"code":<status>,"error_code","msg"}. It returns the newer body.
func expectAuthError(t testing.TB, e *testenv.Env, method, path string, body any, status int, code string, headers ...string) map[string]any {
	t.Helper()
	checkCommon := func(format string, r *testenv.Response) {
		t.Helper()
		if r.Status != status {
			t.Errorf("%s %s (%s format): status %d, want %d: %s", method, path, format, r.Status, status, r.Body)
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %s (%s format): Content-Type %q", method, path, format, ct)
		}
		if status == http.StatusUnauthorized && r.Header.Get("WWW-Authenticate") != "Bearer" {
			t.Errorf("%s %s (%s format): WWW-Authenticate %q, want Bearer", method, path, format, r.Header.Get("WWW-Authenticate"))
		}
		if status == http.StatusTooManyRequests {
			if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 {
				t.Errorf("%s %s (%s format): Retry-After %q, want a positive number of seconds", method, path, format, r.Header.Get("Retry-After"))
			}
		}
	}
	versioned := append([]string{apiVersionHeader, apiVersion}, headers...)
	r := request(t, e, method, path, body, versioned...)
	checkCommon("2024-01-01", r)
	modern := r.JSON(t)
	if got := r.Header.Get(apiVersionHeader); got != apiVersion {
		t.Errorf("%s %s: %s echoed as %q, want %q", method, path, apiVersionHeader, got, apiVersion)
	}
	if modern["code"] != code {
		t.Errorf("%s %s: code %v, want %q: %s", method, path, modern["code"], code, r.Body)
	}
	if msg, _ := modern["message"].(string); msg == "" {
		t.Errorf("%s %s: no message: %s", method, path, r.Body)
	}
	for _, k := range []string{"error_code", "msg"} {
		if _, ok := modern[k]; ok {
			t.Errorf("%s %s: versioned error has the legacy member %q: %s", method, path, k, r.Body)
		}
	}

	r = request(t, e, method, path, body, headers...)
	checkCommon("legacy", r)
	legacy := r.JSON(t)
	if got := r.Header.Get(apiVersionHeader); got != "" {
		t.Errorf("%s %s: legacy response carries %s %q", method, path, apiVersionHeader, got)
	}
	if legacy["code"] != float64(status) {
		t.Errorf("%s %s: legacy code %v, want %d: %s", method, path, legacy["code"], status, r.Body)
	}
	if legacy["error_code"] != code {
		t.Errorf("%s %s: legacy error_code %v, want %q: %s", method, path, legacy["error_code"], code, r.Body)
	}
	if msg, _ := legacy["msg"].(string); msg == "" {
		t.Errorf("%s %s: legacy error has no msg: %s", method, path, r.Body)
	}
	if _, ok := legacy["message"]; ok {
		t.Errorf("%s %s: legacy error has the versioned member message: %s", method, path, r.Body)
	}
	return modern
}

// session is the session shape of API.md §3.
type session struct {
	AccessToken  string         `json:"access_token"`
	TokenType    string         `json:"token_type"`
	ExpiresIn    int64          `json:"expires_in"`
	ExpiresAt    int64          `json:"expires_at"`
	RefreshToken string         `json:"refresh_token"`
	User         map[string]any `json:"user"`
}

func (s *session) userID() string { id, _ := s.User["id"].(string); return id }

func (s *session) bearer() []string { return testenv.Bearer(s.AccessToken) }

func decodeSession(t testing.TB, r *testenv.Response, what string) *session {
	t.Helper()
	wantStatus(t, r, http.StatusOK, what)
	var s session
	r.Decode(t, &s)
	if s.AccessToken == "" || s.RefreshToken == "" {
		t.Fatalf("%s: not a session: %s", what, r.Body)
	}
	return &s
}

func signUp(t testing.TB, e *testenv.Env, email string) *session {
	t.Helper()
	r := request(t, e, "POST", "/auth/v1/signup", map[string]any{"email": email, "password": testenv.Password})
	return decodeSession(t, r, "sign up "+email)
}

func signIn(t testing.TB, e *testenv.Env, email, password string) *session {
	t.Helper()
	r := request(t, e, "POST", "/auth/v1/token?grant_type=password", map[string]any{"email": email, "password": password})
	return decodeSession(t, r, "sign in "+email)
}

func refresh(t testing.TB, e *testenv.Env, refreshToken string, headers ...string) *testenv.Response {
	t.Helper()
	return request(t, e, "POST", "/auth/v1/token?grant_type=refresh_token", map[string]any{"refresh_token": refreshToken}, headers...)
}

func getUser(t testing.TB, e *testenv.Env, accessToken string) *testenv.Response {
	t.Helper()
	return request(t, e, "GET", "/auth/v1/user", nil, testenv.Bearer(accessToken)...)
}

// decodeJWT returns a token's header and claims without verifying it.
func decodeJWT(t testing.TB, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	for i, v := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("token part %d: %v", i, err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("token part %d: %v: %s", i, err, b)
		}
	}
	return header, claims
}

// tokenClaims decodes an access token's claims into token.Claims.
func tokenClaims(t testing.TB, tok string) token.Claims {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c token.Claims
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func isUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

func checkTime(t testing.TB, what string, v any) {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Errorf("%s = %v, want an RFC 3339 time", what, v)
		return
	}
	if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
		t.Errorf("%s = %q: %v", what, s, err)
	}
}

// checkUser checks the user shape of API.md §3.
func checkUser(t testing.TB, u map[string]any, email string, confirmed bool) {
	t.Helper()
	if id, _ := u["id"].(string); !isUUID(id) {
		t.Errorf("user id %v is not a lowercase UUID", u["id"])
	}
	for k, want := range map[string]any{"aud": "authenticated", "role": "authenticated", "email": email, "phone": "", "is_anonymous": false} {
		if v, ok := u[k]; !ok || v != want {
			t.Errorf("user %s = %#v (present %v), want %#v", k, v, ok, want)
		}
	}
	// One "email" identity, as GoTrue lists it for email users.
	ids, _ := u["identities"].([]any)
	if len(ids) != 1 {
		t.Errorf("user identities = %#v, want one email identity", u["identities"])
	} else {
		id, _ := ids[0].(map[string]any)
		data, _ := id["identity_data"].(map[string]any)
		if id["provider"] != "email" || id["user_id"] != u["id"] || id["id"] != u["id"] || !isUUID(fmt.Sprint(id["identity_id"])) ||
			data["email"] != email || data["sub"] != u["id"] || data["email_verified"] != confirmed {
			t.Errorf("user identity = %#v", id)
		}
	}
	if _, ok := u["user_metadata"].(map[string]any); !ok {
		t.Errorf("user user_metadata = %#v, want an object", u["user_metadata"])
	}
	app, _ := u["app_metadata"].(map[string]any)
	if app["provider"] != "email" || !slices.Equal(toStrings(app["providers"]), []string{"email"}) {
		t.Errorf("app_metadata provider/providers = %v/%v, want email/[email]", app["provider"], app["providers"])
	}
	if org, _ := app["org_id"].(string); !isUUID(org) {
		t.Errorf("app_metadata.org_id = %#v, want a UUID", app["org_id"])
	}
	if app["org_role"] != "owner" {
		t.Errorf("app_metadata.org_role = %#v, want owner", app["org_role"])
	}
	checkTime(t, "created_at", u["created_at"])
	checkTime(t, "updated_at", u["updated_at"])
	if confirmed {
		checkTime(t, "email_confirmed_at", u["email_confirmed_at"])
		checkTime(t, "confirmed_at", u["confirmed_at"])
	} else {
		for _, k := range []string{"email_confirmed_at", "confirmed_at"} {
			if v := u[k]; v != nil {
				t.Errorf("unconfirmed user has %s = %v", k, v)
			}
		}
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// checkSession checks the session shape and its access token (API.md §3).
func checkSession(t testing.TB, e *testenv.Env, s *session, email string) {
	t.Helper()
	if s.TokenType != "bearer" {
		t.Errorf("token_type = %q, want bearer", s.TokenType)
	}
	if s.ExpiresIn < 3590 || s.ExpiresIn > 3600 {
		t.Errorf("expires_in = %d, want about 3600", s.ExpiresIn)
	}
	if d := s.ExpiresAt - time.Now().Add(time.Hour).Unix(); d < -60 || d > 60 {
		t.Errorf("expires_at = %d, %d s away from now + 1 h", s.ExpiresAt, d)
	}
	if s.RefreshToken == s.AccessToken {
		t.Error("refresh token equals access token")
	}
	checkUser(t, s.User, email, true)
	checkTime(t, "last_sign_in_at", s.User["last_sign_in_at"])

	h, c := decodeJWT(t, s.AccessToken)
	if h["alg"] != "ES256" || h["typ"] != "JWT" {
		t.Errorf("token header = %v, want alg ES256, typ JWT", h)
	}
	if kid, _ := h["kid"].(string); kid == "" {
		t.Errorf("token header has no kid: %v", h)
	}
	for k, want := range map[string]any{"iss": e.Issuer, "sub": s.userID(), "aud": "authenticated", "role": "authenticated",
		"email": email, "phone": "", "is_anonymous": false, "aal": "aal1"} {
		if c[k] != want {
			t.Errorf("claim %s = %#v, want %#v", k, c[k], want)
		}
	}
	if sid, _ := c["session_id"].(string); !isUUID(sid) {
		t.Errorf("claim session_id = %#v, want a UUID", c["session_id"])
	}
	exp, _ := c["exp"].(float64)
	iat, _ := c["iat"].(float64)
	if int64(exp) != s.ExpiresAt || exp-iat != 3600 {
		t.Errorf("claims exp/iat = %v/%v, want exp = expires_at %d and a 1 h lifetime", exp, iat, s.ExpiresAt)
	}
	if amr, _ := c["amr"].([]any); len(amr) == 0 {
		t.Errorf("claim amr = %#v, want at least one entry", c["amr"])
	}
	capp, _ := c["app_metadata"].(map[string]any)
	uapp, _ := s.User["app_metadata"].(map[string]any)
	if capp["org_id"] == nil || capp["org_id"] != uapp["org_id"] || capp["org_role"] != uapp["org_role"] {
		t.Errorf("token app_metadata %v disagrees with the user's %v", capp, uapp)
	}
	if _, ok := c["user_metadata"].(map[string]any); !ok {
		t.Errorf("claim user_metadata = %#v, want an object", c["user_metadata"])
	}
}

// mailLink returns the verify link of a mail body and its token_hash and type.
func mailLink(t testing.TB, body string) (link, tokenHash, kind string) {
	t.Helper()
	link = regexp.MustCompile(`https?://\S+/auth/v1/verify\?\S+`).FindString(body)
	if link == "" {
		t.Fatalf("no verify link in the mail:\n%s", body)
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatalf("link %q: %v", link, err)
	}
	tokenHash, kind = u.Query().Get("token_hash"), u.Query().Get("type")
	if tokenHash == "" {
		t.Fatalf("link %q has no token_hash", link)
	}
	return link, tokenHash, kind
}

func sha(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func exec(t testing.TB, e *testenv.Env, sql string, args ...any) int64 {
	t.Helper()
	tag, err := e.Exec(ctx, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return tag.RowsAffected()
}

func queryInt(t testing.TB, e *testenv.Env, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := e.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func boolPtr(b bool) *bool { return &b }

// mailRecorder is a voxanne.Mailer that keeps every mail's body by recipient.
type mailRecorder struct {
	mu    sync.Mutex
	mails map[string][]string
}

func (m *mailRecorder) Send(_ context.Context, mail voxanne.Mail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mails == nil {
		m.mails = map[string][]string{}
	}
	m.mails[mail.To] = append(m.mails[mail.To], mail.Body)
	return nil
}

func (m *mailRecorder) bodies(to string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.mails[to])
}

// wait returns the bodies of the mails to `to` once there are n (mails are sent
// in the background), failing after 5 s or when there are more.
func (m *mailRecorder) wait(t testing.TB, to string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b := m.bodies(to)
		if len(b) > n {
			t.Fatalf("%d mails to %s, want %d", len(b), to, n)
		}
		if len(b) == n {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mails to %s after 5 s, want %d", len(b), to, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ---- sign-up ----

func TestSignUp(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	r := request(t, e, "POST", "/auth/v1/signup", map[string]any{"email": "  Alice@Example.COM ", "password": testenv.Password,
		"data": map[string]any{"org_name": "Acme Calls", "full_name": "Alice"}})
	s := decodeSession(t, r, "sign up")
	checkSession(t, e, s, "alice@example.com")
	meta, _ := s.User["user_metadata"].(map[string]any)
	if meta["full_name"] != "Alice" || meta["org_name"] != "Acme Calls" {
		t.Errorf("user_metadata = %v, want the sign-up data", meta)
	}
	_, c := decodeJWT(t, s.AccessToken)
	if cm, _ := c["user_metadata"].(map[string]any); cm["full_name"] != "Alice" {
		t.Errorf("token user_metadata = %v, want the sign-up data", cm)
	}
	// The trigger made the org, named from data.org_name, with the user as owner.
	org, _ := s.User["app_metadata"].(map[string]any)["org_id"].(string)
	var name, role string
	err := e.QueryRow(ctx, `select o.name, m.role from organizations o join memberships m on m.org_id = o.id
		where o.id = $1 and m.user_id = $2`, org, s.userID()).Scan(&name, &role)
	if err != nil || name != "Acme Calls" || role != "owner" {
		t.Errorf("org %s: name %q, role %q, err %v; want Acme Calls, owner", org, name, role, err)
	}
	// The token works at once.
	u := getUser(t, e, s.AccessToken)
	wantStatus(t, u, http.StatusOK, "GET /user")
	checkUser(t, u.JSON(t), "alice@example.com", true)
	if got := u.JSON(t)["id"]; got != s.userID() {
		t.Errorf("GET /user id = %v, want %s", got, s.userID())
	}
}

func TestSignUpErrors(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	signUp(t, e, "taken@example.com")
	big := `{"email":"big@example.com","password":"` + strings.Repeat("a", maxBody) + `"}`
	tests := []struct {
		name    string
		body    any
		headers []string
		status  int
		code    string
		reasons []string // weak_password.reasons that must be present
	}{
		{name: "existing email", body: map[string]any{"email": "taken@example.com", "password": testenv.Password},
			status: 422, code: "user_already_exists"},
		{name: "existing email in another case", body: map[string]any{"email": "TAKEN@Example.com", "password": testenv.Password},
			status: 422, code: "user_already_exists"},
		{name: "short password", body: map[string]any{"email": "short@example.com", "password": "Ab1!"},
			status: 422, code: "weak_password", reasons: []string{"length"}},
		{name: "empty password", body: map[string]any{"email": "empty@example.com", "password": ""},
			status: 422, code: "weak_password", reasons: []string{"length"}},
		{name: "common password", body: map[string]any{"email": "common@example.com", "password": "password"},
			status: 422, code: "weak_password", reasons: []string{"pwned"}},
		{name: "common password in capitals", body: map[string]any{"email": "common2@example.com", "password": "Password1"},
			status: 422, code: "weak_password", reasons: []string{"pwned"}},
		{name: "password over 1024 bytes", body: map[string]any{"email": "long@example.com", "password": strings.Repeat("Vx9-", 257)},
			status: 422, code: "weak_password", reasons: []string{"length"}},
		{name: "email over 254 characters", body: map[string]any{"email": strings.Repeat("a", 250) + "@example.com", "password": testenv.Password},
			status: 400, code: "validation_failed"},
		{name: "bad email", body: map[string]any{"email": "not-an-email", "password": testenv.Password},
			status: 400, code: "validation_failed"},
		{name: "email without domain dot", body: map[string]any{"email": "a@localhost", "password": testenv.Password},
			status: 400, code: "validation_failed"},
		{name: "display-name email", body: map[string]any{"email": "Eve <eve@example.com>", "password": testenv.Password},
			status: 400, code: "validation_failed"},
		{name: "bad JSON", body: `{"email": "x@example.com", "password": `, status: 400, code: "bad_json"},
		{name: "not JSON content type", body: `email=x@example.com`, headers: []string{"Content-Type", "application/x-www-form-urlencoded"},
			status: 400, code: "bad_json"},
		{name: "body over 1 MiB", body: big, status: 413, code: "request_entity_too_large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := queryInt(t, e, "select count(*) from auth.users")
			body := expectAuthError(t, e, "POST", "/auth/v1/signup", tc.body, tc.status, tc.code, tc.headers...)
			if tc.reasons != nil {
				wp, _ := body["weak_password"].(map[string]any)
				got := toStrings(wp["reasons"])
				for _, want := range tc.reasons {
					if !slices.Contains(got, want) {
						t.Errorf("weak_password.reasons = %q, want it to contain %q (body %v)", got, want, body)
					}
				}
			}
			if after := queryInt(t, e, "select count(*) from auth.users"); after != before {
				t.Errorf("a failed sign-up changed the user count from %d to %d", before, after)
			}
		})
	}
}

func TestSignUpDisabled(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{DisableSignup: true})
	expectAuthError(t, e, "POST", "/auth/v1/signup", map[string]any{"email": "new@example.com", "password": testenv.Password},
		422, "signup_disabled")
	if n := queryInt(t, e, "select count(*) from auth.users"); n != 0 {
		t.Errorf("%d users exist after a disabled sign-up", n)
	}
}

// Concurrent sign-ups of one address: one wins, the others get
// user_already_exists (never a 5xx), and only one organization is made.
func TestSignUpConcurrent(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	const n = 10
	statuses := make([]int, n)
	codes := make([]any, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	body, _ := json.Marshal(map[string]string{"email": "race@example.com", "password": testenv.Password})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := http.Post(e.URL+"/auth/v1/signup", "application/json", bytes.NewReader(body))
			if err != nil {
				codes[i] = err.Error()
				return
			}
			defer resp.Body.Close()
			var m map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&m)
			statuses[i], codes[i] = resp.StatusCode, m["error_code"]
		}()
	}
	close(start)
	wg.Wait()
	won := 0
	for i := range n {
		switch {
		case statuses[i] == 200:
			won++
		case statuses[i] == 429 && codes[i] == "over_request_rate_limit":
			// Password hashing is bounded: on a loaded machine a burst may be
			// shed with 429 (TestPasswordHashingBusyAnswers429); what matters
			// here is that exactly one sign-up wins.
		case statuses[i] != 422 || codes[i] != "user_already_exists":
			t.Errorf("sign-up %d: %d %v, want 200, 422 user_already_exists or 429", i, statuses[i], codes[i])
		}
	}
	if won != 1 {
		t.Errorf("%d sign-ups succeeded, want 1", won)
	}
	if c := queryInt(t, e, "select count(*) from auth.users"); c != 1 {
		t.Errorf("%d users, want 1", c)
	}
	if c := queryInt(t, e, "select count(*) from organizations"); c != 1 {
		t.Errorf("%d organizations, want 1", c)
	}
}

// Without autoconfirm, sign-up returns the bare user and mails a link whose
// token_hash confirms the address once.
func TestSignUpConfirmation(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{Autoconfirm: boolPtr(false)})
	const email = "unconfirmed@example.com"
	r := request(t, e, "POST", "/auth/v1/signup", map[string]any{"email": email, "password": testenv.Password})
	wantStatus(t, r, http.StatusOK, "sign up")
	user := r.JSON(t)
	for _, k := range []string{"access_token", "refresh_token", "user"} {
		if _, ok := user[k]; ok {
			t.Errorf("sign-up without autoconfirm returned %s: %s", k, r.Body)
		}
	}
	checkUser(t, user, email, false)

	m := e.Mail.WaitFor(t, email)
	_, tokenHash, kind := mailLink(t, m.Body)
	if kind != "signup" {
		t.Errorf("link type = %q, want signup", kind)
	}
	if strings.Contains(m.Body, testenv.Password) {
		t.Error("the confirmation mail contains the password")
	}

	signInBody := map[string]any{"email": email, "password": testenv.Password}
	expectAuthError(t, e, "POST", "/auth/v1/token?grant_type=password", signInBody, 400, "email_not_confirmed")
	// A wrong password does not learn whether the address is confirmed.
	expectAuthError(t, e, "POST", "/auth/v1/token?grant_type=password", map[string]any{"email": email, "password": "Wrong-password-123"},
		400, "invalid_credentials")

	// A recovery-type verification cannot use a signup token.
	expectAuthError(t, e, "POST", "/auth/v1/verify", map[string]any{"type": "recovery", "token_hash": tokenHash}, 403, "otp_expired")

	s := decodeSession(t, request(t, e, "POST", "/auth/v1/verify", map[string]any{"type": "signup", "token_hash": tokenHash}), "verify")
	checkSession(t, e, s, email)
	if s.userID() != user["id"] {
		t.Errorf("verified user %s, signed up %v", s.userID(), user["id"])
	}
	wantStatus(t, getUser(t, e, s.AccessToken), http.StatusOK, "GET /user after verify")
	checkSession(t, e, signIn(t, e, email, testenv.Password), email)

	// Single use.
	expectAuthError(t, e, "POST", "/auth/v1/verify", map[string]any{"type": "signup", "token_hash": tokenHash}, 403, "otp_expired")
}

func TestSignUpConfirmationExpired(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{Autoconfirm: boolPtr(false)})
	const email = "late@example.com"
	wantStatus(t, request(t, e, "POST", "/auth/v1/signup", map[string]any{"email": email, "password": testenv.Password}), 200, "sign up")
	_, tokenHash, _ := mailLink(t, e.Mail.WaitFor(t, email).Body)
	if n := exec(t, e, "update auth.one_time_tokens set expires_at = now() - interval '1 second' where email = $1", email); n != 1 {
		t.Fatalf("expired %d tokens, want 1", n)
	}
	expectAuthError(t, e, "POST", "/auth/v1/verify", map[string]any{"type": "signup", "token_hash": tokenHash}, 403, "otp_expired")
	expectAuthError(t, e, "POST", "/auth/v1/token?grant_type=password", map[string]any{"email": email, "password": testenv.Password},
		400, "email_not_confirmed")
}

// ---- password sign-in ----

func TestPasswordSignIn(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	up := signUp(t, e, "bob@example.com")
	s := signIn(t, e, "BOB@example.com", testenv.Password)
	checkSession(t, e, s, "bob@example.com")
	if s.userID() != up.userID() {
		t.Errorf("signed in as %s, signed up as %s", s.userID(), up.userID())
	}
	if s.AccessToken == up.AccessToken || s.RefreshToken == up.RefreshToken {
		t.Error("sign-in reused the sign-up session's tokens")
	}
	_, c1 := decodeJWT(t, up.AccessToken)
	_, c2 := decodeJWT(t, s.AccessToken)
	if c1["session_id"] == c2["session_id"] {
		t.Error("sign-in did not start a new session")
	}

	const path = "/auth/v1/token?grant_type=password"
	wrong := expectAuthError(t, e, "POST", path, map[string]any{"email": "bob@example.com", "password": "Wrong-password-123"}, 400, "invalid_credentials")
	unknown := expectAuthError(t, e, "POST", path, map[string]any{"email": "nobody@example.com", "password": "Wrong-password-123"}, 400, "invalid_credentials")
	if fmt.Sprint(wrong) != fmt.Sprint(unknown) {
		t.Errorf("wrong password and unknown email answer differently:\n%v\n%v", wrong, unknown)
	}
	// The legacy bodies too, byte for byte.
	rw := request(t, e, "POST", path, map[string]any{"email": "bob@example.com", "password": "Wrong-password-123"})
	ru := request(t, e, "POST", path, map[string]any{"email": "nobody@example.com", "password": "Wrong-password-123"})
	if !bytes.Equal(rw.Body, ru.Body) || rw.Status != ru.Status {
		t.Errorf("wrong password and unknown email answer differently:\n%d %s\n%d %s", rw.Status, rw.Body, ru.Status, ru.Body)
	}
	expectAuthError(t, e, "POST", path, map[string]any{"email": "bob@example.com", "password": ""}, 400, "invalid_credentials")
	expectAuthError(t, e, "POST", "/auth/v1/token?grant_type=magic", map[string]any{}, 400, "validation_failed")
}

// A user imported from Supabase with a bcrypt hash signs in with the old
// password, and the hash is replaced by argon2id.
func TestSignInImportedBcryptUser(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	const email, pw = "imported@example.com", "old-supabase-Passw0rd"
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	exec(t, e, `insert into auth.users (email, encrypted_password, email_confirmed_at) values ($1, $2, now())`, email, string(hash))

	expectAuthError(t, e, "POST", "/auth/v1/token?grant_type=password", map[string]any{"email": email, "password": "not-the-Passw0rd"},
		400, "invalid_credentials")
	var stored string
	if err := e.QueryRow(ctx, "select encrypted_password from auth.users where email = $1", email).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != string(hash) {
		t.Fatalf("a failed sign-in changed the stored hash to %q", stored)
	}

	s := signIn(t, e, email, pw)
	checkSession(t, e, s, email)
	if err := e.QueryRow(ctx, "select encrypted_password from auth.users where email = $1", email).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "$argon2id$") {
		t.Errorf("stored hash after sign-in = %.12q..., want $argon2id$", stored)
	}
	checkSession(t, e, signIn(t, e, email, pw), email) // the new hash verifies
}

// ---- refresh ----

func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := signUp(t, e, "carol@example.com")

	r1 := decodeSession(t, refresh(t, e, s.RefreshToken), "refresh")
	checkSession(t, e, r1, "carol@example.com")
	if r1.RefreshToken == s.RefreshToken {
		t.Error("refresh returned the same refresh token")
	}
	if r1.AccessToken == s.AccessToken {
		t.Error("refresh returned the same access token")
	}
	_, c0 := decodeJWT(t, s.AccessToken)
	_, c1 := decodeJWT(t, r1.AccessToken)
	if c0["session_id"] != c1["session_id"] {
		t.Errorf("refresh changed the session: %v -> %v", c0["session_id"], c1["session_id"])
	}
	wantStatus(t, getUser(t, e, r1.AccessToken), http.StatusOK, "GET /user with the refreshed token")

	// A client that lost the response gets the same successor.
	r2 := decodeSession(t, refresh(t, e, s.RefreshToken), "re-present the spent token")
	if r2.RefreshToken != r1.RefreshToken {
		t.Errorf("re-presenting the spent token gave %q, want the successor %q", r2.RefreshToken, r1.RefreshToken)
	}
	wantStatus(t, getUser(t, e, r2.AccessToken), http.StatusOK, "GET /user with the re-issued token")

	r3 := decodeSession(t, refresh(t, e, r1.RefreshToken), "refresh the successor")
	if r3.RefreshToken == r1.RefreshToken || r3.RefreshToken == s.RefreshToken {
		t.Error("refreshing the successor did not rotate")
	}
}

func TestRefreshReuseAfterWindowRevokesSession(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := signUp(t, e, "dan@example.com")
	other := signIn(t, e, "dan@example.com", testenv.Password) // another session: untouched
	r1 := decodeSession(t, refresh(t, e, s.RefreshToken), "refresh")

	if n := exec(t, e, "update auth.refresh_tokens set spent_at = now() - interval '11 seconds' where token_hash = $1", sha(s.RefreshToken)); n != 1 {
		t.Fatalf("aged %d refresh tokens, want 1", n)
	}
	expectAuthError(t, e, "POST", "/auth/v1/token?grant_type=refresh_token", map[string]any{"refresh_token": s.RefreshToken},
		400, "refresh_token_already_used")

	// The whole session is revoked: its access tokens and the successor.
	for _, tok := range []string{s.AccessToken, r1.AccessToken} {
		expectAuthError(t, e, "GET", "/auth/v1/user", nil, 401, "session_not_found", testenv.Bearer(tok)...)
	}
	r := refresh(t, e, r1.RefreshToken)
	if code := r.JSON(t)["error_code"]; r.Status != 400 || (code != "refresh_token_already_used" && code != "session_not_found") {
		t.Errorf("successor of a reused token: %d %s, want 400 refresh_token_already_used or session_not_found", r.Status, r.Body)
	}
	// Only that session.
	wantStatus(t, getUser(t, e, other.AccessToken), http.StatusOK, "other session after reuse detection")
	wantStatus(t, refresh(t, e, other.RefreshToken), http.StatusOK, "refresh of the other session")
}

func TestRefreshErrors(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := signUp(t, e, "erin@example.com")
	wantStatus(t, request(t, e, "POST", "/auth/v1/logout?scope=local", nil, s.bearer()...), http.StatusNoContent, "logout")
	tests := []struct {
		name, token, code string
	}{
		{"unknown token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "refresh_token_not_found"},
		{"empty token", "", "refresh_token_not_found"},
		{"logged-out session", s.RefreshToken, "session_not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expectAuthError(t, e, "POST", "/auth/v1/token?grant_type=refresh_token", map[string]any{"refresh_token": tc.token}, 400, tc.code)
		})
	}
}

// Concurrent refreshes of one token agree on one successor, and only one row
// is created for it.
func TestRefreshConcurrent(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	s := signUp(t, e, "frank@example.com")
	const n = 20
	type result struct {
		status  int
		refresh string
		body    string
		err     error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	body, _ := json.Marshal(map[string]string{"refresh_token": s.RefreshToken})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := http.Post(e.URL+"/auth/v1/token?grant_type=refresh_token", "application/json", bytes.NewReader(body))
			if err != nil {
				results[i].err = err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var out session
			_ = json.Unmarshal(b, &out)
			results[i] = result{status: resp.StatusCode, refresh: out.RefreshToken, body: string(b)}
		}()
	}
	close(start)
	wg.Wait()
	successors := map[string]int{}
	for i, r := range results {
		if r.err != nil || r.status != http.StatusOK {
			t.Errorf("refresh %d: %d %v %s", i, r.status, r.err, r.body)
			continue
		}
		successors[r.refresh]++
	}
	if len(successors) != 1 {
		t.Errorf("%d different successors: %v", len(successors), successors)
	}
	for succ := range successors {
		if succ == s.RefreshToken || succ == "" {
			t.Errorf("successor %q is not a new token", succ)
		}
	}
	parent := queryInt(t, e, "select id from auth.refresh_tokens where token_hash = $1", sha(s.RefreshToken))
	if c := queryInt(t, e, "select count(*) from auth.refresh_tokens where parent_id = $1", parent); c != 1 {
		t.Errorf("%d child rows of the refreshed token, want 1", c)
	}
	for succ := range successors {
		if c := queryInt(t, e, "select count(*) from auth.refresh_tokens where token_hash = $1 and parent_id = $2", sha(succ), parent); c != 1 {
			t.Errorf("the returned successor is not the stored child of the token (%d rows)", c)
		}
	}
}

// ---- GET /user and token checks ----

func TestGetUserTokenChecks(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := signUp(t, e, "gina@example.com")
	loggedOut := signIn(t, e, "gina@example.com", testenv.Password)
	wantStatus(t, request(t, e, "POST", "/auth/v1/logout?scope=local", nil, loggedOut.bearer()...), http.StatusNoContent, "logout")

	base := tokenClaims(t, s.AccessToken)
	now := time.Now()
	sign := func(mut func(c *token.Claims)) string {
		c := base
		c.IssuedAt, c.ExpiresAt = now.Unix(), now.Add(time.Hour).Unix()
		mut(&c)
		tok, err := token.Sign(e.Keys.Current(), &c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	foreign, err := token.NewES256Key()
	if err != nil {
		t.Fatal(err)
	}
	foreignTok, err := token.Sign(foreign, &base)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(s.AccessToken, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte(`"owner"`), []byte(`"admin"`), 1)) + "." + parts[2]
	if tampered == s.AccessToken {
		t.Fatal("tampering changed nothing")
	}
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, &base)
	hsTok, err := hs.SignedString([]byte("some-secret-the-server-does-not-have"))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		headers []string
		status  int
		code    string
	}{
		{"valid", s.bearer(), 200, ""},
		{"valid, re-signed by the test", testenv.Bearer(sign(func(*token.Claims) {})), 200, ""},
		{"no Authorization", nil, 401, "no_authorization"},
		{"empty bearer", []string{"Authorization", "Bearer "}, 401, "no_authorization"},
		{"basic scheme", []string{"Authorization", "Basic dXNlcjpwYXNz"}, 401, "no_authorization"},
		{"garbage", testenv.Bearer("garbage"), 401, "bad_jwt"},
		{"three garbage parts", testenv.Bearer("a.b.c"), 401, "bad_jwt"},
		{"tampered payload", testenv.Bearer(tampered), 401, "bad_jwt"},
		{"alg none", testenv.Bearer(none), 401, "bad_jwt"},
		{"HS256 without a configured secret", testenv.Bearer(hsTok), 401, "bad_jwt"},
		{"unknown key", testenv.Bearer(foreignTok), 401, "bad_jwt"},
		{"expired", testenv.Bearer(sign(func(c *token.Claims) {
			c.IssuedAt, c.ExpiresAt = now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
		})), 401, "bad_jwt"},
		{"wrong issuer", testenv.Bearer(sign(func(c *token.Claims) { c.Issuer = "https://evil.example.com/auth/v1" })), 401, "bad_jwt"},
		{"wrong audience", testenv.Bearer(sign(func(c *token.Claims) { c.Audience = "anon" })), 401, "bad_jwt"},
		{"issued in the future", testenv.Bearer(sign(func(c *token.Claims) { c.IssuedAt = now.Add(time.Hour).Unix() })), 401, "bad_jwt"},
		{"logged-out session", loggedOut.bearer(), 401, "session_not_found"},
		{"unknown session", testenv.Bearer(sign(func(c *token.Claims) { c.SessionID = uuid.NewString() })), 401, "session_not_found"},
		{"session of another user", testenv.Bearer(sign(func(c *token.Claims) { c.Subject = uuid.NewString() })), 401, "session_not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.status == 200 {
				r := request(t, e, "GET", "/auth/v1/user", nil, tc.headers...)
				wantStatus(t, r, 200, "GET /user")
				if r.JSON(t)["id"] != s.userID() {
					t.Errorf("GET /user returned %s", r.Body)
				}
				return
			}
			expectAuthError(t, e, "GET", "/auth/v1/user", nil, tc.status, tc.code, tc.headers...)
		})
	}
}

// A token whose signature verifies but whose session_id or sub is missing or
// not a UUID is the caller's fault: 401, never a 500.
func TestGetUserMalformedSessionClaims(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := signUp(t, e, "hank@example.com")
	base := tokenClaims(t, s.AccessToken)
	tests := []struct {
		name string
		mut  func(c *token.Claims)
	}{
		{"no session_id", func(c *token.Claims) { c.SessionID = "" }},
		{"session_id not a UUID", func(c *token.Claims) { c.SessionID = "not-a-uuid" }},
		{"no sub", func(c *token.Claims) { c.Subject = "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.mut(&c)
			tok, err := token.Sign(e.Keys.Current(), &c)
			if err != nil {
				t.Fatal(err)
			}
			r := request(t, e, "GET", "/auth/v1/user", nil, testenv.Bearer(tok)...)
			code := r.JSON(t)["error_code"]
			if r.Status != 401 || (code != "bad_jwt" && code != "session_not_found") {
				t.Errorf("GET /user: %d %s, want 401 bad_jwt or session_not_found", r.Status, r.Body)
			}
		})
	}
}

// ---- PUT /user ----

func TestUpdateUser(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	r := request(t, e, "POST", "/auth/v1/signup", map[string]any{"email": "ivy@example.com", "password": testenv.Password,
		"data": map[string]any{"org_name": "Ivy Co", "theme": "dark"}})
	s := decodeSession(t, r, "sign up")
	put := func(body any) map[string]any {
		t.Helper()
		r := request(t, e, "PUT", "/auth/v1/user", body, s.bearer()...)
		wantStatus(t, r, 200, "PUT /user")
		u := r.JSON(t)
		checkUser(t, u, "ivy@example.com", true)
		return u
	}
	meta := func(u map[string]any) map[string]any { m, _ := u["user_metadata"].(map[string]any); return m }

	u := put(map[string]any{"data": map[string]any{"nickname": "Ives"}})
	if m := meta(u); m["nickname"] != "Ives" || m["theme"] != "dark" || m["org_name"] != "Ivy Co" {
		t.Errorf("after adding nickname, user_metadata = %v", m)
	}
	u = put(map[string]any{"data": map[string]any{"theme": "light"}})
	if m := meta(u); m["nickname"] != "Ives" || m["theme"] != "light" {
		t.Errorf("after changing theme, user_metadata = %v", m)
	}
	// A password-only change leaves the metadata alone.
	u = put(map[string]any{"password": newPassword})
	if m := meta(u); m["nickname"] != "Ives" || m["theme"] != "light" || m["org_name"] != "Ivy Co" {
		t.Errorf("after a password change, user_metadata = %v", m)
	}
	g := getUser(t, e, s.AccessToken)
	wantStatus(t, g, 200, "GET /user")
	if m := meta(g.JSON(t)); m["nickname"] != "Ives" || m["theme"] != "light" {
		t.Errorf("GET /user user_metadata = %v", m)
	}
	// Refreshed tokens carry the new metadata.
	rs := decodeSession(t, refresh(t, e, s.RefreshToken), "refresh")
	if _, c := decodeJWT(t, rs.AccessToken); c["user_metadata"].(map[string]any)["nickname"] != "Ives" {
		t.Errorf("refreshed token user_metadata = %v", c["user_metadata"])
	}
	s = rs

	tests := []struct {
		name    string
		body    any
		headers []string
		status  int
		code    string
	}{
		{"app_metadata", map[string]any{"app_metadata": map[string]any{"org_role": "admin"}}, s.bearer(), 403, "not_admin"},
		{"app_metadata org_id", map[string]any{"app_metadata": map[string]any{"org_id": uuid.NewString()}, "data": map[string]any{"x": 1}}, s.bearer(), 403, "not_admin"},
		{"weak password", map[string]any{"password": "short"}, s.bearer(), 422, "weak_password"},
		{"common password", map[string]any{"password": "password1"}, s.bearer(), 422, "weak_password"},
		{"email change", map[string]any{"email": "other@example.com"}, s.bearer(), 400, "validation_failed"},
		{"no token", map[string]any{"data": map[string]any{"x": 1}}, nil, 401, "no_authorization"},
		{"bad JSON", `{"data":`, s.bearer(), 400, "bad_json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expectAuthError(t, e, "PUT", "/auth/v1/user", tc.body, tc.status, tc.code, tc.headers...)
			g := getUser(t, e, s.AccessToken)
			wantStatus(t, g, 200, "GET /user")
			u := g.JSON(t)
			app, _ := u["app_metadata"].(map[string]any)
			if app["org_role"] != "owner" {
				t.Errorf("app_metadata changed: %v", app)
			}
			if _, ok := meta(u)["x"]; ok {
				t.Errorf("a refused update changed user_metadata: %v", meta(u))
			}
		})
	}
	// The refused password changes changed nothing.
	signIn(t, e, "ivy@example.com", newPassword)
}

// A password change ends the user's other sessions and keeps the current one.
func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	const email = "jack@example.com"
	signedUp := signUp(t, e, email)
	current := signIn(t, e, email, testenv.Password)
	other := signIn(t, e, email, testenv.Password)
	bystander := signUp(t, e, "bystander@example.com")

	r := request(t, e, "PUT", "/auth/v1/user", map[string]any{"password": newPassword}, current.bearer()...)
	wantStatus(t, r, 200, "change password")

	wantStatus(t, getUser(t, e, current.AccessToken), 200, "current session's token")
	for name, s := range map[string]*session{"signed-up session": signedUp, "other session": other} {
		t.Run(name, func(t *testing.T) {
			expectAuthError(t, e, "GET", "/auth/v1/user", nil, 401, "session_not_found", s.bearer()...)
			expectAuthError(t, e, "POST", "/auth/v1/token?grant_type=refresh_token", map[string]any{"refresh_token": s.RefreshToken},
				400, "session_not_found")
		})
	}
	wantStatus(t, refresh(t, e, current.RefreshToken), 200, "refresh of the current session")
	wantStatus(t, getUser(t, e, bystander.AccessToken), 200, "another user's session")

	checkSession(t, e, signIn(t, e, email, newPassword), email)
	expectAuthError(t, e, "POST", "/auth/v1/token?grant_type=password", map[string]any{"email": email, "password": testenv.Password},
		400, "invalid_credentials")
}

// ---- logout ----

func TestLogoutScopes(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	tests := []struct {
		scope  string
		status int
		// which of the three sessions stay alive: [signed up, caller, third]
		alive [3]bool
	}{
		{"local", 204, [3]bool{true, false, true}},
		{"others", 204, [3]bool{false, true, false}},
		{"global", 204, [3]bool{false, false, false}},
		{"", 204, [3]bool{false, false, false}}, // GoTrue's default is global
		{"everything", 400, [3]bool{true, true, true}},
	}
	for i, tc := range tests {
		t.Run("scope="+tc.scope, func(t *testing.T) {
			email := fmt.Sprintf("logout%d@example.com", i)
			sessions := []*session{signUp(t, e, email), signIn(t, e, email, testenv.Password), signIn(t, e, email, testenv.Password)}
			path := "/auth/v1/logout"
			if tc.scope != "" {
				path += "?scope=" + tc.scope
			}
			if tc.status == 400 {
				expectAuthError(t, e, "POST", path, nil, 400, "validation_failed", sessions[1].bearer()...)
			} else {
				r := request(t, e, "POST", path, nil, sessions[1].bearer()...)
				wantStatus(t, r, tc.status, "logout")
				if len(r.Body) != 0 {
					t.Errorf("204 with a body: %q", r.Body)
				}
			}
			for j, s := range sessions {
				g := getUser(t, e, s.AccessToken)
				rf := refresh(t, e, s.RefreshToken)
				if tc.alive[j] {
					if g.Status != 200 || rf.Status != 200 {
						t.Errorf("session %d should be alive: GET /user %d, refresh %d %s", j, g.Status, rf.Status, rf.Body)
					}
				} else if g.Status != 401 || rf.Status != 400 || rf.JSON(t)["error_code"] != "session_not_found" {
					t.Errorf("session %d should be ended: GET /user %d, refresh %d %s", j, g.Status, rf.Status, rf.Body)
				}
			}
		})
	}
	expectAuthError(t, e, "POST", "/auth/v1/logout", nil, 401, "no_authorization")
}

// ---- recovery ----

func TestRecover(t *testing.T) {
	t.Parallel()
	mails := &mailRecorder{}
	e := testenv.New(t, testenv.Options{Mailer: mails})
	const known, unknown = "kate@example.com", "nobody@example.com"
	s := signUp(t, e, known)

	ru := request(t, e, "POST", "/auth/v1/recover", map[string]any{"email": unknown})
	rk := request(t, e, "POST", "/auth/v1/recover", map[string]any{"email": known})
	for name, r := range map[string]*testenv.Response{"known": rk, "unknown": ru} {
		wantStatus(t, r, 200, "recover "+name)
		if m := r.JSON(t); len(m) != 0 {
			t.Errorf("recover %s: body %s, want {}", name, r.Body)
		}
	}
	if !bytes.Equal(rk.Body, ru.Body) {
		t.Errorf("known and unknown emails answer differently: %s vs %s", rk.Body, ru.Body)
	}
	_, tokenHash, kind := mailLink(t, mails.wait(t, known, 1)[0])
	if kind != "recovery" {
		t.Errorf("link type = %q, want recovery", kind)
	}
	if c := len(mails.bodies(unknown)); c != 0 {
		t.Errorf("%d mails to an unknown address", c)
	}
	if c := len(mails.bodies(known)); c != 1 {
		t.Errorf("%d mails to %s, want 1", c, known)
	}

	// A signup-type verification cannot use a recovery token, and does not spend it.
	expectAuthError(t, e, "POST", "/auth/v1/verify", map[string]any{"type": "signup", "token_hash": tokenHash}, 403, "otp_expired")
	v := decodeSession(t, request(t, e, "POST", "/auth/v1/verify", map[string]any{"type": "recovery", "token_hash": tokenHash}), "verify")
	checkSession(t, e, v, known)
	if v.userID() != s.userID() {
		t.Errorf("recovery signed in %s, want %s", v.userID(), s.userID())
	}
	// The recovery session may set a new password.
	wantStatus(t, request(t, e, "PUT", "/auth/v1/user", map[string]any{"password": newPassword}, v.bearer()...), 200, "set new password")
	signIn(t, e, known, newPassword)

	expectAuthError(t, e, "POST", "/auth/v1/verify", map[string]any{"type": "recovery", "token_hash": tokenHash}, 403, "otp_expired")
	expectAuthError(t, e, "POST", "/auth/v1/verify", map[string]any{"type": "recovery", "token_hash": "made-up"}, 403, "otp_expired")

	// The token with the email works too; with another email it fails and is not spent.
	wantStatus(t, request(t, e, "POST", "/auth/v1/recover", map[string]any{"email": known}), 200, "second recover")
	var second string
	for _, body := range mails.wait(t, known, 2) {
		if _, th, _ := mailLink(t, body); th != tokenHash {
			second = th
		}
	}
	expectAuthError(t, e, "POST", "/auth/v1/verify", map[string]any{"type": "recovery", "token": second, "email": unknown}, 403, "otp_expired")
	expectAuthError(t, e, "POST", "/auth/v1/verify", map[string]any{"type": "recovery", "token": second}, 400, "validation_failed")
	v2 := decodeSession(t, request(t, e, "POST", "/auth/v1/verify", map[string]any{"type": "recovery", "token": second, "email": "KATE@example.com"}), "verify with token and email")
	if v2.userID() != s.userID() {
		t.Errorf("token+email verification signed in %s, want %s", v2.userID(), s.userID())
	}
	expectAuthError(t, e, "POST", "/auth/v1/verify", map[string]any{"type": "invite", "token_hash": tokenHash}, 403, "otp_expired")
	expectAuthError(t, e, "POST", "/auth/v1/verify", map[string]any{"type": "sms", "token_hash": tokenHash}, 400, "validation_failed")
	expectAuthError(t, e, "POST", "/auth/v1/verify", map[string]any{"type": "recovery"}, 400, "validation_failed")
}

// With an SMTP mailer, the recovery mail reaches the SMTP server and its link
// verifies.
func TestRecoverOverSMTP(t *testing.T) {
	t.Parallel()
	smtpSrv := testsmtp.Start(t)
	m, err := mailer.NewSMTP(smtpSrv.URL("mailer", "smtp-pass"), "Voxanne <noreply@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	e := testenv.New(t, testenv.Options{Mailer: m})
	const email = "liam@example.com"
	s := signUp(t, e, email)
	wantStatus(t, request(t, e, "POST", "/auth/v1/recover", map[string]any{"email": email}), 200, "recover")

	got := smtpSrv.WaitFor(t, email)
	if got.From != "noreply@example.com" || got.User != "mailer" || got.Password != "smtp-pass" {
		t.Errorf("envelope from %q, auth %q/%q", got.From, got.User, got.Password)
	}
	msg, err := mail.ReadMessage(strings.NewReader(got.Data))
	if err != nil {
		t.Fatalf("not a mail: %v", err)
	}
	if msg.Header.Get("To") != email || !strings.Contains(msg.Header.Get("From"), "noreply@example.com") {
		t.Errorf("headers To %q From %q", msg.Header.Get("To"), msg.Header.Get("From"))
	}
	body, _ := io.ReadAll(msg.Body)
	_, tokenHash, _ := mailLink(t, string(body))
	v := decodeSession(t, request(t, e, "POST", "/auth/v1/verify", map[string]any{"type": "recovery", "token_hash": tokenHash}), "verify")
	if v.userID() != s.userID() {
		t.Errorf("verified %s, want %s", v.userID(), s.userID())
	}
}

// ---- keys ----

type jwksDoc struct {
	Keys []map[string]any `json:"keys"`
}

func getJWKS(t testing.TB, e *testenv.Env) (map[string]map[string]any, *testenv.Response) {
	t.Helper()
	r := request(t, e, "GET", "/auth/v1/.well-known/jwks.json", nil)
	wantStatus(t, r, 200, "JWKS")
	var doc jwksDoc
	r.Decode(t, &doc)
	keys := map[string]map[string]any{}
	for _, k := range doc.Keys {
		kid, _ := k["kid"].(string)
		keys[kid] = k
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[private]; ok {
				t.Errorf("JWKS key %s has the private member %q", kid, private)
			}
		}
		if k["kty"] != "EC" || k["crv"] != "P-256" || k["alg"] != "ES256" || k["x"] == nil || k["y"] == nil {
			t.Errorf("JWKS key %v is not a public ES256 key", k)
		}
	}
	return keys, r
}

func kidOf(t testing.TB, tok string) string {
	t.Helper()
	h, _ := decodeJWT(t, tok)
	kid, _ := h["kid"].(string)
	return kid
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	before := signUp(t, e, "mia@example.com")
	oldKid := kidOf(t, before.AccessToken)
	if oldKid != e.Keys.Current().ID {
		t.Fatalf("token kid %q, current key %q", oldKid, e.Keys.Current().ID)
	}
	keys, _ := getJWKS(t, e)
	if len(keys) != 1 || keys[oldKid] == nil {
		t.Errorf("JWKS before rotation has %v, want only %s", keys, oldKid)
	}

	newKid, err := e.Keys.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if newKid == oldKid || newKid != e.Keys.Current().ID {
		t.Fatalf("rotate returned %q (old %q, current %q)", newKid, oldKid, e.Keys.Current().ID)
	}
	wantStatus(t, getUser(t, e, before.AccessToken), 200, "token signed before the rotation")
	after := signIn(t, e, "mia@example.com", testenv.Password)
	if kid := kidOf(t, after.AccessToken); kid != newKid {
		t.Errorf("token issued after the rotation has kid %q, want %q", kid, newKid)
	}
	wantStatus(t, getUser(t, e, after.AccessToken), 200, "token signed after the rotation")
	refreshed := decodeSession(t, refresh(t, e, before.RefreshToken), "refresh after rotation")
	if kid := kidOf(t, refreshed.AccessToken); kid != newKid {
		t.Errorf("refreshed token has kid %q, want %q", kid, newKid)
	}

	keys, r := getJWKS(t, e)
	if len(keys) != 2 || keys[oldKid] == nil || keys[newKid] == nil {
		t.Errorf("JWKS after rotation has %d keys, want %s and %s", len(keys), oldKid, newKid)
	}
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
		t.Errorf("JWKS Cache-Control = %q", cc)
	}

	if err := e.Keys.Revoke(ctx, newKid); err == nil {
		t.Error("revoking the current key succeeded")
	}
	if err := e.Keys.Revoke(ctx, "no-such-kid"); err == nil {
		t.Error("revoking an unknown key succeeded")
	}
	wantStatus(t, getUser(t, e, after.AccessToken), 200, "current key after a refused revocation")

	// Warm the verified-token cache: a revoked key must stop its tokens even
	// when they are cached.
	if r := e.Do("GET", "/api/session", nil, before.bearer()...); r.Status != 200 {
		t.Fatalf("/api/session before revocation: %d", r.Status)
	}
	if err := e.Keys.Revoke(ctx, oldKid); err != nil {
		t.Fatalf("revoke %s: %v", oldKid, err)
	}
	expectAuthError(t, e, "GET", "/auth/v1/user", nil, 401, "bad_jwt", before.bearer()...)
	if r := e.Do("GET", "/api/session", nil, before.bearer()...); r.Status != 401 {
		t.Fatalf("/api/session after revocation: %d %s", r.Status, r.Body)
	}
	wantStatus(t, getUser(t, e, after.AccessToken), 200, "token of the current key after revoking the old one")
	keys, _ = getJWKS(t, e)
	if keys[oldKid] != nil || keys[newKid] == nil || len(keys) != 1 {
		t.Errorf("JWKS after revocation lists %d keys (old present: %v)", len(keys), keys[oldKid] != nil)
	}
}

func TestSigningKeysEncryptedWithKEK(t *testing.T) {
	t.Parallel()
	const kek = "c2VjcmV0LWtleS1lbmNyeXB0aW9uLWtleS0zMi1ieXRlcyE"
	e := testenv.New(t, testenv.Options{KEK: kek})
	s := signUp(t, e, "noah@example.com")
	wantStatus(t, getUser(t, e, s.AccessToken), 200, "GET /user")
	if _, err := e.Keys.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := e.Query(ctx, "select kid, private_key, encrypted from auth.signing_keys")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			kid       string
			der       []byte
			encrypted bool
		)
		if err := rows.Scan(&kid, &der, &encrypted); err != nil {
			t.Fatal(err)
		}
		n++
		if !encrypted {
			t.Errorf("key %s: encrypted = false", kid)
		}
		if _, err := x509.ParsePKCS8PrivateKey(der); err == nil {
			t.Errorf("key %s: the stored private key is plain PKCS#8", kid)
		}
		plain, err := token.Open(token.DeriveKEK(kek), der)
		if err != nil {
			t.Errorf("key %s: cannot be opened with the KEK: %v", kid, err)
			continue
		}
		if _, err := token.ParsePrivate(plain); err != nil {
			t.Errorf("key %s: sealed content is not the key: %v", kid, err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("%d signing keys, want 2", n)
	}
}

// ---- legacy HS256 secret ----

func TestLegacyHS256Secret(t *testing.T) {
	t.Parallel()
	const secret = "super-secret-jwt-token-with-at-least-32-characters-long"
	e := testenv.New(t, testenv.Options{JWTSecret: secret})
	s := signUp(t, e, "olga@example.com")
	ended := signIn(t, e, "olga@example.com", testenv.Password)
	wantStatus(t, request(t, e, "POST", "/auth/v1/logout?scope=local", nil, ended.bearer()...), 204, "logout")

	hs := func(key string, claims jwt.Claims) string {
		t.Helper()
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	now := time.Now()
	claims := func(mut func(c *token.Claims)) *token.Claims {
		c := tokenClaims(t, s.AccessToken)
		c.IssuedAt, c.ExpiresAt = now.Unix(), now.Add(time.Hour).Unix()
		if mut != nil {
			mut(&c)
		}
		return &c
	}
	endedSession := tokenClaims(t, ended.AccessToken).SessionID
	tests := []struct {
		name   string
		tok    string
		status int
		code   string // "" with 401: bad_jwt or session_not_found
	}{
		{"real session", hs(secret, claims(nil)), 200, ""},
		{"unknown session", hs(secret, claims(func(c *token.Claims) { c.SessionID = uuid.NewString() })), 401, "session_not_found"},
		{"logged-out session", hs(secret, claims(func(c *token.Claims) { c.SessionID = endedSession })), 401, "session_not_found"},
		{"wrong secret", hs(secret+"x", claims(nil)), 401, "bad_jwt"},
		{"expired", hs(secret, claims(func(c *token.Claims) { c.ExpiresAt = now.Add(-time.Hour).Unix() })), 401, "bad_jwt"},
		{"wrong issuer", hs(secret, claims(func(c *token.Claims) { c.Issuer = "https://other.supabase.co/auth/v1" })), 401, "bad_jwt"},
		{"no session_id", hs(secret, claims(func(c *token.Claims) { c.SessionID = "" })), 401, ""},
		// A Supabase project's legacy anon key: role anon, no sub, no session.
		{"anon key", hs(secret, jwt.MapClaims{"iss": e.Issuer, "aud": "authenticated", "role": "anon",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}), 401, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			switch {
			case tc.status == 200:
				r := getUser(t, e, tc.tok)
				wantStatus(t, r, 200, "GET /user")
				if r.JSON(t)["id"] != s.userID() {
					t.Errorf("GET /user returned %s", r.Body)
				}
			case tc.code != "":
				expectAuthError(t, e, "GET", "/auth/v1/user", nil, tc.status, tc.code, testenv.Bearer(tc.tok)...)
			default:
				r := getUser(t, e, tc.tok)
				if code := r.JSON(t)["error_code"]; r.Status != 401 || (code != "bad_jwt" && code != "session_not_found") {
					t.Errorf("GET /user: %d %s, want 401 bad_jwt or session_not_found", r.Status, r.Body)
				}
			}
		})
	}
}

// ---- rate limits ----

func TestRateLimitPerIP(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{RateLimits: &voxhttp.RateLimits{SignIn: voxhttp.Rate{N: 2, Per: time.Hour}}})
	first := signUp(t, e, "p1@example.com")
	signUp(t, e, "p2@example.com")
	expectAuthError(t, e, "POST", "/auth/v1/signup", map[string]any{"email": "p3@example.com", "password": testenv.Password},
		429, "over_request_rate_limit")
	// Password sign-in from the same address shares the bucket.
	expectAuthError(t, e, "POST", "/auth/v1/token?grant_type=password", map[string]any{"email": "p1@example.com", "password": testenv.Password},
		429, "over_request_rate_limit")
	if n := queryInt(t, e, "select count(*) from auth.users"); n != 2 {
		t.Errorf("%d users, want 2: a limited sign-up went through", n)
	}
	// Only that limit: refreshing (its own, unset limit) still works.
	wantStatus(t, refresh(t, e, first.RefreshToken), 200, "refresh")
}

// Refresh, verify and recover have their own per-IP buckets.
func TestRateLimitOtherEndpoints(t *testing.T) {
	t.Parallel()
	one := voxhttp.Rate{N: 1, Per: time.Hour}
	e := testenv.New(t, testenv.Options{RateLimits: &voxhttp.RateLimits{Refresh: one, Verify: one, Recover: one}})
	s := signUp(t, e, "limits@example.com")
	tests := []struct {
		name, path  string
		body        any
		firstStatus int
	}{
		{"refresh", "/auth/v1/token?grant_type=refresh_token", map[string]any{"refresh_token": s.RefreshToken}, 200},
		{"verify", "/auth/v1/verify", map[string]any{"type": "recovery", "token_hash": "made-up"}, 403},
		{"recover", "/auth/v1/recover", map[string]any{"email": "limits@example.com"}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantStatus(t, request(t, e, "POST", tc.path, tc.body), tc.firstStatus, "first "+tc.name)
			expectAuthError(t, e, "POST", tc.path, tc.body, 429, "over_request_rate_limit")
		})
	}
	// Sign-in has no limit here.
	signIn(t, e, "limits@example.com", testenv.Password)
}

func TestRateLimitPerEmail(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{RateLimits: &voxhttp.RateLimits{Email: voxhttp.Rate{N: 2, Per: time.Hour}}})
	signUp(t, e, "q1@example.com")
	signUp(t, e, "q2@example.com")
	const path = "/auth/v1/token?grant_type=password"
	if r := request(t, e, "POST", path, map[string]any{"email": "q1@example.com", "password": "Wrong-password-1"}); r.Status != 400 {
		t.Fatalf("first attempt: %d %s", r.Status, r.Body)
	}
	// A right password does not count against the limit; a second wrong one does.
	signIn(t, e, "q1@example.com", testenv.Password)
	if r := request(t, e, "POST", path, map[string]any{"email": "q1@example.com", "password": "Wrong-password-2"}); r.Status != 400 {
		t.Fatalf("second attempt: %d %s", r.Status, r.Body)
	}
	expectAuthError(t, e, "POST", path, map[string]any{"email": "q1@example.com", "password": testenv.Password}, 429, "over_request_rate_limit")
	expectAuthError(t, e, "POST", path, map[string]any{"email": " Q1@Example.com", "password": testenv.Password}, 429, "over_request_rate_limit")
	signIn(t, e, "q2@example.com", testenv.Password)
}

func TestRateLimitForwardedFor(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{RateLimits: &voxhttp.RateLimits{SignIn: voxhttp.Rate{N: 2, Per: time.Hour}},
		ClientIPHeader: "X-Forwarded-For"})
	n := 0
	signUpFrom := func(xff string) *testenv.Response {
		t.Helper()
		n++
		var h []string
		if xff != "" {
			h = []string{"X-Forwarded-For", xff}
		}
		return request(t, e, "POST", "/auth/v1/signup", map[string]any{"email": fmt.Sprintf("r%d@example.com", n), "password": testenv.Password}, h...)
	}
	tests := []struct {
		name, xff string
		status    int
	}{
		{"first from A", "198.51.100.1", 200},
		{"second from A", "198.51.100.1", 200},
		{"third from A", "198.51.100.1", 429},
		{"first from B", "198.51.100.2", 200},
		// The proxy appends the real client on the right; entries to its left are the client's say-so.
		{"A behind a forged entry", "203.0.113.7, 198.51.100.1", 429},
		{"second from B", "10.0.0.1, 198.51.100.2", 200},
		{"third from B", "198.51.100.2", 429},
		{"no header: the socket peer", "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := signUpFrom(tc.xff)
			wantStatus(t, r, tc.status, "sign up")
			if tc.status == 429 && r.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		})
	}
}

// ---- admin ----

func TestAdminUsers(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	svc, err := e.Auth.ServiceRoleToken(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	admin := testenv.Bearer(svc)
	signUp(t, e, "existing@example.com")

	r := request(t, e, "POST", "/auth/v1/admin/users", map[string]any{"email": "Pat@Example.com", "password": testenv.Password,
		"email_confirm": true, "user_metadata": map[string]any{"plan": "pro"}, "app_metadata": map[string]any{"tier": "gold"}}, admin...)
	wantStatus(t, r, 200, "create user")
	created := r.JSON(t)
	checkUser(t, created, "pat@example.com", true)
	id, _ := created["id"].(string)
	if m, _ := created["user_metadata"].(map[string]any); m["plan"] != "pro" {
		t.Errorf("created user_metadata = %v", created["user_metadata"])
	}
	if a, _ := created["app_metadata"].(map[string]any); a["tier"] != "gold" {
		t.Errorf("created app_metadata = %v", created["app_metadata"])
	}
	pat := signIn(t, e, "pat@example.com", testenv.Password)

	r = request(t, e, "GET", "/auth/v1/admin/users", nil, admin...)
	wantStatus(t, r, 200, "list users")
	var list struct {
		Users []map[string]any `json:"users"`
		Aud   string           `json:"aud"`
	}
	r.Decode(t, &list)
	if len(list.Users) != 2 || r.Header.Get("X-Total-Count") != "2" {
		t.Errorf("list: %d users, X-Total-Count %q; want 2", len(list.Users), r.Header.Get("X-Total-Count"))
	}
	if !slices.ContainsFunc(list.Users, func(u map[string]any) bool { return u["id"] == id }) {
		t.Errorf("list does not contain the created user")
	}
	r = request(t, e, "GET", "/auth/v1/admin/users?page=2&per_page=1", nil, admin...)
	wantStatus(t, r, 200, "list page 2")
	r.Decode(t, &list)
	if len(list.Users) != 1 || r.Header.Get("X-Total-Count") != "2" {
		t.Errorf("page 2 of 1: %d users, X-Total-Count %q", len(list.Users), r.Header.Get("X-Total-Count"))
	}

	r = request(t, e, "GET", "/auth/v1/admin/users/"+id, nil, admin...)
	wantStatus(t, r, 200, "get user")
	if got := r.JSON(t); got["id"] != id || got["email"] != "pat@example.com" {
		t.Errorf("get user: %s", r.Body)
	}
	r = request(t, e, "GET", "/auth/v1/admin/users/"+strings.ToUpper(id), nil, admin...)
	wantStatus(t, r, 200, "get user by upper-case id")

	r = request(t, e, "PUT", "/auth/v1/admin/users/"+id, map[string]any{"user_metadata": map[string]any{"plan": "team"}}, admin...)
	wantStatus(t, r, 200, "update metadata")
	if m, _ := r.JSON(t)["user_metadata"].(map[string]any); m["plan"] != "team" {
		t.Errorf("updated user_metadata = %v", m)
	}
	wantStatus(t, getUser(t, e, pat.AccessToken), 200, "session after a metadata change")

	r = request(t, e, "PUT", "/auth/v1/admin/users/"+id, map[string]any{"password": newPassword}, admin...)
	wantStatus(t, r, 200, "update password")
	expectAuthError(t, e, "GET", "/auth/v1/user", nil, 401, "session_not_found", pat.bearer()...)
	pat = signIn(t, e, "pat@example.com", newPassword)

	expectAuthError(t, e, "POST", "/auth/v1/admin/users", map[string]any{"email": "PAT@example.com", "password": testenv.Password},
		422, "email_exists", admin...)

	// An email change: the address must be free; the new one signs in, the old one not.
	expectAuthError(t, e, "PUT", "/auth/v1/admin/users/"+id, map[string]any{"email": "EXISTING@example.com"}, 422, "email_exists", admin...)
	r = request(t, e, "PUT", "/auth/v1/admin/users/"+id, map[string]any{"email": "Patricia@Example.com"}, admin...)
	wantStatus(t, r, 200, "update email")
	if got := r.JSON(t)["email"]; got != "patricia@example.com" {
		t.Errorf("updated email = %v", got)
	}
	expectAuthError(t, e, "GET", "/auth/v1/user", nil, 401, "session_not_found", pat.bearer()...)
	expectAuthError(t, e, "POST", "/auth/v1/token?grant_type=password", map[string]any{"email": "pat@example.com", "password": newPassword},
		400, "invalid_credentials")
	pat = signIn(t, e, "patricia@example.com", newPassword)

	// The user owns the org sign-up made for them: deleting them says what
	// becomes of it (see TestAdminDeleteLastOwner).
	r = request(t, e, "DELETE", "/auth/v1/admin/users/"+id, nil, admin...)
	wantStatus(t, r, 409, "delete the last owner of an org")
	r = request(t, e, "DELETE", "/auth/v1/admin/users/"+id+"?orphaned_orgs=delete", nil, admin...)
	wantStatus(t, r, 200, "delete user")
	expectAuthError(t, e, "GET", "/auth/v1/admin/users/"+id, nil, 404, "user_not_found", admin...)
	if code := getUser(t, e, pat.AccessToken).Status; code != 401 {
		t.Errorf("deleted user's token: GET /user %d, want 401", code)
	}
	if code := refresh(t, e, pat.RefreshToken).Status; code != 400 {
		t.Errorf("deleted user's refresh token: %d, want 400", code)
	}
	expectAuthError(t, e, "POST", "/auth/v1/token?grant_type=password", map[string]any{"email": "patricia@example.com", "password": newPassword},
		400, "invalid_credentials")
	if n := queryInt(t, e, "select count(*) from auth.sessions where user_id = $1", id); n != 0 {
		t.Errorf("%d sessions of the deleted user remain", n)
	}
}

func TestAdminUsersErrors(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	svc, err := e.Auth.ServiceRoleToken(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	admin := testenv.Bearer(svc)
	user := signUp(t, e, "quinn@example.com")
	id, missing := user.userID(), uuid.NewString()
	newUser := func(app map[string]any) map[string]any {
		return map[string]any{"email": "new@example.com", "password": testenv.Password, "app_metadata": app}
	}
	tests := []struct {
		name, method, path string
		body               any
		headers            []string
		status             int
		code               string
	}{
		{"list with a user token", "GET", "/auth/v1/admin/users", nil, user.bearer(), 403, "not_admin"},
		{"create with a user token", "POST", "/auth/v1/admin/users", newUser(nil), user.bearer(), 403, "not_admin"},
		{"get with a user token", "GET", "/auth/v1/admin/users/" + id, nil, user.bearer(), 403, "not_admin"},
		{"update with a user token", "PUT", "/auth/v1/admin/users/" + id, map[string]any{"email_confirm": false}, user.bearer(), 403, "not_admin"},
		{"delete with a user token", "DELETE", "/auth/v1/admin/users/" + id, nil, user.bearer(), 403, "not_admin"},
		{"list without a token", "GET", "/auth/v1/admin/users", nil, nil, 401, "no_authorization"},
		{"delete without a token", "DELETE", "/auth/v1/admin/users/" + id, nil, nil, 401, "no_authorization"},
		{"list with a bad token", "GET", "/auth/v1/admin/users", nil, testenv.Bearer("x.y.z"), 401, "bad_jwt"},
		{"get a bad UUID", "GET", "/auth/v1/admin/users/not-a-uuid", nil, admin, 400, "validation_failed"},
		{"get a UUID without dashes", "GET", "/auth/v1/admin/users/" + strings.ReplaceAll(id, "-", ""), nil, admin, 400, "validation_failed"},
		{"update a bad UUID", "PUT", "/auth/v1/admin/users/123", map[string]any{}, admin, 400, "validation_failed"},
		{"delete a bad UUID", "DELETE", "/auth/v1/admin/users/123", nil, admin, 400, "validation_failed"},
		{"get an unknown id", "GET", "/auth/v1/admin/users/" + missing, nil, admin, 404, "user_not_found"},
		{"update an unknown id", "PUT", "/auth/v1/admin/users/" + missing, map[string]any{"user_metadata": map[string]any{"a": 1}}, admin, 404, "user_not_found"},
		{"delete an unknown id", "DELETE", "/auth/v1/admin/users/" + missing, nil, admin, 404, "user_not_found"},
		{"create with app_metadata.org_id", "POST", "/auth/v1/admin/users", newUser(map[string]any{"org_id": uuid.NewString()}), admin, 400, "validation_failed"},
		{"create with app_metadata.org_role", "POST", "/auth/v1/admin/users", newUser(map[string]any{"org_role": "owner"}), admin, 400, "validation_failed"},
		{"update app_metadata.org_id", "PUT", "/auth/v1/admin/users/" + id, map[string]any{"app_metadata": map[string]any{"org_id": uuid.NewString()}}, admin, 400, "validation_failed"},
		{"create with a weak password", "POST", "/auth/v1/admin/users", map[string]any{"email": "weak@example.com", "password": "123"}, admin, 422, "weak_password"},
		{"create with a bad email", "POST", "/auth/v1/admin/users", map[string]any{"email": "nope"}, admin, 400, "validation_failed"},
		{"create without email", "POST", "/auth/v1/admin/users", map[string]any{"password": testenv.Password}, admin, 400, "validation_failed"},
		{"create with an existing email", "POST", "/auth/v1/admin/users", map[string]any{"email": "Quinn@example.com"}, admin, 422, "email_exists"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			users := queryInt(t, e, "select count(*) from auth.users")
			expectAuthError(t, e, tc.method, tc.path, tc.body, tc.status, tc.code, tc.headers...)
			if n := queryInt(t, e, "select count(*) from auth.users"); n != users {
				t.Errorf("the refused request changed the user count from %d to %d", users, n)
			}
		})
	}
	// Nothing above touched the user or their session.
	r := getUser(t, e, user.AccessToken)
	wantStatus(t, r, 200, "GET /user")
	u := r.JSON(t)
	checkUser(t, u, "quinn@example.com", true)
	if app := u["app_metadata"].(map[string]any); app["org_id"] != user.User["app_metadata"].(map[string]any)["org_id"] {
		t.Errorf("org_id changed: %v", app)
	}
}

// ---- CORS ----

func TestCORS(t *testing.T) {
	t.Parallel()
	const allowed = "https://app.example.com"
	e := testenv.New(t, testenv.Options{CORSOrigins: []string{allowed}})
	preflight := func(origin string) *testenv.Response {
		t.Helper()
		return request(t, e, "OPTIONS", "/auth/v1/token?grant_type=password", nil, "Origin", origin,
			"Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "apikey, authorization, content-type, x-client-info, x-supabase-api-version")
	}
	headerList := func(h http.Header, name string) []string {
		var out []string
		for _, v := range h.Values(name) {
			for _, part := range strings.Split(v, ",") {
				out = append(out, strings.ToLower(strings.TrimSpace(part)))
			}
		}
		return out
	}

	r := preflight(allowed)
	if r.Status >= 300 {
		t.Errorf("preflight status %d", r.Status)
	}
	if got := r.Header.Get("Access-Control-Allow-Origin"); got != allowed {
		t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, allowed)
	}
	allowHeaders := headerList(r.Header, "Access-Control-Allow-Headers")
	for _, h := range []string{"apikey", "x-client-info", "x-supabase-api-version", "authorization", "content-type"} {
		if !slices.Contains(allowHeaders, h) {
			t.Errorf("Access-Control-Allow-Headers %q lacks %s", allowHeaders, h)
		}
	}
	if slices.Contains(allowHeaders, "x-org-id") {
		t.Errorf("Access-Control-Allow-Headers %q allows x-org-id", allowHeaders)
	}
	for _, m := range []string{"post", "put", "delete"} {
		if !slices.Contains(headerList(r.Header, "Access-Control-Allow-Methods"), m) {
			t.Errorf("Access-Control-Allow-Methods %q lacks %s", r.Header.Get("Access-Control-Allow-Methods"), m)
		}
	}

	// An actual request exposes the API version header.
	r = request(t, e, "GET", "/auth/v1/settings", nil, "Origin", allowed, apiVersionHeader, apiVersion)
	wantStatus(t, r, 200, "settings")
	if got := r.Header.Get("Access-Control-Allow-Origin"); got != allowed {
		t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, allowed)
	}
	if expose := headerList(r.Header, "Access-Control-Expose-Headers"); !slices.Contains(expose, "x-supabase-api-version") {
		t.Errorf("Access-Control-Expose-Headers %q lacks X-Supabase-Api-Version", expose)
	}
	if !slices.Contains(headerList(r.Header, "Vary"), "origin") {
		t.Errorf("Vary = %q, want Origin", r.Header.Values("Vary"))
	}

	// Another origin gets nothing that would let a browser read the answer.
	for name, r := range map[string]*testenv.Response{
		"preflight": preflight("https://evil.example.com"),
		"request":   request(t, e, "GET", "/auth/v1/settings", nil, "Origin", "https://evil.example.com"),
		"suffix":    request(t, e, "GET", "/auth/v1/settings", nil, "Origin", allowed+".evil.example.com"),
	} {
		for h := range r.Header {
			if strings.HasPrefix(strings.ToLower(h), "access-control-") {
				t.Errorf("%s from another origin got %s: %q", name, h, r.Header.Get(h))
			}
		}
	}
}

// ---- security events ----

func TestSecurityEventsLogged(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	const email, wrongPassword = "rita@example.com", "Wrong-Passw0rd-xyz"
	up := signUp(t, e, email)
	s := signIn(t, e, email, testenv.Password)
	wantStatus(t, request(t, e, "POST", "/auth/v1/token?grant_type=password", map[string]any{"email": email, "password": wrongPassword}), 400, "failed sign-in")
	wantStatus(t, request(t, e, "PUT", "/auth/v1/user", map[string]any{"password": newPassword}, s.bearer()...), 200, "password change")
	rs := decodeSession(t, refresh(t, e, s.RefreshToken), "refresh")
	wantStatus(t, request(t, e, "POST", "/auth/v1/logout", nil, rs.bearer()...), 204, "logout")

	logs := e.Logs.String()
	events := map[string][]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		if rec["msg"] == "security_event" {
			ev, _ := rec["event"].(string)
			events[ev] = append(events[ev], rec)
		}
	}
	for _, ev := range []string{"sign_in", "sign_in_failed", "password_changed", "sign_out"} {
		recs := events[ev]
		if len(recs) == 0 {
			t.Errorf("no security_event %q in the logs (events: %v)", ev, slices.Sorted(maps.Keys(events)))
			continue
		}
		if recs[0]["user_id"] != up.userID() {
			t.Errorf("security_event %s has user_id %v, want %s", ev, recs[0]["user_id"], up.userID())
		}
	}
	for name, secret := range map[string]string{"password": testenv.Password, "wrong password": wrongPassword, "new password": newPassword,
		"refresh token": s.RefreshToken, "access token": s.AccessToken} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain the %s", name)
		}
	}
}

// ---- settings, health, misc ----

func TestAuthSettingsAndHealth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts testenv.Options
	}{
		{"defaults", testenv.Options{}},
		{"signup disabled, no autoconfirm", testenv.Options{DisableSignup: true, Autoconfirm: boolPtr(false)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := testenv.New(t, tc.opts)
			r := request(t, e, "GET", "/auth/v1/settings", nil)
			wantStatus(t, r, 200, "settings")
			var st struct {
				External          map[string]bool `json:"external"`
				DisableSignup     *bool           `json:"disable_signup"`
				MailerAutoconfirm *bool           `json:"mailer_autoconfirm"`
				PhoneAutoconfirm  *bool           `json:"phone_autoconfirm"`
			}
			r.Decode(t, &st)
			wantAuto := tc.opts.Autoconfirm == nil || *tc.opts.Autoconfirm
			if !st.External["email"] || st.External["phone"] {
				t.Errorf("external = %v, want email only", st.External)
			}
			if st.DisableSignup == nil || *st.DisableSignup != tc.opts.DisableSignup {
				t.Errorf("disable_signup = %v, want %v: %s", st.DisableSignup, tc.opts.DisableSignup, r.Body)
			}
			if st.MailerAutoconfirm == nil || *st.MailerAutoconfirm != wantAuto {
				t.Errorf("mailer_autoconfirm = %v, want %v: %s", st.MailerAutoconfirm, wantAuto, r.Body)
			}
			if st.PhoneAutoconfirm == nil {
				t.Errorf("no phone_autoconfirm: %s", r.Body)
			}

			r = request(t, e, "GET", "/auth/v1/health", nil)
			wantStatus(t, r, 200, "auth health")
			h := r.JSON(t)
			for _, k := range []string{"version", "name", "description"} {
				if v, _ := h[k].(string); v == "" {
					t.Errorf("auth health %s = %v: %s", k, h[k], r.Body)
				}
			}
		})
	}
}

func TestUnknownAuthEndpoint(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	expectAuthError(t, e, "GET", "/auth/v1/nope", nil, 404, "not_found")
	expectAuthError(t, e, "POST", "/auth/v1/passkeys", map[string]any{}, 404, "not_found")
	// Versions before 2024-01-01 (or garbage) keep the legacy format and are not echoed.
	for _, v := range []string{"2023-12-31", "latest"} {
		r := request(t, e, "GET", "/auth/v1/nope", nil, apiVersionHeader, v)
		m := r.JSON(t)
		if m["code"] != float64(404) || m["error_code"] != "not_found" || r.Header.Get(apiVersionHeader) != "" {
			t.Errorf("version %q: %s (echoed %q), want the legacy format", v, r.Body, r.Header.Get(apiVersionHeader))
		}
	}
}

func TestAuthRequestID(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/auth/v1/settings", nil},
		{"POST", "/auth/v1/signup", map[string]any{"email": "bad"}},
		{"GET", "/auth/v1/user", nil},
	} {
		r := request(t, e, tc.method, tc.path, tc.body, "X-Request-Id", "client-req-42")
		if got := r.Header.Get("X-Request-Id"); got != "client-req-42" {
			t.Errorf("%s %s: X-Request-Id %q, want the client's", tc.method, tc.path, got)
		}
	}
}

// API.md: times are RFC 3339 in UTC. TestMain runs the package in a zone that is
// not UTC.
func TestAuthTimesAreUTC(t *testing.T) {
	t.Parallel()
	if _, off := time.Now().Zone(); off == 0 {
		t.Fatal("the test process runs in UTC: TestMain should have set a non-UTC zone")
	}
	e := testenv.New(t, testenv.Options{})
	svc, err := e.Auth.ServiceRoleToken(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	up := signUp(t, e, "sam@example.com")
	in := signIn(t, e, "sam@example.com", testenv.Password)
	g := getUser(t, e, in.AccessToken)
	wantStatus(t, g, 200, "GET /user")
	a := request(t, e, "GET", "/auth/v1/admin/users/"+up.userID(), nil, testenv.Bearer(svc)...)
	wantStatus(t, a, 200, "admin get user")
	for name, u := range map[string]map[string]any{"sign-up": up.User, "sign-in": in.User, "GET /user": g.JSON(t), "admin": a.JSON(t)} {
		for _, k := range []string{"created_at", "updated_at", "email_confirmed_at", "confirmed_at", "last_sign_in_at"} {
			s, _ := u[k].(string)
			if !strings.HasSuffix(s, "Z") {
				t.Errorf("%s: %s = %q, want RFC 3339 in UTC", name, k, s)
			}
		}
	}
}
