package http_test

import (
	"context"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	voxhttp "github.com/voxanne/voxanne/http"
	"github.com/voxanne/voxanne/internal/testenv"
)

var (
	mailLinkRE = regexp.MustCompile(`http://[^\s]+/auth/v1/verify\?[^\s]+`)
	mailCodeRE = regexp.MustCompile(`code: (\d{6})`)
)

// mailParts returns the link's token_hash and the 6-digit code of the newest
// mail to addr.
func mailParts(t *testing.T, e *testenv.Env, addr string, n int) (tokenHash, code string) {
	t.Helper()
	body := lastMail(t, e, addr, n)
	link := mailLinkRE.FindString(body)
	u, err := url.Parse(link)
	if err != nil || link == "" {
		t.Fatalf("no link in the mail: %s", body)
	}
	if m := mailCodeRE.FindStringSubmatch(body); m != nil {
		code = m[1]
	}
	return u.Query().Get("token_hash"), code
}

// lastMail waits for the nth mail to addr and returns its body.
func lastMail(t *testing.T, e *testenv.Env, addr string, n int) string {
	t.Helper()
	return e.Mail.Nth(t, addr, n).Body
}

func authDo(e *testenv.Env, method, path string, body any, headers ...string) *testenv.Response {
	e.T.Helper()
	return e.Do(method, path, body, append([]string{"X-Supabase-Api-Version", mfaAPIVersion}, headers...)...)
}

// A magic link and its code sign in once, within the hour; a wrong code
// counts, and five of them kill the token; create_user false refuses an
// unknown address; an unknown address is signed up (with its own org).
func TestOTPMagicLinkAndCode(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	wantAuthError(t, authDo(e, "POST", "/auth/v1/otp", map[string]any{"email": "nobody@clinic.example", "create_user": false}), 422, "otp_disabled")
	if n := e.Mail.Count("nobody@clinic.example"); n != 0 {
		t.Errorf("%d mails to a refused address", n)
	}
	// A new address: signed up and mailed.
	if r := authDo(e, "POST", "/auth/v1/otp", map[string]any{"email": "new@clinic.example", "data": map[string]any{"org_name": "New Clinic"}}); r.Status != 200 {
		t.Fatalf("otp: %d %s", r.Status, r.Body)
	}
	hash, code := mailParts(t, e, "new@clinic.example", 1)
	if hash == "" || len(code) != 6 {
		t.Fatalf("mail parts: %q %q", hash, code)
	}
	// The code signs in once.
	r := authDo(e, "POST", "/auth/v1/verify", map[string]any{"type": "email", "email": "new@clinic.example", "token": code})
	if r.Status != 200 {
		t.Fatalf("verify code: %d %s", r.Status, r.Body)
	}
	var s testenv.Session
	r.Decode(t, &s)
	if _, c := decodeJWT(t, s.AccessToken); c["amr"].([]any)[0].(map[string]any)["method"] != "otp" || s.OrgID() == "" {
		t.Errorf("otp session: amr %v org %q", c["amr"], s.OrgID())
	}
	wantAuthError(t, authDo(e, "POST", "/auth/v1/verify", map[string]any{"type": "email", "email": "new@clinic.example", "token": code}), 403, "otp_expired")
	// The link of the same mail is spent with it.
	wantAuthError(t, authDo(e, "POST", "/auth/v1/verify", map[string]any{"type": "magiclink", "token_hash": hash}), 403, "otp_expired")

	// A second request: the link signs in (and is single use), by POST or GET.
	if r := authDo(e, "POST", "/auth/v1/otp", map[string]any{"email": "new@clinic.example"}); r.Status != 200 {
		t.Fatalf("otp again: %d", r.Status)
	}
	hash, code = mailParts(t, e, "new@clinic.example", 2)
	if r := authDo(e, "POST", "/auth/v1/verify", map[string]any{"type": "magiclink", "token_hash": hash}); r.Status != 200 {
		t.Fatalf("verify link: %d %s", r.Status, r.Body)
	}
	wantAuthError(t, authDo(e, "POST", "/auth/v1/verify", map[string]any{"type": "email", "email": "new@clinic.example", "token": code}), 403, "otp_expired")

	// Expired after an hour.
	if r := authDo(e, "POST", "/auth/v1/otp", map[string]any{"email": "new@clinic.example"}); r.Status != 200 {
		t.Fatal(r.Status)
	}
	hash, code = mailParts(t, e, "new@clinic.example", 3)
	if _, err := e.Exec(context.Background(), "update auth.one_time_tokens set expires_at = now() - interval '1 second' where used_at is null"); err != nil {
		t.Fatal(err)
	}
	wantAuthError(t, authDo(e, "POST", "/auth/v1/verify", map[string]any{"type": "email", "email": "new@clinic.example", "token": code}), 403, "otp_expired")
	wantAuthError(t, authDo(e, "POST", "/auth/v1/verify", map[string]any{"type": "magiclink", "token_hash": hash}), 403, "otp_expired")

	// Five wrong codes kill the token, the right one included.
	if r := authDo(e, "POST", "/auth/v1/otp", map[string]any{"email": "new@clinic.example"}); r.Status != 200 {
		t.Fatal(r.Status)
	}
	_, code = mailParts(t, e, "new@clinic.example", 4)
	for i := 0; i < 5; i++ {
		wrong := []byte(code)
		wrong[i] = '0' + (wrong[i]-'0'+1)%10
		wantAuthError(t, authDo(e, "POST", "/auth/v1/verify", map[string]any{"type": "email", "email": "new@clinic.example", "token": string(wrong)}), 403, "otp_expired")
	}
	wantAuthError(t, authDo(e, "POST", "/auth/v1/verify", map[string]any{"type": "email", "email": "new@clinic.example", "token": code}), 403, "otp_expired")
	// A tampered link and a code for another address are refused too.
	wantAuthError(t, authDo(e, "POST", "/auth/v1/verify", map[string]any{"type": "magiclink", "token_hash": hash + "x"}), 403, "otp_expired")
	wantAuthError(t, authDo(e, "POST", "/auth/v1/otp", map[string]any{"phone": "+15551234567"}), 422, "phone_provider_disabled")
}

