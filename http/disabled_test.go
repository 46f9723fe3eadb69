package http_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/voxanne/voxanne/internal/testenv"
)

// Features Voxanne does not offer answer GoTrue's status, code and message
// for a disabled one, and write nothing.
func TestDisabledFeaturesAnswerGoTrueErrors(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	for _, c := range []struct {
		name, method, path string
		body               map[string]any
		status             int
		code, message      string
	}{
		{"anonymous sign-in", "POST", "/auth/v1/signup", map[string]any{"data": map[string]any{}}, 422, "anonymous_provider_disabled", "Anonymous sign-ins are disabled"},
		{"phone sign-up", "POST", "/auth/v1/signup", map[string]any{"phone": "+15551234567", "password": testenv.Password}, 422, "phone_provider_disabled", "Phone signups are disabled"},
		{"phone password sign-in", "POST", "/auth/v1/token?grant_type=password", map[string]any{"phone": "+15551234567", "password": testenv.Password}, 422, "phone_provider_disabled", "Phone logins are disabled"},
		{"phone otp", "POST", "/auth/v1/otp", map[string]any{"phone": "+15551234567"}, 422, "phone_provider_disabled", "Phone logins are disabled"},
		{"web3", "POST", "/auth/v1/token?grant_type=web3", map[string]any{"chain": "solana", "message": "m", "signature": "s"}, 422, "web3_provider_disabled", "Web3 provider is disabled"},
		{"id_token", "POST", "/auth/v1/token?grant_type=id_token", map[string]any{"provider": "google", "id_token": "x"}, 400, "provider_disabled", ""},
		{"unknown grant", "POST", "/auth/v1/token?grant_type=bogus", map[string]any{}, 400, "validation_failed", ""},
	} {
		r := authDo(e, c.method, c.path, c.body)
		m := r.JSON(t)
		if r.Status != c.status || m["code"] != c.code || (c.message != "" && m["message"] != c.message) {
			t.Errorf("%s: %d %s, want %d %s %q", c.name, r.Status, r.Body, c.status, c.code, c.message)
		}
		// The legacy format carries the same code.
		if l := e.Do(c.method, c.path, c.body).JSON(t); l["error_code"] != c.code || l["code"] != float64(c.status) {
			t.Errorf("%s (legacy): %v", c.name, l)
		}
	}
	var users int
	if err := e.QueryRow(context.Background(), "select count(*) from auth.users").Scan(&users); err != nil || users != 0 {
		t.Errorf("refused sign-ins wrote %d users (%v)", users, err)
	}
}

// weak_password speaks GoTrue's words, with the configured minimum length,
// and reports a common password as GoTrue's "pwned".
func TestWeakPasswordWording(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{PasswordMinLength: 12})
	for _, c := range []struct {
		pw, message string
		reasons     []any
	}{
		{"Short-pw-9", "Password should be at least 12 characters.", []any{"length"}},
		{"password", "Password should be at least 12 characters. Password is known to be weak and easy to guess, please choose a different one.", []any{"length", "pwned"}},
	} {
		r := authDo(e, "POST", "/auth/v1/signup", map[string]any{"email": "weak@clinic.example", "password": c.pw})
		m := r.JSON(t)
		wp, _ := m["weak_password"].(map[string]any)
		if r.Status != 422 || m["code"] != "weak_password" || m["message"] != c.message || fmt.Sprint(wp["reasons"]) != fmt.Sprint(c.reasons) {
			t.Errorf("%q: %d %s", c.pw, r.Status, r.Body)
		}
	}
	if r := authDo(e, "POST", "/auth/v1/signup", map[string]any{"email": "ok@clinic.example", "password": "Twelve-chars"}); r.Status != 200 {
		t.Errorf("12 characters: %d %s", r.Status, r.Body)
	}
}
