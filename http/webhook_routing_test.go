package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/voxanne/voxanne/internal/testenv"
)

// routingWorld is two clinics: A, whose numbers and assistant the operator
// assigned, and B, an attacker who signed up on their own.
type routingWorld struct {
	*voiceWorld
	ownerB *testenv.Session
	orgB   string
}

func newRoutingWorld(t *testing.T) *routingWorld {
	t.Helper()
	w := &routingWorld{voiceWorld: newVoiceWorld(t, testenv.Options{})}
	w.ownerB = w.e.SignUp("attacker@example.com")
	w.orgB = w.ownerB.OrgID()
	return w
}

func (w *routingWorld) as(s *testenv.Session, method, path string, body any) *testenv.Response {
	return w.e.Do(method, path, body, testenv.Bearer(s.AccessToken)...)
}

// orgEvents counts the stored events and the calls and messages of org.
func (w *routingWorld) orgData(t *testing.T, org string) (events, calls, messages int) {
	t.Helper()
	return w.count(t, `select count(*) from webhook_events where org_id = $1`, org),
		w.count(t, `select count(*) from calls where org_id = $1`, org),
		w.count(t, `select count(*) from messages where org_id = $1`, org)
}

// The reported hijack: B registers A's Vapi number, provider id and assistant
// id and A's Twilio number as its own. Events for them on the shared endpoints
// still go to A only, and B's labels don't even answer assistant requests.
func TestWebhookRoutingIgnoresTenantClaims(t *testing.T) {
	t.Parallel()
	w := newRoutingWorld(t)
	for _, n := range []map[string]any{
		{"e164": vapiNumber, "provider": "vapi", "provider_id": vapiNumberID, "assistant_id": assistantID, "label": "mine now"},
		{"e164": twilioNumber, "provider": "twilio", "label": "mine too"},
	} {
		if r := w.as(w.ownerB, "POST", "/api/phone-numbers", n); r.Status != 201 {
			t.Fatalf("B's registration: %d %s", r.Status, r.Body)
		}
	}

	// Vapi: a call by provider number id, one by number only, one by assistant only.
	for i, ev := range [][]byte{
		endOfCallReport("hijack-1"),
		vapiEvent("status-update", "hijack-2", map[string]any{"status": "in-progress", "phoneNumber": map[string]any{"number": vapiNumber},
			"call": map[string]any{"id": "hijack-2", "customer": map[string]any{"number": caller}}}),
		vapiEvent("status-update", "hijack-3", map[string]any{"status": "ringing", "phoneNumber": nil,
			"call": map[string]any{"id": "hijack-3", "assistantId": assistantID}}),
	} {
		if r := w.postVapi(ev); r.Status != 200 {
			t.Fatalf("event %d: %d %s", i, r.Status, r.Body)
		}
	}
	r := w.postVapi(vapiEvent("assistant-request", "hijack-4", nil))
	if r.Status != 200 || !strings.Contains(string(r.Body), `"assistantId":"`+assistantID+`"`) {
		t.Fatalf("assistant request: %d %s", r.Status, r.Body)
	}
	// Twilio: an inbound text to A's number.
	sms := url.Values{"MessageSid": {"SMhijack1"}, "From": {caller}, "To": {twilioNumber}, "Body": {"my test results?"}}
	if r := twilioPost(w.voiceWorld, "/api/webhooks/twilio/sms", sms, testenv.TwilioToken); r.Status != 200 {
		t.Fatalf("sms: %d %s", r.Status, r.Body)
	}
	w.waitProcessed(t)
	if ev, calls, msgs := w.orgData(t, w.orgB); ev+calls+msgs != 0 {
		t.Fatalf("B received A's traffic: %d events, %d calls, %d messages", ev, calls, msgs)
	}
	if ev, calls, msgs := w.orgData(t, w.org); ev != 4 || calls != 3 || msgs != 1 {
		t.Fatalf("A has %d events, %d calls, %d messages; want 4, 3, 1", ev, calls, msgs)
	}
	// B's transcripts API shows nothing of A's.
	if r := w.as(w.ownerB, "GET", "/api/calls", nil); strings.Contains(string(r.Body), "hijack") {
		t.Fatalf("B lists A's calls: %s", r.Body)
	}

	// A number nobody assigned is unroutable, even though B registered it.
	if r := w.as(w.ownerB, "POST", "/api/phone-numbers", map[string]any{"e164": "+14155550142", "provider": "vapi", "provider_id": "pn-b-own"}); r.Status != 201 {
		t.Fatalf("B's own label: %d %s", r.Status, r.Body)
	}
	stray := vapiEvent("end-of-call-report", "stray-1", map[string]any{"phoneNumber": map[string]any{"id": "pn-b-own", "number": "+14155550142"},
		"call": map[string]any{"id": "stray-1", "phoneNumberId": "pn-b-own"}})
	if r := w.postVapi(stray); r.Status != 200 {
		t.Fatalf("stray: %d %s", r.Status, r.Body)
	}
	if n := w.count(t, `select count(*) from webhook_events where status = 'unroutable' and dedup_key like 'vapi:stray-1%'`); n != 1 {
		t.Fatalf("stray event: %d unroutable", n)
	}
}

