package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/internal/testenv"
	"github.com/voxanne/voxanne/webhook"
)

// voiceWorld is an org with a Vapi and a Twilio number.
type voiceWorld struct {
	e     *testenv.Env
	owner *testenv.Session
	org   string
}

const (
	vapiNumberID = "pn-vapi-1"
	vapiNumber   = "+14155550100"
	twilioNumber = "+14155550199"
	assistantID  = "asst-1"
	caller       = "+14155551234"
)

func newVoiceWorld(t *testing.T, opts testenv.Options) *voiceWorld {
	t.Helper()
	e := testenv.New(t, opts)
	w := &voiceWorld{e: e, owner: e.SignUp("clinic@example.com")}
	w.org = w.owner.OrgID()
	ctx := context.Background()
	for _, n := range [][]string{{vapiNumber, "vapi", vapiNumberID, assistantID}, {twilioNumber, "twilio", "PN-twilio-1", ""}} {
		if _, err := e.Exec(ctx, `insert into phone_number_assignments (org_id, e164, provider, provider_id, assistant_id)
			values ($1, $2, $3, $4, nullif($5, ''))`, w.org, n[0], n[1], n[2], n[3]); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// vapiEvent builds a Vapi server message for call id.
func vapiEvent(typ, callID string, extra map[string]any) []byte {
	msg := map[string]any{
		"type":        typ,
		"timestamp":   time.Now().UnixMilli(),
		"phoneNumber": map[string]any{"id": vapiNumberID, "number": vapiNumber},
		"customer":    map[string]any{"number": caller, "name": "Pat Caller"},
		"call": map[string]any{"id": callID, "orgId": "vapi-org", "type": "inboundPhoneCall",
			"phoneNumberId": vapiNumberID, "assistantId": assistantID,
			"customer": map[string]any{"number": caller}, "createdAt": time.Now().UTC().Format(time.RFC3339)},
	}
	for k, v := range extra {
		msg[k] = v
	}
	b, _ := json.Marshal(map[string]any{"message": msg})
	return b
}

func endOfCallReport(callID string) []byte {
	start := time.Now().Add(-3 * time.Minute).UTC()
	return vapiEvent("end-of-call-report", callID, map[string]any{
		"endedReason": "customer-ended-call",
		"startedAt":   start.Format(time.RFC3339Nano),
		"endedAt":     start.Add(125 * time.Second).Format(time.RFC3339Nano),
		"cost":        0.42,
		"artifact":    map[string]any{"transcript": "AI: Hello. User: I need an appointment on Tuesday.", "recordingUrl": "https://rec.example/1.wav", "messages": []any{map[string]any{"role": "user", "message": "hi"}}},
		"analysis":    map[string]any{"summary": "Caller booked an appointment.", "structuredData": map[string]any{"intent": "booking"}, "successEvaluation": "true"},
	})
}

func hmacHeaders(secret string, body []byte, at time.Time, millis bool) []string {
	ts := strconv.FormatInt(at.Unix(), 10)
	if millis {
		ts = strconv.FormatInt(at.UnixMilli(), 10)
	}
	return []string{"X-Timestamp", ts, "X-Signature", webhook.SignVapi(secret, ts, body), "Content-Type", "application/json"}
}

func (w *voiceWorld) postVapi(body []byte, headers ...string) *testenv.Response {
	if len(headers) == 0 {
		headers = []string{"X-Vapi-Secret", testenv.VapiSecret}
	}
	return w.e.Do("POST", "/api/webhooks/vapi", body, headers...)
}

func (w *voiceWorld) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := w.e.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitProcessed waits until no stored event is pending.
func (w *voiceWorld) waitProcessed(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if w.count(t, `select count(*) from webhook_events where status = 'pending'`) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("events still pending")
}

func TestVapiAuthenticationForms(t *testing.T) {
	t.Parallel()
	w := newVoiceWorld(t, testenv.Options{VapiSecretPrev: "old-vapi-secret"})
	now := time.Now()
	cases := []struct {
		name    string
		headers func(body []byte) []string
		want    int
	}{
		{"static secret", func([]byte) []string { return []string{"X-Vapi-Secret", testenv.VapiSecret} }, 200},
		{"static secret in X-Vapi-Signature", func([]byte) []string { return []string{"X-Vapi-Signature", testenv.VapiSecret} }, 200},
		{"bearer", func([]byte) []string { return []string{"Authorization", "Bearer " + testenv.VapiSecret} }, 200},
		{"hmac seconds", func(b []byte) []string { return hmacHeaders(testenv.VapiSecret, b, now, false) }, 200},
		{"hmac milliseconds", func(b []byte) []string { return hmacHeaders(testenv.VapiSecret, b, now, true) }, 200},
		{"previous secret after rotation", func([]byte) []string { return []string{"X-Vapi-Secret", "old-vapi-secret"} }, 200},
		{"previous secret hmac", func(b []byte) []string { return hmacHeaders("old-vapi-secret", b, now, false) }, 200},
		{"wrong secret", func([]byte) []string { return []string{"X-Vapi-Secret", "nope"} }, 401},
		{"wrong bearer", func([]byte) []string { return []string{"Authorization", "Bearer nope"} }, 401},
		{"no credentials", func([]byte) []string { return []string{"Content-Type", "application/json"} }, 401},
		{"hmac wrong secret", func(b []byte) []string { return hmacHeaders("nope", b, now, false) }, 401},
		{"hmac stale", func(b []byte) []string { return hmacHeaders(testenv.VapiSecret, b, now.Add(-6*time.Minute), false) }, 401},
		{"hmac stale ms", func(b []byte) []string { return hmacHeaders(testenv.VapiSecret, b, now.Add(-6*time.Minute), true) }, 401},
		{"hmac future", func(b []byte) []string { return hmacHeaders(testenv.VapiSecret, b, now.Add(6*time.Minute), false) }, 401},
		{"hmac over a tampered body", func(b []byte) []string {
			return hmacHeaders(testenv.VapiSecret, []byte(strings.Replace(string(b), "ended", "ENDED", 1)), now, false)
		}, 401},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := endOfCallReport(fmt.Sprintf("call-auth-%d", i))
			before := w.count(t, `select count(*) from webhook_events`)
			r := w.postVapi(body, c.headers(body)...)
			if r.Status != c.want {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			stored := w.count(t, `select count(*) from webhook_events`) - before
			if (c.want == 200) != (stored == 1) {
				t.Fatalf("stored %d events", stored)
			}
			if c.want == 401 && r.JSON(t)["code"] != "invalid_signature" {
				t.Fatalf("code %s", r.Body)
			}
		})
	}
}

func TestVapiEventsBecomeCallsOnceAndNeverRegress(t *testing.T) {
	t.Parallel()
	w := newVoiceWorld(t, testenv.Options{})
	statusUpdate := func(id, status string) []byte {
		return vapiEvent("status-update", id, map[string]any{"status": status})
	}
	orders := map[string][][]byte{
		"in order":          {statusUpdate("call-a", "ringing"), statusUpdate("call-a", "in-progress"), statusUpdate("call-a", "ended"), endOfCallReport("call-a")},
		"report first":      {endOfCallReport("call-b"), statusUpdate("call-b", "in-progress"), statusUpdate("call-b", "ringing")},
		"ended then report": {statusUpdate("call-c", "ended"), statusUpdate("call-c", "in-progress"), endOfCallReport("call-c")},
	}
	for name, events := range orders {
		for _, ev := range events {
			// Every event twice: the second is a duplicate and changes nothing.
			for i := 0; i < 2; i++ {
				if r := w.postVapi(ev); r.Status != 200 {
					t.Fatalf("%s: %d %s", name, r.Status, r.Body)
				}
			}
		}
	}
	w.waitProcessed(t)
	for _, id := range []string{"call-a", "call-b", "call-c"} {
		var status, summary, transcript, reason string
		var dur float64
		err := w.e.QueryRow(context.Background(), `select status, summary, transcript, ended_reason, duration_seconds
			from calls where provider_call_id = $1`, id).Scan(&status, &summary, &transcript, &reason, &dur)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if status != "ended" || summary != "Caller booked an appointment." || !strings.Contains(transcript, "appointment") ||
			reason != "customer-ended-call" || dur != 125 {
			t.Errorf("%s: status %s summary %q reason %s duration %v", id, status, summary, reason, dur)
		}
	}
	if n := w.count(t, `select count(*) from calls`); n != 3 {
		t.Fatalf("%d calls", n)
	}
	if n := w.count(t, `select count(*) from webhook_events`); n != 10 {
		t.Fatalf("%d events stored, want 10 (each delivered twice)", n)
	}
	var callCount int
	var name string
	if err := w.e.QueryRow(context.Background(), `select call_count, name from contacts where phone_number = $1`, caller).Scan(&callCount, &name); err != nil {
		t.Fatal(err)
	}
	if callCount != 3 || name != "Pat Caller" {
		t.Fatalf("contact call_count %d name %q", callCount, name)
	}
	m := w.e.Do("GET", "/metrics", nil)
	for _, want := range []string{`voxanne_webhook_events_total{outcome="duplicate",provider="vapi",type="end-of-call-report"} 3`} {
		if !strings.Contains(string(m.Body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestVapiSynchronousMessages(t *testing.T) {
	t.Parallel()
	w := newVoiceWorld(t, testenv.Options{})
	r := w.postVapi(vapiEvent("assistant-request", "call-x", nil))
	if r.Status != 200 || r.JSON(t)["assistantId"] != assistantID {
		t.Fatalf("assistant-request: %d %s", r.Status, r.Body)
	}
	unknown := []byte(strings.ReplaceAll(strings.ReplaceAll(string(vapiEvent("assistant-request", "call-y", nil)), vapiNumberID, "pn-unknown"), assistantID, "asst-unknown"))
	unknown = []byte(strings.ReplaceAll(string(unknown), vapiNumber, "+14155550000"))
	if r := w.postVapi(unknown); r.Status != 200 || r.JSON(t)["error"] == nil {
		t.Fatalf("unknown number: %d %s", r.Status, r.Body)
	}
	tools := vapiEvent("tool-calls", "call-t", map[string]any{"toolCallList": []any{
		map[string]any{"id": "tc1", "type": "function", "function": map[string]any{"name": "take_message", "arguments": `{"name":"Pat","message":"Please call me back about my bill"}`}},
		map[string]any{"id": "tc2", "name": "launch_rockets", "arguments": map[string]any{}},
	}})
	r = w.postVapi(tools)
	var res struct {
		Results []voxanne.ToolResult `json:"results"`
	}
	r.Decode(t, &res)
	if r.Status != 200 || len(res.Results) != 2 || res.Results[0].Result == "" || res.Results[0].ToolCallID != "tc1" || res.Results[1].Error == "" {
		t.Fatalf("tool-calls: %d %s", r.Status, r.Body)
	}
	var notes string
	if err := w.e.QueryRow(context.Background(), `select notes from contacts where org_id = $1 and phone_number = $2`, w.org, caller).Scan(&notes); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(notes, "Pat: Please call me back about my bill") {
		t.Fatalf("notes %q", notes)
	}
	// A number in the tool's arguments cannot put the note on another contact.
	other := vapiEvent("tool-calls", "call-t2", map[string]any{"toolCallList": []any{
		map[string]any{"id": "tc3", "name": "take_message", "arguments": map[string]any{"message": "Hi", "phone": "+14155559999"}},
	}})
	if r := w.postVapi(other); r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	if n := w.count(t, `select count(*) from contacts where phone_number = '+14155559999'`); n != 0 {
		t.Fatal("take_message wrote to the contact named in its arguments")
	}
	if err := w.e.QueryRow(context.Background(), `select notes from contacts where org_id = $1 and phone_number = $2`, w.org, caller).Scan(&notes); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(notes, "Hi (call back on +14155559999)") {
		t.Fatalf("notes %q", notes)
	}
	if n := w.count(t, `select count(*) from webhook_events`); n != 0 {
		t.Fatalf("synchronous messages stored %d events", n)
	}
}

func TestVapiBadInput(t *testing.T) {
	t.Parallel()
	w := newVoiceWorld(t, testenv.Options{})
	cases := []struct {
		name string
		body []byte
		want int
	}{
		{"invalid json", []byte(`{"message": `), 400},
		{"no message", []byte(`{"foo": 1}`), 400},
		{"unknown type", vapiEvent("speech-update", "call-z", nil), 200},
		{"status-update without call id", []byte(`{"message":{"type":"status-update","status":"ringing"}}`), 400},
		{"over 5 MiB", []byte(`{"message":{"type":"hang","pad":"` + strings.Repeat("x", 5<<20) + `"}}`), 413},
	}
	for _, c := range cases {
		r := w.postVapi(c.body)
		if r.Status != c.want {
			t.Errorf("%s: %d %s", c.name, r.Status, r.Body)
		}
	}
	if n := w.count(t, `select count(*) from webhook_events`); n != 0 {
		t.Fatalf("bad input stored %d events", n)
	}
}

func TestUnroutableEventsAreKeptButAttachedToNoOrg(t *testing.T) {
	t.Parallel()
	w := newVoiceWorld(t, testenv.Options{})
	body := []byte(strings.NewReplacer(vapiNumberID, "pn-nobody", assistantID, "asst-nobody", vapiNumber, "+14155550001").Replace(string(endOfCallReport("call-lost"))))
	if r := w.postVapi(body); r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	if n := w.count(t, `select count(*) from webhook_events where status = 'unroutable' and org_id is null`); n != 1 {
		t.Fatalf("%d unroutable events", n)
	}
	if n := w.count(t, `select count(*) from calls`); n != 0 {
		t.Fatal("an unroutable event made a call")
	}
	h := w.e.Do("GET", "/metrics", nil)
	if !strings.Contains(string(h.Body), `outcome="unroutable"`) {
		t.Fatal("unroutable not counted")
	}
}

func twilioPost(w *voiceWorld, path string, form url.Values, token string) *testenv.Response {
	sig := webhook.TwilioSignature(token, w.e.URL+path, form)
	return w.e.Do("POST", path, form.Encode(), "Content-Type", "application/x-www-form-urlencoded", "X-Twilio-Signature", sig)
}

func TestTwilioSMSAndStatus(t *testing.T) {
	t.Parallel()
	w := newVoiceWorld(t, testenv.Options{TwilioTokenPrev: "old-token"})
	sms := url.Values{"MessageSid": {"SM1"}, "AccountSid": {"AC1"}, "From": {caller}, "To": {twilioNumber}, "Body": {"Running late"},
		"NumMedia": {"1"}, "MediaUrl0": {"https://media.example/1.jpg"}, "MediaContentType0": {"image/jpeg"}}
	for i, token := range []string{testenv.TwilioToken, "old-token"} {
		r := twilioPost(w, "/api/webhooks/twilio/sms", sms, token)
		if r.Status != 200 || r.Header.Get("Content-Type") != "text/xml" || string(r.Body) != "<Response></Response>" {
			t.Fatalf("delivery %d: %d %q %s", i, r.Status, r.Header.Get("Content-Type"), r.Body)
		}
	}
	if r := twilioPost(w, "/api/webhooks/twilio/sms", sms, "wrong"); r.Status != 401 {
		t.Fatalf("wrong token: %d", r.Status)
	}
	tampered := url.Values{}
	for k, v := range sms {
		tampered[k] = v
	}
	sig := webhook.TwilioSignature(testenv.TwilioToken, w.e.URL+"/api/webhooks/twilio/sms", sms)
	tampered.Set("Body", "Send money")
	if r := w.e.Do("POST", "/api/webhooks/twilio/sms", tampered.Encode(), "Content-Type", "application/x-www-form-urlencoded", "X-Twilio-Signature", sig); r.Status != 401 {
		t.Fatalf("tampered: %d", r.Status)
	}
	if r := w.e.Do("POST", "/api/webhooks/twilio/sms", "%zz", "Content-Type", "application/x-www-form-urlencoded"); r.Status != 400 && r.Status != 401 {
		t.Fatalf("bad form: %d", r.Status)
	}
	// Status callbacks of an outbound message, out of order: delivered, then a
	// late "sent" (twice).
	for _, st := range []string{"delivered", "sent", "sent"} {
		f := url.Values{"MessageSid": {"SM2"}, "MessageStatus": {st}, "From": {twilioNumber}, "To": {caller}, "Body": {"See you soon"}}
		if r := twilioPost(w, "/api/webhooks/twilio/status", f, testenv.TwilioToken); r.Status != 200 {
			t.Fatalf("status %s: %d %s", st, r.Status, r.Body)
		}
	}
	w.waitProcessed(t)
	var body, status, media string
	if err := w.e.QueryRow(context.Background(), `select body, status, media::text from messages where provider_message_id = 'SM1'`).Scan(&body, &status, &media); err != nil {
		t.Fatal(err)
	}
	if body != "Running late" || status != "received" || !strings.Contains(media, "image/jpeg") {
		t.Fatalf("inbound message %q %s %s", body, status, media)
	}
	var dir string
	if err := w.e.QueryRow(context.Background(), `select direction, status from messages where provider_message_id = 'SM2'`).Scan(&dir, &status); err != nil {
		t.Fatal(err)
	}
	if dir != "outbound" || status != "delivered" {
		t.Fatalf("outbound message %s %s, want delivered (a late sent must not regress it)", dir, status)
	}
	if n := w.count(t, `select message_count from contacts where phone_number = $1`, caller); n != 2 {
		t.Fatalf("message_count %d", n)
	}
	if n := w.count(t, `select count(*) from webhook_events`); n != 3 {
		t.Fatalf("%d events (sms once, delivered, sent)", n)
	}
}

func TestTwilioPublishedSignatureVector(t *testing.T) {
	t.Parallel()
	form := url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+14158675309"}, "Digits": {"1234"},
		"From": {"+14158675309"}, "To": {"+18005551212"}, "ReasonConferenceEnded": {"test"}, "Reason": {"Participant"}}
	if got := webhook.TwilioSignature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", form); got != "vOEb5UThFn24KEfnOFLQY2AE5FY=" {
		t.Fatalf("got %s", got)
	}
}

// A job that exhausts its retries stays visible in /health and /metrics.
func TestDiscardedJobIsVisible(t *testing.T) {
	t.Parallel()
	w := newVoiceWorld(t, testenv.Options{})
	ctx := context.Background()
	var id int64
	if err := w.e.QueryRow(ctx, `insert into webhook_events (provider, event_type, dedup_key, org_id, payload)
		values ('vapi', 'end-of-call-report', 'poison', $1, '"not a vapi message"') returning id`, w.org).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := w.e.Jobs.Insert(ctx, voxanne.ProcessEventArgs{EventID: id}, &river.InsertOpts{MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	// /health shows job figures to the service role only.
	svc, err := w.e.Auth.ServiceRoleToken(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		h := w.e.Do("GET", "/health", nil, testenv.Bearer(svc)...)
		var body struct {
			Checks map[string]map[string]any `json:"checks"`
		}
		h.Decode(t, &body)
		if body.Checks["jobs"]["discarded"] == float64(1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("discarded job not in /health: %s", h.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// /metrics shows the figures of the last background refresh: take one now.
	w.e.Handler.RefreshStatus(ctx)
	if m := w.e.Do("GET", "/metrics", nil); !strings.Contains(string(m.Body), `voxanne_jobs{state="discarded"} 1`) {
		t.Fatal("discarded job not in /metrics")
	}
}
