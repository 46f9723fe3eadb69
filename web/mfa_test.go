package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/voxanne/voxanne/auth/totp"
	"github.com/voxanne/voxanne/internal/testenv"
	"github.com/voxanne/voxanne/web/webtest"
)

var (
	hiddenRE = func(name string) *regexp.Regexp {
		return regexp.MustCompile(`name="` + name + `" value="([^"]*)"`)
	}
	factorRE = hiddenRE("factor_id")
	secretRE = hiddenRE("secret")
)

func hidden(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in the page", re)
	}
	return m[1]
}

// codeAt is secret's code offset steps from now.
func codeAt(secret []byte, offset int64) string {
	return totp.HOTP(totp.SHA1, secret, totp.Step(time.Now())+offset, totp.Digits)
}

// enrollThroughPage sets up an authenticator from a page showing the set-up
// button, and returns the secret and the verify answer.
func enrollThroughPage(t *testing.T, c *webtest.Client, page *webtest.Page, next string) ([]byte, *webtest.Page) {
	t.Helper()
	p := c.Post("/mfa/enroll", url.Values{"csrf": {webtest.CSRF(page.Body)}, "next": {next}})
	if p.Status != 200 || !strings.Contains(p.Body, `src="data:image/svg`) {
		t.Fatalf("enrolment page: %d", p.Status)
	}
	enc := hidden(t, secretRE, p.Body)
	secret, err := totp.DecodeSecret(enc)
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"csrf": {webtest.CSRF(p.Body)}, "factor_id": {hidden(t, factorRE, p.Body)}, "secret": {enc}, "next": {next}}
	// A wrong code shows the same enrolment again.
	wrong := []byte(codeAt(secret, 0))
	wrong[0] = '0' + (wrong[0]-'0'+1)%10
	form.Set("code", string(wrong))
	if r := c.Post("/mfa/verify", form); r.Status != http.StatusBadRequest || !strings.Contains(r.Body, enc) || !strings.Contains(r.Body, "not right") {
		t.Fatalf("wrong first code: %d", r.Status)
	}
	form.Set("code", codeAt(secret, 0))
	return secret, c.Post("/mfa/verify", form)
}

// The dashboard walks a member of an org that requires MFA through
// enrolment (or the code prompt) before any page of the org, and returns to
// the page asked for; the owner turns the requirement on in the settings,
// from a verified session only.
func TestDashboardMFAWalkthrough(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	owner := e.SignUp("boss@clinic.example")
	e.AddMember(owner, "nurse@clinic.example", "member")

	o := webtest.NewClient(t, e.URL)
	o.Login("boss@clinic.example", testenv.Password)
	// Requiring MFA before passing it oneself is refused.
	tok := o.Token("/settings")
	if r := o.Post("/settings/mfa", url.Values{"csrf": {tok}, "require_mfa": {"on"}}); r.Status != http.StatusForbidden || !strings.Contains(r.Body, "for yourself first") {
		t.Fatalf("require MFA at aal1: %d", r.Status)
	}
	page := o.Get("/mfa")
	if page.Status != 200 || !strings.Contains(page.Body, "Set up an authenticator app") {
		t.Fatalf("GET /mfa: %d", page.Status)
	}
	_, r := enrollThroughPage(t, o, page, "")
	if r.Status != http.StatusSeeOther || r.Location != "/mfa?done=1" {
		t.Fatalf("verify: %d %q %s", r.Status, r.Location, r.Body)
	}
	if p := o.Get("/mfa"); !strings.Contains(p.Body, "This session is verified") {
		t.Error("the session is not verified after the code")
	}
	tok = o.Token("/settings")
	if r := o.Post("/settings/mfa", url.Values{"csrf": {tok}, "require_mfa": {"on"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("require MFA: %d %s", r.Status, r.Body)
	}
	if p := o.Get("/settings"); !strings.Contains(p.Body, "Stop requiring it") {
		t.Error("settings do not show the requirement")
	}
	if p := o.Get("/calls"); p.Status != 200 {
		t.Errorf("the verified owner's calls: %d", p.Status)
	}

	// The member: every page of the org is the walk-through (403), which
	// returns to the page asked for.
	m := webtest.NewClient(t, e.URL)
	m.Login("nurse@clinic.example", testenv.Password)
	for _, path := range []string{"/calls", "/contacts", "/settings", "/team"} {
		if p := m.Get(path); p.Status != http.StatusForbidden || !strings.Contains(p.Body, "requires two-factor authentication") {
			t.Errorf("%s at aal1: %d", path, p.Status)
		}
	}
	gate := m.Get("/contacts")
	secret, r := enrollThroughPage(t, m, gate, "/contacts")
	if r.Status != http.StatusSeeOther || r.Location != "/contacts" {
		t.Fatalf("member verify: %d %q", r.Status, r.Location)
	}
	if p := m.Get("/contacts"); p.Status != 200 {
		t.Errorf("contacts after verify: %d", p.Status)
	}

	// A later sign-in is asked for a code, not a new enrolment; a replayed
	// code is refused.
	m2 := webtest.NewClient(t, e.URL)
	m2.Login("nurse@clinic.example", testenv.Password)
	gate = m2.Get("/calls")
	if gate.Status != http.StatusForbidden || strings.Contains(gate.Body, "Set up an authenticator") || !strings.Contains(gate.Body, "Enter the code") {
		t.Fatalf("second sign-in gate: %d", gate.Status)
	}
	form := url.Values{"csrf": {webtest.CSRF(gate.Body)}, "factor_id": {hidden(t, factorRE, gate.Body)}, "next": {"/calls"}, "code": {codeAt(secret, 0)}}
	if p := m2.Post("/mfa/verify", form); p.Status != http.StatusBadRequest {
		t.Errorf("a replayed code: %d", p.Status)
	}
	form.Set("code", codeAt(secret, 1))
	if p := m2.Post("/mfa/verify", form); p.Status != http.StatusSeeOther || p.Location != "/calls" {
		t.Fatalf("code at sign-in: %d %q", p.Status, p.Location)
	}
	if p := m2.Get("/calls"); p.Status != 200 {
		t.Errorf("calls after the code: %d", p.Status)
	}
}