// The mail budget per address applies to /otp as it does to /recover.
func TestOTPRateLimitedPerAddress(t *testing.T) {
	t.Parallel()
	rl := testenvLimits()
	e := testenv.New(t, testenv.Options{RateLimits: rl})
	for i := 0; i < rl.RecoverEmail.N; i++ {
		if r := authDo(e, "POST", "/auth/v1/otp", map[string]any{"email": "flood@clinic.example"}); r.Status != 200 {
			t.Fatalf("otp %d: %d %s", i, r.Status, r.Body)
		}
	}
	r := authDo(e, "POST", "/auth/v1/otp", map[string]any{"email": "Flood@Clinic.example"})
	wantAuthError(t, r, 429, "over_email_send_rate_limit")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// An operator's invitation mails a link that signs the person in (their
// address confirmed) to choose a password; generate_link makes each kind of
// link without mailing; the admin list pages as GoTrue's does.
func TestAdminInviteGenerateLinkAndPaging(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	svc, err := e.Auth.ServiceRoleToken(context.Background(), 3600e9)
	if err != nil {
		t.Fatal(err)
	}
	admin := testenv.Bearer(svc)
	user := e.SignUp("plain@clinic.example")
	wantAuthError(t, authDo(e, "POST", "/auth/v1/invite", map[string]any{"email": "x@clinic.example"}, testenv.Bearer(user.AccessToken)...), 403, "not_admin")

	r := authDo(e, "POST", "/auth/v1/invite", map[string]any{"email": "invited@clinic.example", "data": map[string]any{"name": "Ivy"}}, admin...)
	if r.Status != 200 || r.JSON(t)["email"] != "invited@clinic.example" || r.JSON(t)["email_confirmed_at"] != nil {
		t.Fatalf("invite: %d %s", r.Status, r.Body)
	}
	wantAuthError(t, authDo(e, "POST", "/auth/v1/invite", map[string]any{"email": "invited@clinic.example"}, admin...), 422, "email_exists")
	hash, _ := mailParts(t, e, "invited@clinic.example", 1)
	link := mailLinkRE.FindString(lastMail(t, e, "invited@clinic.example", 1))
	if !strings.Contains(link, "type=invite") || !strings.Contains(link, url.QueryEscape(e.URL+"/reset")) {
		t.Errorf("invite link %s", link)
	}
	r = authDo(e, "POST", "/auth/v1/verify", map[string]any{"type": "invite", "token_hash": hash})
	if r.Status != 200 {
		t.Fatalf("verify invite: %d %s", r.Status, r.Body)
	}
	var s testenv.Session
	r.Decode(t, &s)
	pw := "A-new-Passw0rd-for-Ivy"
	if r := e.Do("PUT", "/auth/v1/user", map[string]any{"password": pw}, testenv.Bearer(s.AccessToken)...); r.Status != 200 {
		t.Fatalf("set password: %d %s", r.Status, r.Body)
	}
	if r := e.Do("POST", "/auth/v1/token?grant_type=password", map[string]any{"email": "invited@clinic.example", "password": pw}); r.Status != 200 {
		t.Errorf("sign in with the chosen password: %d %s", r.Status, r.Body)
	}

	// generate_link: each type, no mail.
	before := e.Mail.Count("gen@clinic.example")
	for _, c := range []struct {
		body   map[string]any
		status int
		code   string
	}{
		{map[string]any{"type": "magiclink", "email": "gen@clinic.example"}, 404, "user_not_found"},
		{map[string]any{"type": "signup", "email": "gen@clinic.example", "password": "short"}, 422, "weak_password"},
		{map[string]any{"type": "signup", "email": "gen@clinic.example", "password": testenv.Password}, 200, ""},
		{map[string]any{"type": "signup", "email": "gen@clinic.example", "password": testenv.Password}, 422, "email_exists"},
		{map[string]any{"type": "magiclink", "email": "gen@clinic.example"}, 200, ""},
		{map[string]any{"type": "recovery", "email": "gen@clinic.example"}, 200, ""},
		{map[string]any{"type": "invite", "email": "gen2@clinic.example"}, 200, ""},
		{map[string]any{"type": "email_change_new", "email": "gen@clinic.example"}, 400, "validation_failed"},
		{map[string]any{"type": "nonsense", "email": "gen@clinic.example"}, 400, "validation_failed"},
	} {
		r := authDo(e, "POST", "/auth/v1/admin/generate_link", c.body, admin...)
		if c.status != 200 {
			wantAuthError(t, r, c.status, c.code)
			continue
		}
		m := r.JSON(t)
		if r.Status != 200 || m["verification_type"] != c.body["type"] || m["id"] == nil || m["email"] != c.body["email"] ||
			len(m["email_otp"].(string)) != 6 || !strings.Contains(m["action_link"].(string), "token_hash="+m["hashed_token"].(string)) {
			t.Errorf("generate_link %v: %d %s", c.body, r.Status, r.Body)
			continue
		}
		// The generated link signs in once.
		if r := authDo(e, "POST", "/auth/v1/verify", map[string]any{"type": c.body["type"], "token_hash": m["hashed_token"]}); r.Status != 200 {
			t.Errorf("verify generated %v: %d %s", c.body["type"], r.Status, r.Body)
		}
		wantAuthError(t, authDo(e, "POST", "/auth/v1/verify", map[string]any{"type": c.body["type"], "token_hash": m["hashed_token"]}), 403, "otp_expired")
	}
	if n := e.Mail.Count("gen@clinic.example"); n != before {
		t.Errorf("generate_link mailed %d times", n-before)
	}

	// Paging: X-Total-Count and GoTrue's Link header, page first in its query.
	var total int
	if err := e.QueryRow(context.Background(), "select count(*) from auth.users").Scan(&total); err != nil {
		t.Fatal(err)
	}
	r = authDo(e, "GET", "/auth/v1/admin/users?per_page=2&page=1", nil, admin...)
	last := (total + 1) / 2
	wantLink := `</auth/v1/admin/users?page=2&per_page=2>; rel="next", </auth/v1/admin/users?page=` + itoa(last) + `&per_page=2>; rel="last"`
	if r.Status != 200 || r.Header.Get("X-Total-Count") != itoa(total) || r.Header.Get("Link") != wantLink {
		t.Errorf("page 1: %d total %q link %q, want %q", r.Status, r.Header.Get("X-Total-Count"), r.Header.Get("Link"), wantLink)
	}
	r = authDo(e, "GET", "/auth/v1/admin/users?per_page=2&page="+itoa(last), nil, admin...)
	if users, _ := r.JSON(t)["users"].([]any); r.Header.Get("Link") != `</auth/v1/admin/users?page=`+itoa(last)+`&per_page=2>; rel="last"` || len(users) == 0 {
		t.Errorf("last page: link %q, %d users", r.Header.Get("Link"), len(users))
	}
	for _, bad := range []string{"page=-1", "page=0", "page=x", "per_page=0", "per_page=-5", "page=1.5"} {
		wantAuthError(t, authDo(e, "GET", "/auth/v1/admin/users?"+bad, nil, admin...), 400, "validation_failed")
	}
}

// GET /reauthenticate mails a nonce that a password change may carry: a wrong
// or spent one is refused; /resend mails a fresh confirmation that works.
func TestReauthenticateAndResend(t *testing.T) {
	t.Parallel()
	off := false
	e := testenv.New(t, testenv.Options{Autoconfirm: &off})
	if r := e.Do("POST", "/auth/v1/signup", map[string]any{"email": "rea@clinic.example", "password": testenv.Password}); r.Status != 200 {
		t.Fatal(r.Status)
	}
	e.Mail.WaitFor(t, "rea@clinic.example")
	if r := authDo(e, "POST", "/auth/v1/resend", map[string]any{"type": "signup", "email": "rea@clinic.example"}); r.Status != 200 {
		t.Fatalf("resend: %d %s", r.Status, r.Body)
	}
	_, code := mailParts(t, e, "rea@clinic.example", 2)
	r := authDo(e, "POST", "/auth/v1/verify", map[string]any{"type": "signup", "email": "rea@clinic.example", "token": code})
	if r.Status != 200 {
		t.Fatalf("verify resent code: %d %s", r.Status, r.Body)
	}
	var s testenv.Session
	r.Decode(t, &s)
	// The first mail's link no longer works once a new one was sent.
	first := mailLinkRE.FindString(lastMail(t, e, "rea@clinic.example", 1))
	u, _ := url.Parse(first)
	wantAuthError(t, authDo(e, "POST", "/auth/v1/verify", map[string]any{"type": "signup", "token_hash": u.Query().Get("token_hash")}), 403, "otp_expired")
	// Resend for an unknown or confirmed address answers the same, mails nothing.
	for _, addr := range []string{"ghost@clinic.example", "rea@clinic.example"} {
		n := e.Mail.Count(addr)
		if r := authDo(e, "POST", "/auth/v1/resend", map[string]any{"type": "signup", "email": addr}); r.Status != 200 || e.Mail.Count(addr) != n {
			t.Errorf("resend to %s: %d", addr, r.Status)
		}
	}
	wantAuthError(t, authDo(e, "POST", "/auth/v1/resend", map[string]any{"type": "bogus", "email": "rea@clinic.example"}), 400, "validation_failed")

	if r := authDo(e, "GET", "/auth/v1/reauthenticate", nil, testenv.Bearer(s.AccessToken)...); r.Status != 200 {
		t.Fatalf("reauthenticate: %d %s", r.Status, r.Body)
	}
	body := e.Mail.Nth(t, "rea@clinic.example", 3).Body
	nonce := regexp.MustCompile(`\d{6}`).FindString(body)
	pw := "Another-Passw0rd-here"
	wantAuthError(t, authDo(e, "PUT", "/auth/v1/user", map[string]any{"password": pw, "nonce": "000000"}, testenv.Bearer(s.AccessToken)...), 400, "reauthentication_not_valid")
	if r := authDo(e, "PUT", "/auth/v1/user", map[string]any{"password": pw, "nonce": nonce}, testenv.Bearer(s.AccessToken)...); r.Status != 200 {
		t.Fatalf("password with the nonce: %d %s", r.Status, r.Body)
	}
	wantAuthError(t, authDo(e, "PUT", "/auth/v1/user", map[string]any{"password": pw + "2", "nonce": nonce}, testenv.Bearer(s.AccessToken)...), 400, "reauthentication_not_valid")
}

func itoa(n int) string { return strconv.Itoa(n) }

// testenvLimits turns on only the per-address mail budget, three an hour.
func testenvLimits() *voxhttp.RateLimits {
	return &voxhttp.RateLimits{RecoverEmail: voxhttp.Rate{N: 3, Per: time.Hour}}
}
