package http_test

// A password change or a completed recovery invalidates every recovery and
// confirmation link of the user that is still outstanding: a link mailed before
// (to an inbox someone else may read) never signs in afterwards.

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/voxanne/voxanne/internal/testenv"
)

// recoveryLinks asks for n recovery links for email and returns their token hashes.
func recoveryLinks(t *testing.T, e *testenv.Env, mails *mailRecorder, email string, n int) []string {
	t.Helper()
	have := len(mails.bodies(email))
	var out []string
	for i := 0; i < n; i++ {
		wantStatus(t, request(t, e, "POST", "/auth/v1/recover", map[string]any{"email": email}), 200, "recover")
		bodies := mails.wait(t, email, have+i+1)
		_, th, kind := mailLink(t, bodies[len(bodies)-1])
		if kind != "recovery" {
			t.Fatalf("link type %q", kind)
		}
		out = append(out, th)
	}
	return out
}

// linkRefused checks that a mailed link no longer verifies, by POST and by the
// GET a mail client opens.
func linkRefused(t *testing.T, e *testenv.Env, kind, tokenHash, what string) {
	t.Helper()
	expectAuthError(t, e, "POST", "/auth/v1/verify", map[string]any{"type": kind, "token_hash": tokenHash}, 403, "otp_expired")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(e.URL + "/auth/v1/verify?type=" + kind + "&token_hash=" + tokenHash)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); strings.Contains(loc, "access_token") || !strings.Contains(loc, "error_code=otp_expired") {
		t.Errorf("%s: GET link redirects to %q, want an otp_expired error", what, loc)
	}
}

func TestPasswordChangeInvalidatesMailedLinks(t *testing.T) {
	t.Parallel()
	mails := &mailRecorder{}
	e := testenv.New(t, testenv.Options{Mailer: mails})
	s := signUp(t, e, "links@example.com")
	links := recoveryLinks(t, e, mails, "links@example.com", 2)
	wantStatus(t, request(t, e, "PUT", "/auth/v1/user", map[string]any{"password": newPassword}, s.bearer()...), 200, "change password")
	for i, th := range links {
		linkRefused(t, e, "recovery", th, "recovery link "+string(rune('1'+i))+" after a password change")
	}
	// A link asked for after the change works.
	fresh := recoveryLinks(t, e, mails, "links@example.com", 1)[0]
	wantStatus(t, request(t, e, "POST", "/auth/v1/verify", map[string]any{"type": "recovery", "token_hash": fresh}), 200, "link after the change")
}

func TestCompletedRecoveryInvalidatesOtherLinks(t *testing.T) {
	t.Parallel()
	mails := &mailRecorder{}
	e := testenv.New(t, testenv.Options{Mailer: mails})
	signUp(t, e, "twice@example.com")
	links := recoveryLinks(t, e, mails, "twice@example.com", 2)
	v := decodeSession(t, request(t, e, "POST", "/auth/v1/verify", map[string]any{"type": "recovery", "token_hash": links[1]}), "use the second link")
	linkRefused(t, e, "recovery", links[0], "first link after the second was used")
	// The recovery session sets a new password; the old links stay dead.
	wantStatus(t, request(t, e, "PUT", "/auth/v1/user", map[string]any{"password": newPassword}, v.bearer()...), 200, "set new password")
	linkRefused(t, e, "recovery", links[0], "first link after the new password")
	signIn(t, e, "twice@example.com", newPassword)
}

// Confirmation links go too: by a completed recovery (which confirms the
// address) and by an operator setting the password.
func TestRecoveryAndAdminPasswordInvalidateConfirmationLinks(t *testing.T) {
	t.Parallel()
	mails := &mailRecorder{}
	e := testenv.New(t, testenv.Options{Mailer: mails, Autoconfirm: boolPtr(false)})
	admin, err := e.Auth.ServiceRoleToken(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ email, how string }{{"conf1@example.com", "recovery"}, {"conf2@example.com", "admin"}} {
		t.Run(c.how, func(t *testing.T) {
			r := request(t, e, "POST", "/auth/v1/signup", map[string]any{"email": c.email, "password": testenv.Password})
			wantStatus(t, r, 200, "sign up")
			id, _ := r.JSON(t)["id"].(string)
			_, confirm, kind := mailLink(t, mails.wait(t, c.email, 1)[0])
			if kind != "signup" {
				t.Fatalf("link type %q", kind)
			}
			switch c.how {
			case "recovery":
				th := recoveryLinks(t, e, mails, c.email, 1)[0]
				wantStatus(t, request(t, e, "POST", "/auth/v1/verify", map[string]any{"type": "recovery", "token_hash": th}), 200, "recover")
			case "admin":
				wantStatus(t, request(t, e, "PUT", "/auth/v1/admin/users/"+id, map[string]any{"password": newPassword}, testenv.Bearer(admin)...), 200, "operator sets a password")
			}
			linkRefused(t, e, "signup", confirm, "confirmation link after "+c.how)
		})
	}
}
