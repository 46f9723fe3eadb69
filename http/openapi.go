package http

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/voxanne/voxanne"
)

// openAPIJSON is the OpenAPI 3.1 document of every route: the one description
// of the API, served at GET /api/openapi.json, checked against the router and
// the handlers' answers by the contract test, and the source of the query
// parameters each route accepts.
//
//go:embed openapi.json
var openAPIJSON []byte

// OpenAPIDocument returns the embedded OpenAPI 3.1 document.
func OpenAPIDocument() []byte { return slices.Clone(openAPIJSON) }

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) error {
	// Public and the same for every caller until the next release.
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openAPIJSON)
	return err
}

// queryParam is a query parameter of an operation and the values the document
// allows for it (an empty value counts as absent).
type queryParam struct {
	enum    []string
	pattern *regexp.Regexp
}

// querySpecs maps each documented operation, as a route pattern ("GET
// /api/calls"), to the query parameters it accepts.
var querySpecs = sync.OnceValue(func() map[string]map[string]queryParam {
	specs, err := parseQuerySpecs(openAPIJSON)
	if err != nil {
		panic("http: the embedded OpenAPI document: " + err.Error())
	}
	return specs
})

// The parts of the document that say which query parameters there are.
type (
	oaDoc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Parameters map[string]oaParam  `json:"parameters"`
			Schemas    map[string]oaSchema `json:"schemas"`
		} `json:"components"`
	}
	oaParam struct {
		Ref    string   `json:"$ref"`
		Name   string   `json:"name"`
		In     string   `json:"in"`
		Schema oaSchema `json:"schema"`
	}
	oaSchema struct {
		Ref     string `json:"$ref"`
		Enum    []any  `json:"enum"`
		Pattern string `json:"pattern"`
	}
)

var oaMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func parseQuerySpecs(doc []byte) (map[string]map[string]queryParam, error) {
	var d oaDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, err
	}
	ref := func(r, prefix string) (string, error) {
		name, ok := strings.CutPrefix(r, prefix)
		if !ok {
			return "", fmt.Errorf("unsupported $ref %s", r)
		}
		return name, nil
	}
	param := func(p oaParam) (oaParam, error) {
		if p.Ref != "" {
			name, err := ref(p.Ref, "#/components/parameters/")
			if err != nil {
				return p, err
			}
			p = d.Components.Parameters[name]
		}
		if p.Schema.Ref != "" {
			name, err := ref(p.Schema.Ref, "#/components/schemas/")
			if err != nil {
				return p, err
			}
			p.Schema = d.Components.Schemas[name]
		}
		return p, nil
	}
	specs := map[string]map[string]queryParam{}
	for path, item := range d.Paths {
		var shared []oaParam
		if raw, ok := item["parameters"]; ok {
			if err := json.Unmarshal(raw, &shared); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		}
		for _, m := range oaMethods {
			raw, ok := item[m]
			if !ok {
				continue
			}
			var op struct {
				Parameters []oaParam `json:"parameters"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				return nil, fmt.Errorf("%s %s: %w", m, path, err)
			}
			q := map[string]queryParam{}
			for _, p := range append(slices.Clone(shared), op.Parameters...) {
				p, err := param(p)
				if err != nil {
					return nil, fmt.Errorf("%s %s: %w", m, path, err)
				}
				if p.In != "query" {
					continue
				}
				var qp queryParam
				for _, v := range p.Schema.Enum {
					qp.enum = append(qp.enum, fmt.Sprint(v))
				}
				if p.Schema.Pattern != "" {
					if qp.pattern, err = regexp.Compile(p.Schema.Pattern); err != nil {
						return nil, fmt.Errorf("%s %s: %s: %w", m, path, p.Name, err)
					}
				}
				q[p.Name] = qp
			}
			specs[strings.ToUpper(m)+" "+path] = q
		}
	}
	return specs, nil
}

// queryCheck returns the check of the query string of the route pattern. On
// /api and /auth/v1 (but the webhooks, which read no query and whose senders
// are not ours to refuse) every name and value must be valid text, and on a
// documented route each name must be one the document lists, with a value it
// allows: otherwise 400 validation_failed naming the parameter.
func queryCheck(pattern string) func(*http.Request) error {
	_, path, _ := strings.Cut(pattern, " ")
	if !strings.HasPrefix(path, "/api/") && !strings.HasPrefix(path, "/auth/v1/") || strings.HasPrefix(path, "/api/webhooks/") {
		return func(*http.Request) error { return nil }
	}
	params, documented := querySpecs()[pattern]
	return func(r *http.Request) error {
		if r.URL.RawQuery == "" {
			return nil
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonValidationFailed, "the query string is malformed")
		}
		for _, name := range slices.Sorted(maps.Keys(q)) {
			if !voxanne.ValidText(name) {
				return voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonValidationFailed,
					"query parameter %s: names must be UTF-8 text without NUL characters", quoteParam(name))
			}
			p, known := params[name]
			if documented && !known {
				return voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonValidationFailed,
					"unknown query parameter %s", quoteParam(name))
			}
			for _, v := range q[name] {
				if err := p.check(name, v); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

// check reports whether v is a value the parameter allows.
func (p queryParam) check(name, v string) error {
	if !voxanne.ValidText(v) {
		return voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonValidationFailed,
			"%s must be UTF-8 text without NUL characters", name)
	}
	if v == "" {
		return nil
	}
	if p.enum != nil && !slices.Contains(p.enum, v) {
		return voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonValidationFailed,
			"%s must be one of %s", name, strings.Join(p.enum, ", "))
	}
	if p.pattern != nil && !p.pattern.MatchString(v) {
		return voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonValidationFailed, "%s is not valid", name)
	}
	return nil
}

// quoteParam quotes a parameter name for an error message, shortened.
func quoteParam(name string) string {
	if utf8.RuneCountInString(name) > 64 {
		name = string([]rune(name)[:64]) + "..."
	}
	return fmt.Sprintf("%q", name)
}
