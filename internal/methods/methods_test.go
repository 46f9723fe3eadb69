package methods_test

import (
	"net/http/httptest"
	"testing"

	"github.com/voxanne/voxanne/internal/methods"
)

func TestAllowed(t *testing.T) {
	tb := methods.New()
	for _, p := range []string{"GET /calls", "GET /calls/{id}", "PATCH /calls/{id}", "POST /items/{id}/rotate", "/", "/api/"} {
		tb.Add(p)
	}
	for _, c := range []struct{ method, path, want string }{
		{"POST", "/calls", "GET, HEAD"},
		{"DELETE", "/calls/abc", "GET, HEAD, PATCH"},
		{"GET", "/items/1/rotate", "POST"},
		{"GET", "/calls", ""},        // allowed: not a 405
		{"HEAD", "/calls/x", ""},     // GET routes take HEAD
		{"POST", "/nowhere", ""},     // unknown path: a 404, not a 405
		{"PUT", "/api/anything", ""}, // catch-alls are not in the table
		{"GET", "/calls/a/b", ""},    // no pattern matches
		{"OPTIONS", "/calls", "GET, HEAD"},
	} {
		if got := tb.Allowed(httptest.NewRequest(c.method, c.path, nil)); got != c.want {
			t.Errorf("%s %s: Allowed = %q, want %q", c.method, c.path, got, c.want)
		}
	}
}