// createEndpoint makes an endpoint of s's org and returns the answer.
func (w *routingWorld) createEndpoint(t *testing.T, s *testenv.Session, body map[string]any) map[string]any {
	t.Helper()
	r := w.as(s, "POST", "/api/org/webhook-endpoints", body)
	if r.Status != 201 || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create endpoint: %d %q %s", r.Status, r.Header.Get("Cache-Control"), r.Body)
	}
	return r.JSON(t)
}

func pathOf(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Path
}

// An event on an org's own endpoint belongs to that org, whatever number it
// names: A's endpoint receiving an event for B's operator-assigned number keeps
// it in A, and B sees nothing.
func TestOrgEndpointOwnsItsEvents(t *testing.T) {
	t.Parallel()
	w := newRoutingWorld(t)
	// B's numbers are assigned by the operator; A connects its own accounts.
	bNumber, bProviderID := "+14155550177", "pn-b-assigned"
	r := w.e.Do("POST", "/api/admin/phone-numbers", map[string]any{"org_id": w.orgB, "e164": bNumber, "provider": "vapi",
		"provider_id": bProviderID, "assistant_id": "asst-b"}, testenv.Bearer(w.serviceToken(t))...)
	if r.Status != 201 {
		t.Fatalf("assign B: %d %s", r.Status, r.Body)
	}
	vapi := w.createEndpoint(t, w.owner, map[string]any{"provider": "vapi"})
	secret, _ := vapi["secret"].(string)
	if len(secret) < 32 || !strings.HasPrefix(vapi["url"].(string), w.e.URL+"/api/webhooks/vapi/") {
		t.Fatalf("vapi endpoint: %v", vapi)
	}
	twilioToken := "a1b2c3d4e5f60718293a4b5c6d7e8f90"
	tw := w.createEndpoint(t, w.owner, map[string]any{"provider": "twilio", "auth_token": twilioToken})
	if _, ok := tw["secret"]; ok || strings.Contains(fmt.Sprint(tw), twilioToken) {
		t.Fatalf("twilio endpoint shows its token: %v", tw)
	}

	ev := vapiEvent("end-of-call-report", "own-1", map[string]any{"phoneNumber": map[string]any{"id": bProviderID, "number": bNumber},
		"call": map[string]any{"id": "own-1", "phoneNumberId": bProviderID, "assistantId": "asst-b", "customer": map[string]any{"number": caller}}})
	if r := w.e.Do("POST", pathOf(t, vapi["url"].(string)), ev, "X-Vapi-Secret", secret); r.Status != 200 {
		t.Fatalf("own vapi: %d %s", r.Status, r.Body)
	}
	// The same call id on the shared endpoint is another delivery: neither
	// blocks the other.
	if r := w.postVapi(ev); r.Status != 200 {
		t.Fatalf("shared vapi: %d %s", r.Status, r.Body)
	}
	// A Twilio text to B's number, on A's endpoint.
	sms := url.Values{"MessageSid": {"SMown1"}, "From": {caller}, "To": {bNumber}, "Body": {"hello"}}
	if r := twilioPost(w.voiceWorld, pathOf(t, tw["sms_url"].(string)), sms, twilioToken); r.Status != 200 {
		t.Fatalf("own twilio: %d %s", r.Status, r.Body)
	}
	status := url.Values{"MessageSid": {"SMown1"}, "MessageStatus": {"delivered"}, "From": {bNumber}, "To": {caller}}
	if r := twilioPost(w.voiceWorld, pathOf(t, tw["status_url"].(string)), status, twilioToken); r.Status != 200 {
		t.Fatalf("own twilio status: %d %s", r.Status, r.Body)
	}
	w.waitProcessed(t)
	if ev, calls, msgs := w.orgData(t, w.org); ev != 3 || calls != 1 || msgs != 1 {
		t.Fatalf("A has %d events, %d calls, %d messages; want 3, 1, 1", ev, calls, msgs)
	}
	if ev, calls, msgs := w.orgData(t, w.orgB); ev != 1 || calls != 1 || msgs != 0 {
		t.Fatalf("B has %d events, %d calls, %d messages; want only the shared delivery", ev, calls, msgs)
	}

	// The platform's secrets open no org's endpoint, and an endpoint's secret
	// opens neither the shared endpoint nor another org's endpoint.
	bVapi := w.createEndpoint(t, w.ownerB, map[string]any{"provider": "vapi"})
	bad := []struct {
		name, path string
		headers    []string
	}{
		{"platform secret on A's endpoint", pathOf(t, vapi["url"].(string)), []string{"X-Vapi-Secret", testenv.VapiSecret}},
		{"A's secret on the shared endpoint", "/api/webhooks/vapi", []string{"X-Vapi-Secret", secret}},
		{"A's secret on B's endpoint", pathOf(t, bVapi["url"].(string)), []string{"X-Vapi-Secret", secret}},
		{"B's secret on A's endpoint", pathOf(t, vapi["url"].(string)), []string{"X-Vapi-Secret", bVapi["secret"].(string)}},
		{"unknown endpoint", "/api/webhooks/vapi/7b0e2f4c-9f3e-4a51-8d2a-0c3b5e6f7a81", []string{"X-Vapi-Secret", secret}},
		{"malformed endpoint id", "/api/webhooks/vapi/not-an-id", []string{"X-Vapi-Secret", secret}},
		{"twilio endpoint id on the vapi path", "/api/webhooks/vapi/" + tw["id"].(string), []string{"X-Vapi-Secret", twilioToken}},
	}
	before := w.count(t, `select count(*) from webhook_events`)
	for i, c := range bad {
		body := endOfCallReport(fmt.Sprintf("refused-%d", i))
		if r := w.e.Do("POST", c.path, body, c.headers...); r.Status != 401 {
			t.Errorf("%s: %d %s", c.name, r.Status, r.Body)
		}
	}
	if r := twilioPost(w.voiceWorld, pathOf(t, tw["sms_url"].(string)), url.Values{"MessageSid": {"SMx"}, "To": {bNumber}}, testenv.TwilioToken); r.Status != 401 {
		t.Errorf("platform token on A's twilio endpoint: %d", r.Status)
	}
	if after := w.count(t, `select count(*) from webhook_events`); after != before {
		t.Fatalf("refused deliveries stored %d events", after-before)
	}
}

