// Package methods finds the methods allowed on a path that a router knows, for
// the 405 Method Not Allowed (with Allow) that a net/http ServeMux does not
// answer by itself once a catch-all route takes every request it has no route
// for.
package methods

import "net/http"

// Table holds the route patterns of a router that name a method.
type Table struct {
	mux *http.ServeMux
}

// New returns an empty table.
func New() *Table { return &Table{mux: http.NewServeMux()} }

// Add records a route pattern ("GET /api/calls/{id}"); a pattern without a
// method (a catch-all) is left out.
func (t *Table) Add(pattern string) {
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case ' ', '\t':
			t.mux.Handle(pattern, http.NotFoundHandler())
			return
		case '/':
			return
		}
	}
}

// Allowed returns the methods allowed on r's path as an Allow header lists
// them ("GET, HEAD"), when the table knows the path but not for r's method;
// otherwise "".
func (t *Table) Allowed(r *http.Request) string {
	h, pattern := t.mux.Handler(r)
	if pattern != "" {
		return ""
	}
	// The mux's own answer to a known path with another method is a 405
	// handler that sets Allow: run it on a recorder and keep the header.
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if rec.status != http.StatusMethodNotAllowed {
		return ""
	}
	return rec.header.Get("Allow")
}

// recorder keeps a response's header and status and discards its body.
type recorder struct {
	header http.Header
	status int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(status int)      { r.status = status }
