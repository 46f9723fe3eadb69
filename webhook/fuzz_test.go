package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"slices"
	"testing"
)

// Seeds are added here and also kept as files under testdata/fuzz so that
// plain "go test" replays the corpus, including any crasher found later.

func FuzzParseVapi(f *testing.F) {
	for _, name := range []string{"testdata/vapi-end-of-call-report.json", "testdata/vapi-status-update.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"message":{"type":"tool-calls","call":{"id":"c"},"toolCallList":[{"id":"t1","type":"function","function":{"name":"take_message","arguments":"{\"message\":\"hi\"}"}},{"id":"t2","name":"n","parameters":{"a":1}}],"toolWithToolCallList":[{"name":"w","toolCall":{"id":"t1","arguments":{"b":2}}}]}}`))
	f.Add([]byte(`{"message":{"type":"status-update","status":"ended","timestamp":"2026-01-02T14:03:12Z","call":{"id":"c","startedAt":1767362592481,"endedAt":"1767362600000"}}}`))
	f.Add([]byte(`{"message":{"type":"end-of-call-report","analysis":{"successEvaluation":{"x":[1]}},"cost":1e400}}`))
	f.Add([]byte(`{"message":null}`))
	f.Add([]byte(`[]`))

	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ParseVapi(body)
		if err != nil {
			if !errors.Is(err, ErrBadPayload) {
				t.Fatalf("ParseVapi error %v is not ErrBadPayload", err)
			}
			return
		}
		_ = m.DedupKey()
		_ = m.PhoneNumberID()
		_ = m.AssistantID()
		_ = m.CallID()
		_ = m.Direction()
		if d := m.DurationSeconds(); d != nil && *d < 0 {
			t.Fatalf("negative duration %v", *d)
		}
		seen := map[string]bool{}
		for _, tc := range m.ToolCalls {
			if !json.Valid(tc.Arguments) || !bytes.HasPrefix(tc.Arguments, []byte("{")) {
				t.Fatalf("tool call %q arguments not a JSON object: %q", tc.ID, tc.Arguments)
			}
			if tc.ID != "" {
				if seen[tc.ID] {
					t.Fatalf("duplicate tool call id %q", tc.ID)
				}
				seen[tc.ID] = true
			}
		}
		if !json.Valid(m.Raw) {
			t.Fatalf("Raw is not JSON: %q", m.Raw)
		}
	})
}

func FuzzTwilioForm(f *testing.F) {
	b, err := os.ReadFile("testdata/twilio-sms.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(b))
	f.Add("CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212&ReasonConferenceEnded=test&Reason=Participant")
	f.Add("MessageSid=SM1&MessageStatus=delivered&ErrorCode=&Tag=b&Tag=a&Tag=")
	f.Add("SmsSid=SM2&NumMedia=99&MediaUrl0=x&MediaUrl9=y&MediaUrl10=z&MediaContentType9=image%2Fgif")
	f.Add("%zz=1&MessageSid=SM3;x=1&&=&NumMedia=-3")

	const u = "https://voxanne.example/api/webhooks/twilio/sms?x=1"
	f.Fuzz(func(t *testing.T, raw string) {
		// ParseQuery returns what it could parse along with the first error,
		// which is what a server would act on.
		form, _ := url.ParseQuery(raw)
		if m, err := ParseTwilioSMS(form); err == nil {
			if m.MessageSid == "" || len(m.Media) > MaxTwilioMedia || m.NumMedia < 0 || m.NumMedia > MaxTwilioMedia {
				t.Fatalf("invariant broken: %+v", m)
			}
		} else if !errors.Is(err, ErrBadPayload) {
			t.Fatalf("ParseTwilioSMS error %v is not ErrBadPayload", err)
		}

		s1 := TwilioSignature("token", u, form)
		s2 := TwilioSignature("token", u, form)
		if s1 != s2 {
			t.Fatalf("signature not deterministic: %s vs %s", s1, s2)
		}
		// The order in which repeated values arrived must not matter.
		reversed := url.Values{}
		for k, vs := range form {
			r := slices.Clone(vs)
			slices.Reverse(r)
			reversed[k] = r
		}
		if s3 := TwilioSignature("token", u, reversed); s3 != s1 {
			t.Fatalf("signature depends on value order: %s vs %s", s3, s1)
		}
		if err := VerifyTwilio(s1, []string{"token"}, u, form); err != nil {
			t.Fatalf("VerifyTwilio rejected its own signature: %v", err)
		}
		if err := VerifyTwilio(s1, []string{"other"}, u, form); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("VerifyTwilio accepted a wrong token: %v", err)
		}
	})
}
