package http_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	"github.com/voxanne/voxanne/internal/testenv"
)

// badInputWorld is an environment with an org owner's session and a
// service_role token, to reach every route past its authentication.
type badInputWorld struct {
	e       *testenv.Env
	owner   *testenv.Session
	service string
	doc     *openapi3.T
}

func newBadInputWorld(t *testing.T) *badInputWorld {
	t.Helper()
	e := testenv.New(t, testenv.Options{})
	svc, err := e.Auth.ServiceRoleToken(context.Background(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &badInputWorld{e: e, owner: e.SignUp("owner@badinput.example"), service: svc, doc: openAPIDoc(t)}
}

// operation is one documented operation.
type operation struct {
	method, path string
	op           *openapi3.Operation
}

// pattern is the operation as a route pattern.
func (o operation) pattern() string { return o.method + " " + o.path }

// url fills the operation's path parameters with fresh UUIDs.
func (o operation) url() string {
	return regexp.MustCompile(`\{[^}]+\}`).ReplaceAllStringFunc(o.path, func(string) string { return uuid.NewString() })
}

// checked reports whether the operation's query string is checked: /api and
// /auth/v1, but the webhooks.
func (o operation) checked() bool {
	return (strings.HasPrefix(o.path, "/api/") || strings.HasPrefix(o.path, "/auth/v1/")) && !strings.HasPrefix(o.path, "/api/webhooks/")
}

func (w *badInputWorld) operations() []operation {
	var ops []operation
	for path, item := range w.doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops = append(ops, operation{method, path, op})
		}
	}
	slices.SortFunc(ops, func(a, b operation) int { return strings.Compare(a.pattern(), b.pattern()) })
	return ops
}

// auth returns the headers that authenticate as the operation requires.
func (w *badInputWorld) auth(o operation) []string {
	security := w.doc.Security
	if o.op.Security != nil {
		security = *o.op.Security
	}
	for _, req := range security {
		if _, ok := req["serviceRole"]; ok {
			return testenv.Bearer(w.service)
		}
		if _, ok := req["bearer"]; ok {
			return testenv.Bearer(w.owner.AccessToken)
		}
	}
	return nil
}

// queryParams returns the operation's documented query parameter names.
func queryParams(o operation) []string {
	var names []string
	for _, p := range o.op.Parameters {
		if p.Value.In == "query" {
			names = append(names, p.Value.Name)
		}
	}
	return names
}

// required returns the operation's required query parameters with their
// documented example (or first allowed value), each followed by "&".
func required(t *testing.T, o operation) string {
	t.Helper()
	q := ""
	for _, p := range o.op.Parameters {
		if p.Value.In != "query" || !p.Value.Required {
			continue
		}
		v := p.Value.Example
		if v == nil && len(p.Value.Schema.Value.Enum) > 0 {
			v = p.Value.Schema.Value.Enum[0]
		}
		s, ok := v.(string)
		if !ok {
			t.Fatalf("required query parameter %s of %s has no example in the document", p.Value.Name, o.pattern())
		}
		q += p.Value.Name + "=" + url.QueryEscape(s) + "&"
	}
	return q
}

