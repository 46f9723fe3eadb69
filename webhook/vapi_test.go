package webhook

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"
	"time"
)

func mustParseVapi(t *testing.T, body string) *VapiMessage {
	t.Helper()
	m, err := ParseVapi([]byte(body))
	if err != nil {
		t.Fatalf("ParseVapi(%s) = %v", body, err)
	}
	return m
}

func TestParseVapiBadPayload(t *testing.T) {
	for _, body := range []string{
		``,
		`not json`,
		`[]`,
		`null`,
		`"message"`,
		`{}`,
		`{"message": null}`,
		`{"message": "status-update"}`,
		`{"message": []}`,
		`{"message": {"type": "hang"}} trailing`,
		`{"msg": {"type": "hang"}}`,
	} {
		if _, err := ParseVapi([]byte(body)); !errors.Is(err, ErrBadPayload) {
			t.Errorf("ParseVapi(%q) = %v, want ErrBadPayload", body, err)
		}
	}
}

func TestParseVapiUnknownTypeAccepted(t *testing.T) {
	m := mustParseVapi(t, `{"message": {"type": "something-new-2027", "call": {"id": "c1"}, "extra": [1,2,3]}}`)
	if m.Type != "something-new-2027" || m.CallID() != "c1" {
		t.Fatalf("got type %q call %q", m.Type, m.CallID())
	}
	if m.DedupKey() != "c1:something-new-2027" {
		t.Fatalf("DedupKey = %q", m.DedupKey())
	}
}

func TestParseVapiTimestamp(t *testing.T) {
	want := time.Date(2026, 1, 2, 14, 3, 12, 481e6, time.UTC)
	tests := []struct {
		name, value string
		want        time.Time
	}{
		{"milliseconds number", `1767362592481`, want},
		{"fractional milliseconds", `1767362592481.0`, want},
		{"seconds number", `1767362592`, want.Truncate(time.Second)},
		{"ISO with Z", `"2026-01-02T14:03:12.481Z"`, want},
		{"ISO with offset", `"2026-01-02T15:03:12.481+01:00"`, want},
		{"ISO without zone", `"2026-01-02T14:03:12.481"`, want},
		{"numeric string", `"1767362592481"`, want},
		{"null", `null`, time.Time{}},
		{"garbage string", `"yesterday"`, time.Time{}},
		{"object", `{"ms": 1}`, time.Time{}},
		{"negative", `-5`, time.Time{}},
		{"huge", `1e300`, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParseVapi(t, `{"message": {"type": "hang", "timestamp": `+tt.value+`}}`)
			if !m.Timestamp.Equal(tt.want) {
				t.Fatalf("Timestamp = %v, want %v", m.Timestamp, tt.want)
			}
			if !m.Timestamp.IsZero() && m.Timestamp.Location() != time.UTC {
				t.Fatalf("Timestamp not in UTC: %v", m.Timestamp.Location())
			}
		})
	}
}