func (w *routingWorld) serviceToken(t *testing.T) string {
	t.Helper()
	tok, err := w.e.Auth.ServiceRoleToken(context.Background(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Rotation: the new secret works at once, the previous one for the grace
// period only; the list never shows a secret.
func TestOrgEndpointRotation(t *testing.T) {
	t.Parallel()
	w := newRoutingWorld(t)
	ep := w.createEndpoint(t, w.owner, map[string]any{"provider": "vapi"})
	id, path, old := ep["id"].(string), pathOf(t, ep["url"].(string)), ep["secret"].(string)
	r := w.as(w.owner, "POST", "/api/org/webhook-endpoints/"+id+"/rotate", nil)
	if r.Status != 200 {
		t.Fatalf("rotate: %d %s", r.Status, r.Body)
	}
	rotated := r.JSON(t)
	cur, _ := rotated["secret"].(string)
	if cur == "" || cur == old || rotated["previous_valid_until"] == nil {
		t.Fatalf("rotated: %s", r.Body)
	}
	deliver := func(secret, callID string) int {
		body := endOfCallReport(callID)
		return w.e.Do("POST", path, body, hmacHeaders(secret, body, time.Now(), false)...).Status
	}
	if deliver(cur, "rot-1") != 200 || deliver(old, "rot-2") != 200 {
		t.Fatal("new or previous secret refused during the grace period")
	}
	// The grace period ends.
	if _, err := w.e.Exec(context.Background(), `update webhook_endpoints set previous_valid_until = now() - interval '1 second' where id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if got := deliver(old, "rot-3"); got != 401 {
		t.Fatalf("previous secret after the grace period: %d", got)
	}
	if deliver(cur, "rot-4") != 200 {
		t.Fatal("current secret refused")
	}
	list := w.as(w.owner, "GET", "/api/org/webhook-endpoints", nil)
	if list.Status != 200 || strings.Contains(string(list.Body), cur) || strings.Contains(string(list.Body), old) || !strings.Contains(string(list.Body), id) {
		t.Fatalf("list: %d %s", list.Status, list.Body)
	}
	// Twilio rotation takes the org's new auth token.
	tw := w.createEndpoint(t, w.owner, map[string]any{"provider": "twilio", "auth_token": "first-token-0123456789"})
	twID := tw["id"].(string)
	if r := w.as(w.owner, "POST", "/api/org/webhook-endpoints/"+twID+"/rotate", map[string]any{}); r.Status != 400 {
		t.Fatalf("twilio rotation without a token: %d %s", r.Status, r.Body)
	}
	if r := w.as(w.owner, "POST", "/api/org/webhook-endpoints/"+twID+"/rotate", map[string]any{"auth_token": "second-token-0123456789"}); r.Status != 200 || strings.Contains(string(r.Body), "second-token") {
		t.Fatalf("twilio rotation: %d %s", r.Status, r.Body)
	}
	sms := url.Values{"MessageSid": {"SMrot"}, "From": {caller}, "To": {twilioNumber}, "Body": {"hi"}}
	for _, tok := range []string{"second-token-0123456789", "first-token-0123456789"} {
		if r := twilioPost(w.voiceWorld, pathOf(t, tw["sms_url"].(string)), sms, tok); r.Status != 200 {
			t.Fatalf("token %s: %d", tok, r.Status)
		}
	}
	// Deleted: every secret stops working.
	if r := w.as(w.owner, "DELETE", "/api/org/webhook-endpoints/"+id, nil); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if got := deliver(cur, "rot-5"); got != 401 {
		t.Fatalf("deleted endpoint: %d", got)
	}
	// The audit log has each change, and no secret.
	audit := w.as(w.owner, "GET", "/api/org/audit-log?action=webhook_endpoint.rotated", nil)
	if !strings.Contains(string(audit.Body), id) || strings.Contains(string(audit.Body), cur) {
		t.Fatalf("audit: %s", audit.Body)
	}
}

func TestOrgEndpointValidation(t *testing.T) {
	t.Parallel()
	w := newRoutingWorld(t)
	member := w.e.AddMember(w.owner, "member@example.com", "member")
	wantError(t, w.as(member, "POST", "/api/org/webhook-endpoints", map[string]any{"provider": "vapi"}), 403, "forbidden")
	wantError(t, w.as(member, "GET", "/api/org/webhook-endpoints", nil), 403, "forbidden")
	for name, body := range map[string]any{
		"no provider":          map[string]any{},
		"bad provider":         map[string]any{"provider": "sip"},
		"twilio without token": map[string]any{"provider": "twilio"},
		"short twilio token":   map[string]any{"provider": "twilio", "auth_token": "short"},
		"token with spaces":    map[string]any{"provider": "twilio", "auth_token": "has spaces in the token"},
		"vapi with a token":    map[string]any{"provider": "vapi", "auth_token": "0123456789abcdef0123"},
		"bad json":             "{",
	} {
		t.Run(name, func(t *testing.T) {
			wantError(t, w.as(w.owner, "POST", "/api/org/webhook-endpoints", body), 400, "validation_failed")
		})
	}
	wantError(t, w.as(w.owner, "POST", "/api/org/webhook-endpoints/not-a-uuid/rotate", nil), 400, "validation_failed")
	wantError(t, w.as(w.owner, "DELETE", "/api/org/webhook-endpoints/7b0e2f4c-9f3e-4a51-8d2a-0c3b5e6f7a81", nil), 404, "not_found")
	if n := w.count(t, `select count(*) from webhook_endpoints`); n != 0 {
		t.Fatalf("%d endpoints after refused requests", n)
	}
}

// Operator assignments: service_role only; numbers, provider ids and
// assistant ids are each unique among them.
func TestOperatorAssignments(t *testing.T) {
	t.Parallel()
	w := newRoutingWorld(t)
	op := testenv.Bearer(w.serviceToken(t))
	assign := func(body map[string]any) *testenv.Response {
		return w.e.Do("POST", "/api/admin/phone-numbers", body, op...)
	}
	wantError(t, w.as(w.owner, "POST", "/api/admin/phone-numbers", map[string]any{"org_id": w.orgB, "e164": "+14155550190", "provider": "vapi"}), 403, "forbidden")
	wantError(t, w.as(w.owner, "GET", "/api/admin/phone-numbers", nil), 403, "forbidden")
	for name, body := range map[string]map[string]any{
		"same number":       {"org_id": w.orgB, "e164": "+1 (415) 555-0100", "provider": "twilio"},
		"same provider id":  {"org_id": w.orgB, "provider": "vapi", "provider_id": vapiNumberID},
		"same assistant id": {"org_id": w.orgB, "provider": "vapi", "assistant_id": assistantID},
	} {
		t.Run(name, func(t *testing.T) {
			r := assign(body)
			wantError(t, r, 409, "conflict")
			if strings.Contains(string(r.Body), w.org) {
				t.Fatalf("conflict names the org: %s", r.Body)
			}
		})
	}
	for name, body := range map[string]map[string]any{
		"nothing to route": {"org_id": w.orgB, "provider": "vapi"},
		"bad number":       {"org_id": w.orgB, "e164": "555", "provider": "vapi"},
		"bad org":          {"org_id": "nope", "e164": "+14155550190", "provider": "vapi"},
		"bad provider":     {"org_id": w.orgB, "e164": "+14155550190", "provider": "sip"},
	} {
		t.Run(name, func(t *testing.T) { wantError(t, assign(body), 400, "validation_failed") })
	}
	wantError(t, assign(map[string]any{"org_id": "7b0e2f4c-9f3e-4a51-8d2a-0c3b5e6f7a81", "e164": "+14155550190", "provider": "vapi"}), 404, "not_found")
	r := assign(map[string]any{"org_id": w.orgB, "e164": "+14155550190", "provider": "vapi", "assistant_id": "asst-b"})
	if r.Status != 201 {
		t.Fatalf("assign: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["id"].(string)
	var list struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(w.e.Do("GET", "/api/admin/phone-numbers?org_id="+w.orgB, nil, op...).Body, &list); err != nil || len(list.Data) != 1 {
		t.Fatalf("B's assignments: %v %v", list, err)
	}
	// Now the shared endpoint routes B's assistant to B, and stops when unassigned.
	ev := vapiEvent("status-update", "assigned-1", map[string]any{"status": "ringing", "phoneNumber": nil, "call": map[string]any{"id": "assigned-1", "assistantId": "asst-b"}})
	if r := w.postVapi(ev); r.Status != 200 {
		t.Fatal(r.Status)
	}
	if r := w.e.Do("DELETE", "/api/admin/phone-numbers/"+id, nil, op...); r.Status != 204 {
		t.Fatalf("unassign: %d %s", r.Status, r.Body)
	}
	ev = vapiEvent("status-update", "assigned-2", map[string]any{"status": "ringing", "phoneNumber": nil, "call": map[string]any{"id": "assigned-2", "assistantId": "asst-b"}})
	if r := w.postVapi(ev); r.Status != 200 {
		t.Fatal(r.Status)
	}
	if n := w.count(t, `select count(*) from webhook_events where org_id = $1`, w.orgB); n != 1 {
		t.Fatalf("B got %d events, want the one sent while assigned", n)
	}
	audit := w.as(w.ownerB, "GET", "/api/org/audit-log", nil)
	if !strings.Contains(string(audit.Body), "phone_number.assigned") || !strings.Contains(string(audit.Body), "phone_number.unassigned") {
		t.Fatalf("B's audit log: %s", audit.Body)
	}
}
