package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/voxanne/voxanne/internal/testenv"
	"github.com/voxanne/voxanne/web/webtest"
)

// While the database cannot be reached, a signed-in page answers 503 with
// Retry-After and a page that says to try again, as the API does, never 500.
func TestDatabaseOutageShows503(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	e.SignUp("outage@example.com")
	c := webtest.NewClient(t, e.URL)
	c.Login("outage@example.com", testenv.Password)
	if p := c.Get("/calls"); p.Status != http.StatusOK {
		t.Fatalf("before: %d", p.Status)
	}
	e.DB.Close()
	for _, path := range []string{"/calls", "/contacts", "/overview"} {
		p := c.Get(path)
		if p.Status != http.StatusServiceUnavailable || p.Header.Get("Retry-After") == "" || !strings.Contains(p.Body, "Temporarily unavailable") {
			t.Errorf("%s: %d (Retry-After %q)", path, p.Status, p.Header.Get("Retry-After"))
		}
	}
}