// wantValidationFailed checks a 400 validation_failed (in /api's or GoTrue's
// format) whose message contains mention.
func wantValidationFailed(t *testing.T, what string, r *testenv.Response, mention string) {
	t.Helper()
	if r.Status != http.StatusBadRequest {
		t.Errorf("%s: %d, want 400: %s", what, r.Status, r.Body)
		return
	}
	var body struct {
		Code      any    `json:"code"`
		ErrorCode string `json:"error_code"`
		Message   string `json:"message"`
		Msg       string `json:"msg"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Errorf("%s: body %s", what, r.Body)
		return
	}
	if body.Code != "validation_failed" && body.ErrorCode != "validation_failed" {
		t.Errorf("%s: code %v/%s, want validation_failed", what, body.Code, body.ErrorCode)
	}
	if msg := body.Message + body.Msg; !strings.Contains(msg, mention) {
		t.Errorf("%s: message %q does not name %q", what, msg, mention)
	}
}

// A wrong method on every known path is 405 with Allow listing the path's
// methods, in the format of the path's API; a path nobody serves stays 404.
func TestWrongMethodAnswers405WithAllow(t *testing.T) {
	t.Parallel()
	w := newBadInputWorld(t)
	byPath := map[string][]string{}
	for _, o := range w.operations() {
		byPath[o.path] = append(byPath[o.path], o.method)
	}
	n := 0
	for path, methods := range byPath {
		allowed := slices.Clone(methods)
		if slices.Contains(allowed, "GET") {
			allowed = append(allowed, "HEAD")
		}
		slices.Sort(allowed)
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			if slices.Contains(allowed, m) {
				continue
			}
			n++
			o := operation{method: m, path: path}
			r := w.e.Do(m, o.url(), nil, testenv.Bearer(w.owner.AccessToken)...)
			if r.Status != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d, want 405: %s", m, path, r.Status, r.Body)
				continue
			}
			got := strings.Split(r.Header.Get("Allow"), ", ")
			slices.Sort(got)
			if !slices.Equal(got, allowed) {
				t.Errorf("%s %s: Allow %v, want %v", m, path, got, allowed)
			}
			var body map[string]any
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Errorf("%s %s: body %s", m, path, r.Body)
				continue
			}
			code := body["code"]
			if strings.HasPrefix(path, "/auth/v1/") {
				code = body["error_code"] // GoTrue's legacy format without an API version
			}
			if code != "method_not_allowed" {
				t.Errorf("%s %s: body %s", m, path, r.Body)
			}
		}
	}
	if n < 50 {
		t.Errorf("only %d wrong methods tried", n)
	}
	// GoTrue's newer format when the client names an API version.
	r := w.e.Do("DELETE", "/auth/v1/token", nil, "X-Supabase-Api-Version", "2024-01-01")
	if r.Status != 405 || r.JSON(t)["code"] != "method_not_allowed" || r.Header.Get("Allow") != "POST" {
		t.Errorf("DELETE /auth/v1/token: %d %v %s", r.Status, r.Header.Get("Allow"), r.Body)
	}
	for _, p := range []string{"/api/no-such-thing", "/auth/v1/no-such-thing", "/no-such-thing"} {
		if r := w.e.Do("PUT", p, nil); r.Status != 404 || r.Header.Get("Allow") != "" {
			t.Errorf("PUT %s: %d Allow %q, want 404", p, r.Status, r.Header.Get("Allow"))
		}
	}
	// The dashboard: the HTML error page with Allow.
	for _, c := range []struct{ method, path, allow string }{
		{"DELETE", "/calls", "GET, HEAD"}, {"PUT", "/login", "GET, HEAD, POST"}, {"GET", "/logout", "POST"}, {"PATCH", "/contacts/" + uuid.NewString(), "GET, HEAD, POST"},
	} {
		status, h := dashboardDo(t, w.e, c.method, c.path)
		if status != 405 || h.Get("Allow") != c.allow || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
			t.Errorf("%s %s: %d Allow %q %s", c.method, c.path, status, h.Get("Allow"), h.Get("Content-Type"))
		}
	}
	if status, _ := dashboardDo(t, w.e, "DELETE", "/no-such-page"); status != 404 {
		t.Errorf("DELETE /no-such-page: %d", status)
	}
}

// dashboardDo sends a request without a body or session to a dashboard page
// (testenv's Do expects the API's X-Request-Id, which pages do not have).
func dashboardDo(t *testing.T, e *testenv.Env, method, path string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// Every /api and /auth/v1 operation refuses a query parameter the document
// does not list, naming it, and takes the ones it lists (each operation's own
// answer to them is checked by its handler's tests).
func TestUnknownQueryParametersAreRefused(t *testing.T) {
	t.Parallel()
	w := newBadInputWorld(t)
	n := 0
	for _, o := range w.operations() {
		if !o.checked() {
			continue
		}
		n++
		r := w.e.Do(o.method, o.url()+"?"+required(t, o)+"bogus_param=1", nil, w.auth(o)...)
		wantValidationFailed(t, o.pattern(), r, `unknown query parameter "bogus_param"`)
	}
	if n < 50 {
		t.Errorf("only %d operations checked", n)
	}
	// What auth-js sends is accepted: empty page and per_page of listUsers,
	// redirect_to, scope.
	if r := w.e.Do("GET", "/auth/v1/admin/users?page=&per_page=", nil, testenv.Bearer(w.service)...); r.Status != 200 {
		t.Errorf("admin users with empty page: %d %s", r.Status, r.Body)
	}
	if r := w.e.Do("POST", "/auth/v1/signup?redirect_to="+url.QueryEscape(w.e.URL+"/welcome"),
		map[string]any{"email": "redirect@badinput.example", "password": testenv.Password}); r.Status != 200 {
		t.Errorf("signup with redirect_to: %d %s", r.Status, r.Body)
	}
	if r := w.e.Do("GET", "/api/calls?limit=5&status=ended&q=x&from=2024-01-01&to=2024-12-31&org_id="+w.owner.OrgID(), nil, testenv.Bearer(w.owner.AccessToken)...); r.Status != 200 {
		t.Errorf("calls with every filter: %d %s", r.Status, r.Body)
	}
	// The webhooks, /health and /metrics ignore their query strings.
	for _, p := range []string{"/health?x=1", "/metrics?x=1", "/livez?x=%00"} {
		if r := w.e.Do("GET", p, nil); r.Status != 200 {
			t.Errorf("GET %s: %d", p, r.Status)
		}
	}
}

// A filter value the route cannot take is 400 validation_failed naming the
// parameter, before anything is read.
func TestBadFilterValuesNameTheParameter(t *testing.T) {
	t.Parallel()
	w := newBadInputWorld(t)
	user, svc := testenv.Bearer(w.owner.AccessToken), testenv.Bearer(w.service)
	for _, c := range []struct {
		method, path, param string
		auth                []string
	}{
		{"GET", "/api/calls?status=bogus", "status", user},
		{"GET", "/api/calls?limit=0", "limit", user},
		{"GET", "/api/calls?limit=ten", "limit", user},
		{"GET", "/api/calls?from=yesterday", "from", user},
		{"GET", "/api/calls?to=2024-13-01", "to", user},
		{"GET", "/api/calls?q=" + strings.Repeat("x", 300), "q", user},
		{"GET", "/api/messages?contact_id=nope", "contact_id", user},
		{"GET", "/api/contacts?cursor=%21%21", "cursor", user},
		{"GET", "/api/stats?from=nope", "from", user},
		{"GET", "/api/org/audit-log?action=Not+An+Action", "action", user},
		{"GET", "/api/org/audit-log?limit=101", "limit", user},
		{"DELETE", "/api/org?confirm=nope", "confirm", user},
		{"GET", "/api/admin/phone-numbers?org_id=nope", "org_id", svc},
		{"GET", "/auth/v1/admin/users?page=first", "page", svc},
		{"GET", "/auth/v1/admin/users?per_page=-1", "per_page", svc},
		{"DELETE", "/auth/v1/admin/users/" + uuid.NewString() + "?orphaned_orgs=keep", "orphaned_orgs", svc},
		{"POST", "/auth/v1/logout?scope=everyone", "scope", user},
		{"POST", "/auth/v1/token?grant_type=magic", "grant_type", nil},
	} {
		r := w.e.Do(c.method, c.path, nil, c.auth...)
		wantValidationFailed(t, c.method+" "+c.path, r, c.param)
	}
	// A malformed query string is refused whole.
	wantValidationFailed(t, "malformed query", w.e.Do("GET", "/api/calls?q=%zz", nil, user...), "query")
}

// NUL characters and invalid UTF-8 in any query parameter or JSON string of
// any route answer 400 validation_failed, never 500, and change nothing.
func TestNULAndInvalidUTF8AreRefused(t *testing.T) {
	t.Parallel()
	w := newBadInputWorld(t)
	bad := map[string]struct{ query, json string }{
		"NUL":           {"%00", `\u0000`},
		"invalid UTF-8": {"%FF%FE", "\xff\xfe"},
	}
	queries, bodies := 0, 0
	for _, o := range w.operations() {
		if !o.checked() {
			continue
		}
		for kind, b := range bad {
			for _, name := range queryParams(o) {
				queries++
				r := w.e.Do(o.method, o.url()+"?"+name+"=a"+b.query+"z", nil, w.auth(o)...)
				wantValidationFailed(t, o.pattern()+" ?"+name+" with "+kind, r, name)
			}
			if o.op.RequestBody == nil {
				continue
			}
			mt := o.op.RequestBody.Value.Content.Get("application/json")
			if mt == nil {
				continue
			}
			bodies++
			body := badBody(mt.Schema.Value, "a"+b.json+"z")
			r := w.e.Do(o.method, o.url()+"?"+required(t, o), body, w.auth(o)...)
			wantValidationFailed(t, o.pattern()+" body with "+kind+" "+body, r, "")
		}
	}
	if queries < 40 || bodies < 30 {
		t.Errorf("only %d query and %d body cases", queries, bodies)
	}
	// The name of a parameter too.
	wantValidationFailed(t, "NUL in a name", w.e.Do("GET", "/api/calls?a%00b=1", nil, testenv.Bearer(w.owner.AccessToken)...), "")
	// Nothing was written: the org keeps its name, no user was made.
	if r := w.e.Do("GET", "/api/org", nil, testenv.Bearer(w.owner.AccessToken)...); !strings.HasPrefix(r.JSON(t)["name"].(string), "Org owner@") {
		t.Errorf("org after the bad renames: %s", r.Body)
	}
	var users int
	if err := w.e.QueryRow(context.Background(), `select count(*) from auth.users`).Scan(&users); err != nil {
		t.Fatal(err)
	}
	if users != 1 {
		t.Errorf("%d users after bad sign-ups and admin creations, want 1", users)
	}
}

// badBody is a JSON object of the schema's properties with every string
// property (and every object property's one member) set to s; s is spliced in
// raw, so it may carry escapes and invalid bytes.
func badBody(schema *openapi3.Schema, s string) string {
	var schemas []*openapi3.Schema
	if len(schema.AnyOf) > 0 {
		for _, a := range schema.AnyOf {
			schemas = append(schemas, a.Value)
		}
	} else {
		schemas = []*openapi3.Schema{schema}
	}
	var fields []string
	for _, sc := range schemas {
		names := make([]string, 0, len(sc.Properties))
		for name := range sc.Properties {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			p := sc.Properties[name].Value
			switch {
			case p.Type.Includes("string"):
				fields = append(fields, `"`+name+`":"`+s+`"`)
			case p.Type.Includes("object"):
				fields = append(fields, `"`+name+`":{"key":"`+s+`"}`)
			}
		}
	}
	return "{" + strings.Join(fields, ",") + "}"
}

// An authentic delivery whose strings are not storable text is stored with
// them cleaned (NULs dropped, invalid sequences replaced) and processed: a
// 500 would have the provider retry it forever.
func TestAuthenticWebhooksWithBadTextAreCleanedAndProcessed(t *testing.T) {
	t.Parallel()
	w := newVoiceWorld(t, testenv.Options{})
	callID := "call-bad-text-" + uuid.NewString()
	body := strings.Replace(string(endOfCallReport(callID)), "Caller booked an appointment.",
		`Caller\u0000 booked`+"\xff"+` an appointment \ud800`, 1)
	body = strings.Replace(body, `"endedReason":"customer-ended-call"`, `"endedReason":"customer\u0000-ended-call","x\u0000":"\u0000"`, 1)
	if r := w.e.Do("POST", "/api/webhooks/vapi", body, "X-Vapi-Secret", "wrong"); r.Status != 401 {
		t.Fatalf("unauthenticated: %d %s", r.Status, r.Body)
	}
	if r := w.postVapi([]byte(body)); r.Status != 200 {
		t.Fatalf("Vapi: %d %s", r.Status, r.Body)
	}
	sms := url.Values{"MessageSid": {"SM-bad-text"}, "From": {caller}, "To": {twilioNumber}, "Body": {"Running\x00 late\xff"}, "Bad\x00Name": {"x"}}
	if r := twilioPost(w, "/api/webhooks/twilio/sms", sms, testenv.TwilioToken); r.Status != 200 {
		t.Fatalf("Twilio: %d %s", r.Status, r.Body)
	}
	w.waitProcessed(t)
	var summary, reason string
	if err := w.e.QueryRow(context.Background(), `select summary, ended_reason from calls where provider_call_id = $1`, callID).Scan(&summary, &reason); err != nil {
		t.Fatal(err)
	}
	if summary != "Caller booked\uFFFD an appointment \uFFFD" || reason != "customer-ended-call" {
		t.Errorf("stored call: summary %q, ended_reason %q", summary, reason)
	}
	var msg string
	if err := w.e.QueryRow(context.Background(), `select body from messages where provider_message_id = 'SM-bad-text'`).Scan(&msg); err != nil {
		t.Fatal(err)
	}
	if msg != "Running late\uFFFD" {
		t.Errorf("stored message %q", msg)
	}
	// The raw events are kept, cleaned, and none failed.
	if n := w.count(t, `select count(*) from webhook_events where status <> 'processed'`); n != 0 {
		t.Errorf("%d events not processed", n)
	}
	if n := w.count(t, `select count(*) from webhook_events where position('\u0000' in payload::text) > 0`); n != 0 {
		t.Errorf("%d stored payloads still carry a NUL", n)
	}
	if n := w.count(t, `select count(*) from webhook_events where payload ? 'BadName'`); n != 1 {
		t.Errorf("the Twilio payload's cleaned field name: %d", n)
	}
}

// A User-Agent with invalid UTF-8 (a header, not a field to refuse) is
// stored cleaned: sign-in and refresh work.
func TestUserAgentWithInvalidUTF8IsCleaned(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	e.SignUp("agent@badinput.example")
	r := e.Do("POST", "/auth/v1/token?grant_type=password", map[string]any{"email": "agent@badinput.example", "password": testenv.Password},
		"User-Agent", "odd\xff\xfeagent")
	if r.Status != 200 {
		t.Fatalf("sign-in: %d %s", r.Status, r.Body)
	}
	var agent string
	if err := e.QueryRow(context.Background(), `select user_agent from auth.sessions order by created_at desc limit 1`).Scan(&agent); err != nil {
		t.Fatal(err)
	}
	if agent != "odd\uFFFDagent" {
		t.Errorf("stored user agent %q", agent)
	}
}
