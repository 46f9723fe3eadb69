package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/voxanne/voxanne/internal/testenv"
	"github.com/voxanne/voxanne/web"
	"github.com/voxanne/voxanne/web/webtest"
)

// Every dashboard route refuses a NUL character or invalid UTF-8 in a form
// field or query parameter with the 400 page, before any handler runs: such
// text would fail in PostgreSQL as a 500. A real form with such text changes
// nothing.
func TestDashboardRefusesNULAndInvalidUTF8(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	owner := e.SignUp("owner@badtext.example")
	c := webtest.NewClient(t, e.URL)
	c.Login("owner@badtext.example", testenv.Password)
	csrf := c.Token("/settings")
	param := regexp.MustCompile(`\{[^}]+\}`)
	n := 0
	for _, p := range web.New(web.Config{}).Routes() {
		method, path, ok := strings.Cut(p, " ")
		if !ok || path == "/static/{file}" || path == "/events" {
			continue
		}
		path = param.ReplaceAllString(strings.ReplaceAll(path, "{$}", ""), uuid.NewString())
		for _, bad := range []string{"a\x00b", "a\xffb"} {
			n++
			var r *webtest.Page
			if method == "POST" {
				r = c.Post(path, url.Values{"csrf": {csrf}, "name": {bad}, "email": {bad}, "notes": {bad}, "q": {"ok"}})
			} else {
				r = c.Get(path + "?q=" + url.QueryEscape(bad))
			}
			if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "Invalid characters") {
				t.Errorf("%s %s with %q: %d", method, path, bad, r.Status)
			}
		}
	}
	if n < 60 {
		t.Errorf("only %d cases", n)
	}
	// A field name too, and a signed-out form.
	if r := c.Post("/settings/org", url.Values{"csrf": {csrf}, "na\x00me": {"x"}}); r.Status != http.StatusBadRequest {
		t.Errorf("NUL in a field name: %d", r.Status)
	}
	if r := webtest.NewClient(t, e.URL).Post("/login", url.Values{"email": {"a\x00@example.com"}, "password": {"x"}}); r.Status != http.StatusBadRequest {
		t.Errorf("sign-in form: %d", r.Status)
	}
	// Nothing changed: the org keeps its name.
	if r := e.Do("GET", "/api/org", nil, testenv.Bearer(owner.AccessToken)...); !strings.Contains(string(r.Body), `"name":"Org owner@badtext.example"`) {
		t.Errorf("org after the bad renames: %s", r.Body)
	}
}