func TestParseVapiEndOfCallReportSample(t *testing.T) {
	body, err := os.ReadFile("testdata/vapi-end-of-call-report.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseVapi(body)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != "end-of-call-report" {
		t.Errorf("Type = %q", m.Type)
	}
	if want := time.UnixMilli(1767362705123); !m.Timestamp.Equal(want) {
		t.Errorf("Timestamp = %v, want %v", m.Timestamp, want)
	}
	if m.CallID() != "8c1d2f3e-5a7b-4c9d-8e1f-2a3b4c5d6e7f" || m.Call.OrgID != "0f4c2a8e-1b3d-4e5f-a6b7-c8d9e0f1a2b3" {
		t.Errorf("Call = %+v", m.Call)
	}
	if m.PhoneNumberID() != "5b0e7a1c-3d2f-4e6a-9b8c-7d1e2f3a4b5c" || m.PhoneNumber.Number != "+14155550132" {
		t.Errorf("phone number = %q / %+v", m.PhoneNumberID(), m.PhoneNumber)
	}
	if m.AssistantID() != "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d" {
		t.Errorf("AssistantID = %q", m.AssistantID())
	}
	if m.Customer != (VapiCustomer{Number: "+14155550187", Name: "Maria Lopez"}) {
		t.Errorf("Customer = %+v", m.Customer)
	}
	if m.EndedReason != "customer-ended-call" || m.Direction() != "inbound" {
		t.Errorf("EndedReason %q Direction %q", m.EndedReason, m.Direction())
	}
	if m.Cost == nil || *m.Cost != 0.1842 || m.Call.Cost == nil || *m.Call.Cost != 0.1842 {
		t.Errorf("Cost = %v, Call.Cost = %v", m.Cost, m.Call.Cost)
	}
	if d := m.DurationSeconds(); d == nil || *d != 111.481 {
		t.Errorf("DurationSeconds = %v, want 111.481", d)
	}
	if m.DedupKey() != "8c1d2f3e-5a7b-4c9d-8e1f-2a3b4c5d6e7f:end-of-call-report" {
		t.Errorf("DedupKey = %q", m.DedupKey())
	}
	a := m.Artifact
	if a.Transcript == "" || !json.Valid(a.Messages) || a.Messages[0] != '[' {
		t.Errorf("Artifact transcript/messages missing: %q %q", a.Transcript, a.Messages)
	}
	if a.RecordingURL != "https://storage.vapi.ai/8c1d2f3e-5a7b-4c9d-8e1f-2a3b4c5d6e7f-1767362703456-mono.wav" ||
		a.StereoRecordingURL != "https://storage.vapi.ai/8c1d2f3e-5a7b-4c9d-8e1f-2a3b4c5d6e7f-1767362703456-stereo.wav" {
		t.Errorf("recordings = %q, %q", a.RecordingURL, a.StereoRecordingURL)
	}
	if m.Analysis.Summary == "" || m.Analysis.SuccessEvaluation != "true" {
		t.Errorf("Analysis = %+v", m.Analysis)
	}
	var sd map[string]any
	if err := json.Unmarshal(m.Analysis.StructuredData, &sd); err != nil || sd["service"] != "cleaning" {
		t.Errorf("StructuredData = %s (%v)", m.Analysis.StructuredData, err)
	}
	if m.Call.CreatedAt.IsZero() || m.Call.UpdatedAt.IsZero() || m.Call.StartedAt.IsZero() {
		t.Errorf("call times missing: %+v", m.Call)
	}
	if len(m.ToolCalls) != 0 {
		t.Errorf("ToolCalls = %v, want none (tool calls inside artifact.messages are history)", m.ToolCalls)
	}
}

func TestParseVapiStatusUpdateSample(t *testing.T) {
	body, err := os.ReadFile("testdata/vapi-status-update.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseVapi(body)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != "status-update" || m.Status != "in-progress" {
		t.Errorf("Type %q Status %q", m.Type, m.Status)
	}
	if m.DedupKey() != "8c1d2f3e-5a7b-4c9d-8e1f-2a3b4c5d6e7f:status-update:in-progress" {
		t.Errorf("DedupKey = %q", m.DedupKey())
	}
	if m.DurationSeconds() != nil {
		t.Errorf("DurationSeconds = %v, want nil while the call runs", *m.DurationSeconds())
	}
	if m.Customer.Number != "+14155550187" {
		t.Errorf("Customer = %+v", m.Customer)
	}
}

