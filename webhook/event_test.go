package webhook

import (
	"encoding/json"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/voxanne/voxanne"
)

// The domain event of an end-of-call-report says what processing needs, and
// survives being stored as JSON.
func TestVapiEventOfEndOfCallReport(t *testing.T) {
	body, err := os.ReadFile("testdata/vapi-end-of-call-report.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseVapi(body)
	if err != nil {
		t.Fatal(err)
	}
	ev := VapiEvent(m)
	c := ev.Call
	if c == nil || ev.Message != nil {
		t.Fatalf("event %+v", ev)
	}
	if c.Status != "ended" || c.ProviderCallID != m.CallID() || c.Direction != m.Direction() || c.Transcript == "" ||
		c.DurationSeconds == nil || c.CostUSD == nil || c.StartedAt.IsZero() || len(c.Messages) == 0 {
		t.Fatalf("call event %+v", c)
	}
	if c.Direction == "inbound" && (c.From != c.CustomerNumber || c.To != m.PhoneNumber.Number) {
		t.Fatalf("from %q to %q", c.From, c.To)
	}
	roundTrip(t, ev)

	// A status-update moves the call to its status; a hang to none.
	for typ, want := range map[string]string{"status-update": "ringing", "hang": ""} {
		m2 := *m
		m2.Type, m2.Status = typ, "ringing"
		if got := VapiEvent(&m2).Call.Status; got != want {
			t.Errorf("%s: status %q, want %q", typ, got, want)
		}
	}
}

func TestTwilioEvents(t *testing.T) {
	raw, err := os.ReadFile("testdata/twilio-sms.txt")
	if err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	sms, err := ParseTwilioSMS(form)
	if err != nil {
		t.Fatal(err)
	}
	ev := TwilioEvent("sms", sms)
	m := ev.Message
	if m == nil || m.Kind != "sms" || m.ProviderMessageID != sms.MessageSid || m.Status != "received" ||
		m.StatusRank != StatusRank("received") || len(m.Media) != 1 || m.From != sms.From {
		t.Fatalf("sms event %+v", m)
	}
	roundTrip(t, ev)
	// What ingestion stores decodes to the same event.
	payload, _ := json.Marshal(form)
	stored, err := DecodeStored("twilio", "sms", payload)
	if err != nil || !reflect.DeepEqual(stored, ev) {
		t.Fatalf("stored %+v (%v), want %+v", stored, err, ev)
	}

	form.Set("MessageStatus", "delivered")
	sms, _ = ParseTwilioSMS(form)
	st := TwilioEvent("status", sms).Message
	if st.Kind != "status" || st.Status != "delivered" || st.StatusRank != StatusRank("delivered") || st.Media != nil {
		t.Fatalf("status event %+v", st)
	}
	if _, err := DecodeStored("twilio", "sms", []byte(`"not a form"`)); err == nil {
		t.Fatal("a payload that is not a form decoded")
	}
}

func roundTrip(t *testing.T, ev *voxanne.Event) {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var back voxanne.Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(&back)
	if string(b) != string(b2) {
		t.Fatalf("round trip changed the event:\n%s\n%s", b, b2)
	}
}
