package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	voxhttp "github.com/voxanne/voxanne/http"
	"github.com/voxanne/voxanne/web"
)

// CheckContract, when set before New, has every environment check each answer
// of the API (everything but the dashboard) against the OpenAPI document
// (http/openapi.json): the request must match a documented operation (a 404
// or 405 aside) and the response's status, headers and body must be among
// that operation's. Mismatches fail the test that made the environment. The
// http package's tests turn it on.
var CheckContract bool

// LoadOpenAPI loads and validates the embedded OpenAPI document with
// kin-openapi, and builds its router.
var LoadOpenAPI = sync.OnceValues(func() (routers.Router, error) {
	// The two answers that are neither JSON nor plain text: Twilio's TwiML and
	// the audit export's JSON Lines (checked as an array of its lines).
	openapi3filter.RegisterBodyDecoder("text/xml", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", func(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		lines := []any{}
		dec := json.NewDecoder(body)
		for {
			var v any
			if err := dec.Decode(&v); err == io.EOF {
				return lines, nil
			} else if err != nil {
				return nil, err
			}
			lines = append(lines, v)
		}
	})
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(voxhttp.OpenAPIDocument())
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	return legacy.NewRouter(doc)
})

// maxChecked is the largest body whose content is checked (larger ones, such
// as long exports, have their status and headers checked only).
const maxChecked = 4 << 20

// contract checks the answers of one environment's server.
type contract struct {
	router routers.Router
	mu     sync.Mutex
	seen   map[string]bool
	errs   []string
}

// contractCheck wraps next with the contract check when CheckContract is on,
// reporting mismatches to t when the environment is torn down.
func contractCheck(t testing.TB, next http.Handler) http.Handler {
	if !CheckContract {
		return next
	}
	router, err := LoadOpenAPI()
	if err != nil {
		t.Fatalf("testenv: the OpenAPI document: %v", err)
	}
	c := &contract{router: router, seen: map[string]bool{}}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, e := range c.errs {
			t.Errorf("OpenAPI contract: %s", e)
		}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// CORS preflights and HEAD are answered by the middleware and
		// the mux for every route; the dashboard is HTML, not the API.
		if r.Method == http.MethodOptions || r.Method == http.MethodHead || web.IsDashboardPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		rec := &teeWriter{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		c.check(r, rec)
	})
}

func (c *contract) check(r *http.Request, rec *teeWriter) {
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	route, params, err := c.router.FindRoute(r)
	if err != nil {
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			return
		}
		c.fail(r.Method+" "+r.URL.Path, fmt.Sprintf("%s %s answered %d but the document has no such operation (%v)", r.Method, r.URL.Path, status, err))
		return
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route},
		Status:                 status,
		Header:                 rec.Header(),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if rec.overflow {
		input.Options.ExcludeResponseBody = true
	} else {
		input.SetBodyBytes(rec.body.Bytes())
	}
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		body := rec.body.String()
		if len(body) > 300 {
			body = body[:300] + "..."
		}
		reason, _, _ := strings.Cut(err.Error(), "Schema:") // not the whole schema
		reason = strings.Join(strings.Fields(reason), " ")
		c.fail(route.Method+" "+route.Path+" "+fmt.Sprint(status)+" "+reason,
			fmt.Sprintf("%s %s (%s %s) answered %d: %s; body: %s", r.Method, r.URL.Path, route.Method, route.Path, status, reason, body))
	}
}

// fail records a mismatch once per key.
func (c *contract) fail(key, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.seen[key] {
		c.seen[key] = true
		c.errs = append(c.errs, msg)
	}
}

// teeWriter passes a response through and keeps its status and (up to
// maxChecked) its body.
type teeWriter struct {
	http.ResponseWriter
	status   int
	body     bytes.Buffer
	overflow bool
}

func (w *teeWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *teeWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if !w.overflow && w.body.Len()+len(b) <= maxChecked {
		w.body.Write(b)
	} else {
		w.overflow = true
	}
	return w.ResponseWriter.Write(b)
}

func (w *teeWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
