package http_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/voxanne/voxanne/internal/testenv"
)

// follow opens a mailed link without following its redirect.
func follow(t *testing.T, link string) (int, *url.URL) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, loc
}

func mailedLink(t *testing.T, body string) string {
	t.Helper()
	for _, f := range strings.Fields(body) {
		if strings.Contains(f, "/auth/v1/verify?") {
			return f
		}
	}
	t.Fatalf("no link in %q", body)
	return ""
}

// Clicking a mailed link verifies it and lands on the site with the session in
// the fragment (as Supabase Auth does); a used link lands with the error; a
// redirect_to elsewhere than the site or an allowed origin is ignored.
func TestMailedLinksVerifyAndRedirect(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{CORSOrigins: []string{"https://app.example.com"}})
	e.SignUp("clicker@example.com")
	if r := e.Do("POST", "/auth/v1/recover", map[string]any{"email": "clicker@example.com"}); r.Status != 200 {
		t.Fatal(r.Status)
	}
	link := mailedLink(t, e.Mail.WaitFor(t, "clicker@example.com").Body)
	status, loc := follow(t, link)
	frag, _ := url.ParseQuery(loc.Fragment)
	if status != http.StatusSeeOther || loc.Scheme+"://"+loc.Host+"/" != e.URL+"/" || frag.Get("access_token") == "" || frag.Get("type") != "recovery" {
		t.Fatalf("%d %s", status, loc)
	}
	if r := e.Do("GET", "/auth/v1/user", nil, testenv.Bearer(frag.Get("access_token"))...); r.Status != 200 {
		t.Fatalf("session from the link: %d", r.Status)
	}
	status, loc = follow(t, link)
	frag, _ = url.ParseQuery(loc.Fragment)
	if status != http.StatusSeeOther || frag.Get("error_code") != "otp_expired" || frag.Get("access_token") != "" {
		t.Fatalf("reused link: %d %s", status, loc)
	}
	for to, want := range map[string]string{
		"https://app.example.com/welcome": "https://app.example.com/welcome",
		"https://evil.example/steal":      e.URL + "/",
		"javascript:alert(1)":             e.URL + "/",
	} {
		if r := e.Do("POST", "/auth/v1/recover", map[string]any{"email": "clicker@example.com"}); r.Status != 200 {
			t.Fatal(r.Status)
		}
		_, loc := follow(t, link+"&redirect_to="+url.QueryEscape(to))
		loc.Fragment = ""
		if loc.String() != want {
			t.Errorf("redirect_to %s went to %s", to, loc)
		}
	}
}