func TestVapiMethods(t *testing.T) {
	tests := []struct {
		name                              string
		body                              string
		phoneNumberID, assistantID, dedup string
		direction                         string
		duration                          *float64
	}{
		{
			name:          "call fields win",
			body:          `{"message":{"type":"hang","call":{"id":"c","phoneNumberId":"p1","assistantId":"a1","type":"outboundPhoneCall"},"phoneNumber":{"id":"p2"},"assistant":{"id":"a2"}}}`,
			phoneNumberID: "p1", assistantID: "a1", dedup: "c:hang", direction: "outbound",
		},
		{
			name:          "fallbacks",
			body:          `{"message":{"type":"status-update","status":"ended","call":{"id":"c","type":"webCall"},"phoneNumber":{"id":"p2"},"assistant":{"id":"a2"}}}`,
			phoneNumberID: "p2", assistantID: "a2", dedup: "c:status-update:ended", direction: "web",
		},
		{
			name:        "websocket call and assistantId field",
			body:        `{"message":{"type":"status-update","call":{"id":"c","type":"vapi.websocketCall","status":"queued"},"assistantId":"a3"}}`,
			assistantID: "a3", dedup: "c:status-update:queued", direction: "web",
		},
		{
			name:      "top-level duration",
			body:      `{"message":{"type":"end-of-call-report","call":{"id":"c","type":"inboundPhoneCall","startedAt":"2026-01-01T00:00:00Z","endedAt":"2026-01-01T00:00:01Z"},"startedAt":"2026-01-01T00:00:00Z","endedAt":"2026-01-01T00:01:30.5Z"}}`,
			dedup:     "c:end-of-call-report",
			direction: "inbound",
			duration:  ptr(90.5),
		},
		{
			name:     "call duration when top level missing",
			body:     `{"message":{"type":"end-of-call-report","call":{"id":"c","startedAt":"2026-01-01T00:00:00Z","endedAt":"2026-01-01T00:00:42Z"},"startedAt":"2026-01-01T00:00:00Z"}}`,
			dedup:    "c:end-of-call-report",
			duration: ptr(42),
		},
		{
			name:  "negative duration is nil",
			body:  `{"message":{"type":"end-of-call-report","call":{"id":"c"},"startedAt":"2026-01-01T00:01:00Z","endedAt":"2026-01-01T00:00:00Z"}}`,
			dedup: "c:end-of-call-report",
		},
		{
			name: "no call gives empty dedup key",
			body: `{"message":{"type":"hang"}}`,
		},
		{
			name:  "unknown call type",
			body:  `{"message":{"type":"hang","call":{"id":"c","type":"satellitePhoneCall"}}}`,
			dedup: "c:hang",
		},
		{
			name:  "mistyped fields are ignored",
			body:  `{"message":{"type":"hang","call":{"id":"c","phoneNumberId":{"x":1},"assistantId":[1],"type":7,"cost":"cheap"},"phoneNumber":"p"}}`,
			dedup: "c:hang",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParseVapi(t, tt.body)
			if got := m.PhoneNumberID(); got != tt.phoneNumberID {
				t.Errorf("PhoneNumberID = %q, want %q", got, tt.phoneNumberID)
			}
			if got := m.AssistantID(); got != tt.assistantID {
				t.Errorf("AssistantID = %q, want %q", got, tt.assistantID)
			}
			if got := m.DedupKey(); got != tt.dedup {
				t.Errorf("DedupKey = %q, want %q", got, tt.dedup)
			}
			if got := m.Direction(); got != tt.direction {
				t.Errorf("Direction = %q, want %q", got, tt.direction)
			}
			got := m.DurationSeconds()
			if (got == nil) != (tt.duration == nil) || (got != nil && *got != *tt.duration) {
				t.Errorf("DurationSeconds = %v, want %v", deref(got), deref(tt.duration))
			}
		})
	}
}

func ptr(f float64) *float64 { return &f }

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

