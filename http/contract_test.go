package http_test

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	voxhttp "github.com/voxanne/voxanne/http"
	"github.com/voxanne/voxanne/internal/testenv"
)

// Every answer of this package's tests is checked against the OpenAPI
// document (testenv.CheckContract): a handler that answers a status, a header
// or a body shape the document does not describe fails the test that made it.
func init() { testenv.CheckContract = true }

// openAPIDoc loads the embedded document with kin-openapi.
func openAPIDoc(t *testing.T) *openapi3.T {
	t.Helper()
	if _, err := testenv.LoadOpenAPI(); err != nil {
		t.Fatalf("the OpenAPI document does not load or validate: %v", err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(voxhttp.OpenAPIDocument())
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// documentedOperations returns the document's operations as route patterns
// ("GET /api/calls/{id}").
func documentedOperations(doc *openapi3.T) []string {
	var ops []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}

// routedOperations returns the router's route patterns with a method.
func routedOperations(e *testenv.Env) []string {
	var ops []string
	for _, p := range e.Handler.Routes() {
		if strings.Contains(p, " ") {
			ops = append(ops, p)
		}
	}
	slices.Sort(ops)
	return ops
}

func TestOpenAPIDocumentIsServedAndValid(t *testing.T) {
	t.Parallel()
	doc := openAPIDoc(t)
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi %q: want 3.1", doc.OpenAPI)
	}
	e := testenv.New(t, testenv.Options{})
	r := e.Do("GET", "/api/openapi.json", nil)
	if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /api/openapi.json: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	if !bytes.Equal(r.Body, voxhttp.OpenAPIDocument()) {
		t.Error("GET /api/openapi.json does not serve the embedded document")
	}
	var v map[string]any
	if err := json.Unmarshal(r.Body, &v); err != nil || v["openapi"] != "3.1.0" {
		t.Errorf("served document: %v %v", err, v["openapi"])
	}
}

// The router's own table and the document list the same operations: a route
// added without its documentation, or documentation of a route that does not
// exist, fails here.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	t.Parallel()
	doc := openAPIDoc(t)
	e := testenv.New(t, testenv.Options{})
	documented, routed := documentedOperations(doc), routedOperations(e)
	for _, p := range routed {
		if !slices.Contains(documented, p) {
			t.Errorf("route %s is not in http/openapi.json", p)
		}
	}
	for _, p := range documented {
		if !slices.Contains(routed, p) {
			t.Errorf("http/openapi.json documents %s, which the router does not have", p)
		}
	}
	if len(routed) < 60 {
		t.Errorf("only %d routes: is the table read right?", len(routed))
	}
	// Every operation has a success answer and an error answer, and every
	// /api or /auth/v1 operation an operationId.
	for _, p := range documented {
		method, path, _ := strings.Cut(p, " ")
		op := doc.Paths.Find(path).GetOperation(method)
		if op.OperationID == "" || op.Summary == "" {
			t.Errorf("%s: no operationId or summary", p)
		}
		success := false
		for code := range op.Responses.Map() {
			success = success || strings.HasPrefix(code, "2") || code == "303"
		}
		if !success {
			t.Errorf("%s: no success response", p)
		}
	}
}

// docs/api.md is the reference in prose: it names every route of the router
// as "`METHOD /path`".
func TestAPIReferenceNamesEveryRoute(t *testing.T) {
	t.Parallel()
	ref, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	e := testenv.New(t, testenv.Options{})
	for _, p := range routedOperations(e) {
		if !strings.Contains(string(ref), "`"+p+"`") {
			t.Errorf("docs/api.md does not name `%s`", p)
		}
	}
}