func TestParseVapiToolCalls(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []ToolCall
	}{
		{
			name: "openai shape with object arguments",
			body: `{"message":{"type":"tool-calls","toolCallList":[{"id":"t1","type":"function","function":{"name":"take_message","arguments":{"message":"hi", "name":"Ann"}}}]}}`,
			want: []ToolCall{{ID: "t1", Name: "take_message", Arguments: json.RawMessage(`{"message":"hi","name":"Ann"}`)}},
		},
		{
			name: "openai shape with string arguments",
			body: `{"message":{"type":"tool-calls","toolCallList":[{"id":"t1","type":"function","function":{"name":"take_message","arguments":"{\"message\": \"hi\"}"}}]}}`,
			want: []ToolCall{{ID: "t1", Name: "take_message", Arguments: json.RawMessage(`{"message":"hi"}`)}},
		},
		{
			name: "flat arguments",
			body: `{"message":{"type":"tool-calls","toolCallList":[{"id":"t2","name":"lookup","arguments":{"q":1}}]}}`,
			want: []ToolCall{{ID: "t2", Name: "lookup", Arguments: json.RawMessage(`{"q":1}`)}},
		},
		{
			name: "flat arguments as string",
			body: `{"message":{"type":"tool-calls","toolCallList":[{"id":"t2","name":"lookup","arguments":"{\"q\":1}"}]}}`,
			want: []ToolCall{{ID: "t2", Name: "lookup", Arguments: json.RawMessage(`{"q":1}`)}},
		},
		{
			name: "parameters",
			body: `{"message":{"type":"tool-calls","toolCallList":[{"id":"t3","name":"lookup","parameters":{"q":"x"}}]}}`,
			want: []ToolCall{{ID: "t3", Name: "lookup", Arguments: json.RawMessage(`{"q":"x"}`)}},
		},
		{
			name: "toolWithToolCallList",
			body: `{"message":{"type":"tool-calls","toolWithToolCallList":[{"type":"function","function":{"name":"take_message"},"toolCall":{"id":"t4","type":"function","function":{"name":"take_message","arguments":"{\"message\":\"x\"}"}}}]}}`,
			want: []ToolCall{{ID: "t4", Name: "take_message", Arguments: json.RawMessage(`{"message":"x"}`)}},
		},
		{
			name: "name from toolWithToolCallList wrapper",
			body: `{"message":{"type":"tool-calls","toolWithToolCallList":[{"name":"outer","toolCall":{"id":"t5","parameters":{"a":true}}}]}}`,
			want: []ToolCall{{ID: "t5", Name: "outer", Arguments: json.RawMessage(`{"a":true}`)}},
		},
		{
			name: "both lists deduplicated, missing pieces merged",
			body: `{"message":{"type":"tool-calls",
				"toolCallList":[{"id":"t1","type":"function","function":{"name":"take_message"}},{"id":"t2","name":"b","arguments":{}}],
				"toolWithToolCallList":[{"toolCall":{"id":"t1","function":{"name":"take_message","arguments":{"message":"m"}}}},{"toolCall":{"id":"t2","name":"b","arguments":{"k":2}}},{"toolCall":{"id":"t6","name":"c"}}]}}`,
			want: []ToolCall{
				{ID: "t1", Name: "take_message", Arguments: json.RawMessage(`{"message":"m"}`)},
				{ID: "t2", Name: "b", Arguments: json.RawMessage(`{"k":2}`)},
				{ID: "t6", Name: "c", Arguments: json.RawMessage(`{}`)},
			},
		},
		{
			name: "duplicate id keeps first",
			body: `{"message":{"type":"tool-calls","toolCallList":[{"id":"t1","name":"a","arguments":{"v":1}},{"id":"t1","name":"z","arguments":{"v":2}}]}}`,
			want: []ToolCall{{ID: "t1", Name: "a", Arguments: json.RawMessage(`{"v":1}`)}},
		},
		{
			name: "non-object arguments become empty object",
			body: `{"message":{"type":"tool-calls","toolCallList":[
				{"id":"a","name":"n","arguments":null},
				{"id":"b","name":"n","arguments":"not json"},
				{"id":"c","name":"n","arguments":"[1,2]"},
				{"id":"d","name":"n","arguments":[1]},
				{"id":"e","name":"n","arguments":""},
				{"id":"f","name":"n"},
				{"id":"g","name":"n","arguments":"{\"broken\":"}]}}`,
			want: []ToolCall{
				{ID: "a", Name: "n", Arguments: json.RawMessage(`{}`)},
				{ID: "b", Name: "n", Arguments: json.RawMessage(`{}`)},
				{ID: "c", Name: "n", Arguments: json.RawMessage(`{}`)},
				{ID: "d", Name: "n", Arguments: json.RawMessage(`{}`)},
				{ID: "e", Name: "n", Arguments: json.RawMessage(`{}`)},
				{ID: "f", Name: "n", Arguments: json.RawMessage(`{}`)},
				{ID: "g", Name: "n", Arguments: json.RawMessage(`{}`)},
			},
		},
		{
			name: "junk items skipped",
			body: `{"message":{"type":"tool-calls","toolCallList":[1,"x",null,{"id":"t1","name":"a"}],"toolWithToolCallList":[1,{"toolCall":"x"}]}}`,
			want: []ToolCall{{ID: "t1", Name: "a", Arguments: json.RawMessage(`{}`)}},
		},
		{
			name: "lists of wrong type",
			body: `{"message":{"type":"tool-calls","toolCallList":{"id":"t1"},"toolWithToolCallList":"x"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParseVapi(t, tt.body)
			if !reflect.DeepEqual(m.ToolCalls, tt.want) {
				t.Fatalf("ToolCalls =\n%s\nwant\n%s", fmtToolCalls(m.ToolCalls), fmtToolCalls(tt.want))
			}
		})
	}
}

func fmtToolCalls(tcs []ToolCall) string {
	s := ""
	for _, tc := range tcs {
		s += tc.ID + " " + tc.Name + " " + string(tc.Arguments) + "\n"
	}
	return s
}

func TestParseVapiTolerantFields(t *testing.T) {
	m := mustParseVapi(t, `{"message":{
		"type":"end-of-call-report",
		"transcript":"old transcript","summary":"old summary","recordingUrl":"https://r/mono","stereoRecordingUrl":"https://r/stereo",
		"messages":[{"role":"user"}],
		"cost":"0.25",
		"analysis":{"successEvaluation":8,"structuredData":null},
		"call":{"id":"c","endedReason":"voicemail","customer":{"number":"+14155550100","sipUri":"sip:x@y"},"cost":1}
	}}`)
	if m.Artifact.Transcript != "old transcript" || m.Analysis.Summary != "old summary" ||
		m.Artifact.RecordingURL != "https://r/mono" || m.Artifact.StereoRecordingURL != "https://r/stereo" ||
		string(m.Artifact.Messages) != `[{"role":"user"}]` {
		t.Errorf("legacy top-level fields not picked up: %+v %+v", m.Artifact, m.Analysis)
	}
	if m.Cost == nil || *m.Cost != 0.25 {
		t.Errorf("Cost = %v", m.Cost)
	}
	if m.Analysis.SuccessEvaluation != "8" || m.Analysis.StructuredData != nil {
		t.Errorf("Analysis = %+v", m.Analysis)
	}
	if m.EndedReason != "voicemail" {
		t.Errorf("EndedReason = %q, want call's", m.EndedReason)
	}
	if m.Customer.Number != "+14155550100" || m.Customer.SIPURI != "sip:x@y" {
		t.Errorf("Customer = %+v, want call's", m.Customer)
	}

	m = mustParseVapi(t, `{"message":{"type":"end-of-call-report","artifact":{"recording":{"stereoUrl":"https://r/s","mono":{"combinedUrl":"https://r/m"}}},"analysis":{"successEvaluation":false}}}`)
	if m.Artifact.RecordingURL != "https://r/m" || m.Artifact.StereoRecordingURL != "https://r/s" {
		t.Errorf("artifact.recording not used: %+v", m.Artifact)
	}
	if m.Analysis.SuccessEvaluation != "false" {
		t.Errorf("SuccessEvaluation = %q", m.Analysis.SuccessEvaluation)
	}
}

func TestParseVapiRawIsCopy(t *testing.T) {
	body := []byte(`{"message":{"type":"hang","call":{"id":"c"}}}`)
	m, err := ParseVapi(body)
	if err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = ' '
	}
	if string(m.Raw) != `{"type":"hang","call":{"id":"c"}}` {
		t.Fatalf("Raw aliases the input: %q", m.Raw)
	}
}
