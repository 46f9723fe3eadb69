package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// VapiMessage is the decoded "message" object of a Vapi server message. Only the
// fields Voxanne uses are decoded; Raw keeps the whole object for anything else
// (for example assistant-request handling or later reprocessing). Absent or
// mistyped fields are left at their zero value.
type VapiMessage struct {
	// Type is the message type, such as "status-update" or "tool-calls".
	// Unknown types decode normally; the caller decides to ignore them.
	Type string
	// Timestamp is when Vapi produced the message. Current payloads send
	// milliseconds, older ones an ISO 8601 string; both are accepted.
	Timestamp time.Time
	// Call describes the call the message is about.
	Call VapiCall
	// PhoneNumber is the Vapi phone number the call came through.
	PhoneNumber VapiPhoneNumber
	// Customer is message.customer, or call.customer when the former is
	// absent, because both describe the same party and payload types differ
	// in which one they carry.
	Customer VapiCustomer
	// Status is message.status, sent with status-update.
	Status string
	// EndedReason is message.endedReason, or call.endedReason when absent. It
	// has hundreds of values and is kept as an open string.
	EndedReason string
	// Artifact holds the transcript and recordings of end-of-call-report.
	Artifact VapiArtifact
	// Analysis holds the post-call analysis of end-of-call-report.
	Analysis VapiAnalysis
	// Cost is message.cost in US dollars, nil when absent so that "unknown"
	// is not confused with "free".
	Cost *float64
	// StartedAt and EndedAt are the top-level times of end-of-call-report.
	StartedAt, EndedAt time.Time
	// ToolCalls are the calls of a tool-calls message, normalized from every
	// shape Vapi uses and deduplicated by ID.
	ToolCalls []ToolCall
	// Raw is the undecoded message object.
	Raw json.RawMessage

	// assistantID is message.assistant.id (or message.assistantId), kept for
	// AssistantID's fallback.
	assistantID string
}

// VapiCall is message.call.
type VapiCall struct {
	ID, OrgID string
	// Type is inboundPhoneCall, outboundPhoneCall, webCall or
	// vapi.websocketCall; see VapiMessage.Direction.
	Type          string
	Status        string
	EndedReason   string
	AssistantID   string
	PhoneNumberID string
	Customer      VapiCustomer
	// Cost is call.cost in US dollars, nil when absent.
	Cost                 *float64
	StartedAt, EndedAt   time.Time
	CreatedAt, UpdatedAt time.Time
}

// VapiCustomer is the other party of a call.
type VapiCustomer struct {
	Number, Name, Email string
	// SIPURI and Extension are set for SIP callers, whose Number may be empty.
	SIPURI, Extension string
}

// VapiPhoneNumber is message.phoneNumber.
type VapiPhoneNumber struct {
	ID, Number string
}

// VapiArtifact is message.artifact. Older end-of-call-reports put transcript
// and recording URLs at the top level of the message and newer ones nest the
// URLs under artifact.recording; ParseVapi falls back to those places, so the
// caller sees one shape.
type VapiArtifact struct {
	Transcript string
	// Messages is the conversation as Vapi sent it, kept verbatim because its
	// item shapes vary by role and change over time.
	Messages           json.RawMessage
	RecordingURL       string
	StereoRecordingURL string
}

// VapiAnalysis is message.analysis.
type VapiAnalysis struct {
	Summary string
	// StructuredData is kept verbatim; its shape is defined per assistant.
	StructuredData json.RawMessage
	// SuccessEvaluation is a string, a boolean or a number depending on the
	// assistant's rubric; it is kept as its string form ("true", "8", "Pass").
	SuccessEvaluation string
}

// ToolCall is one function call requested by the assistant. Vapi expects a
// result whose toolCallId equals ID.
type ToolCall struct {
	ID, Name string
	// Arguments is always a JSON object: arguments sent as a JSON string are
	// decoded, and absent, null or non-object arguments become {} so tool
	// handlers report missing parameters rather than fail to decode.
	Arguments json.RawMessage
}

// obj is a decoded JSON object whose values are decoded on demand, so a
// mistyped field costs only itself.
type obj map[string]json.RawMessage

// ParseVapi decodes a Vapi server message body {"message": {...}}. It returns
// ErrBadPayload when the body is not JSON or has no message object; any other
// irregularity leaves the affected field empty.
func ParseVapi(body []byte) (*VapiMessage, error) {
	var env obj
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPayload, err)
	}
	if !storableNumbers(body) {
		return nil, fmt.Errorf("%w: a number beyond what PostgreSQL's jsonb holds", ErrBadPayload)
	}
	raw, ok := env["message"]
	if !ok {
		return nil, fmt.Errorf("%w: no message object", ErrBadPayload)
	}
	msg, ok := asObject(raw)
	if !ok {
		return nil, fmt.Errorf("%w: message is not an object", ErrBadPayload)
	}

	m := &VapiMessage{
		Type:        msg.str("type"),
		Timestamp:   msg.timestamp("timestamp"),
		Call:        parseCall(msg.object("call")),
		Status:      msg.str("status"),
		EndedReason: msg.str("endedReason"),
		Cost:        msg.float("cost"),
		StartedAt:   msg.timestamp("startedAt"),
		EndedAt:     msg.timestamp("endedAt"),
		Raw:         append(json.RawMessage(nil), raw...),
	}
	if pn := msg.object("phoneNumber"); pn != nil {
		m.PhoneNumber = VapiPhoneNumber{ID: pn.str("id"), Number: pn.str("number")}
	}
	m.Customer = parseCustomer(msg.object("customer"))
	if m.Customer == (VapiCustomer{}) {
		m.Customer = m.Call.Customer
	}
	if m.EndedReason == "" {
		m.EndedReason = m.Call.EndedReason
	}
	m.Artifact = parseArtifact(msg)
	if a := msg.object("analysis"); a != nil {
		m.Analysis = VapiAnalysis{
			Summary:           a.str("summary"),
			StructuredData:    a.rawValue("structuredData"),
			SuccessEvaluation: a.scalarString("successEvaluation"),
		}
	}
	if m.Analysis.Summary == "" {
		// Older reports carried the summary at the top level.
		m.Analysis.Summary = msg.str("summary")
	}
	m.ToolCalls = parseToolCalls(msg)
	if a := msg.object("assistant"); a != nil {
		m.assistantID = a.str("id")
	}
	if m.assistantID == "" {
		m.assistantID = msg.str("assistantId")
	}
	return m, nil
}

func parseCall(c obj) VapiCall {
	if c == nil {
		return VapiCall{}
	}
	return VapiCall{
		ID:            c.str("id"),
		OrgID:         c.str("orgId"),
		Type:          c.str("type"),
		Status:        c.str("status"),
		EndedReason:   c.str("endedReason"),
		AssistantID:   c.str("assistantId"),
		PhoneNumberID: c.str("phoneNumberId"),
		Customer:      parseCustomer(c.object("customer")),
		Cost:          c.float("cost"),
		StartedAt:     c.timestamp("startedAt"),
		EndedAt:       c.timestamp("endedAt"),
		CreatedAt:     c.timestamp("createdAt"),
		UpdatedAt:     c.timestamp("updatedAt"),
	}
}

func parseCustomer(c obj) VapiCustomer {
	if c == nil {
		return VapiCustomer{}
	}
	return VapiCustomer{
		Number:    c.str("number"),
		Name:      c.str("name"),
		Email:     c.str("email"),
		SIPURI:    c.str("sipUri"),
		Extension: c.str("extension"),
	}
}

func parseArtifact(msg obj) VapiArtifact {
	var a VapiArtifact
	art := msg.object("artifact")
	if art != nil {
		a = VapiArtifact{
			Transcript:         art.str("transcript"),
			Messages:           art.rawValue("messages"),
			RecordingURL:       art.str("recordingUrl"),
			StereoRecordingURL: art.str("stereoRecordingUrl"),
		}
		// Newer payloads: artifact.recording{stereoUrl, mono{combinedUrl}}.
		if rec := art.object("recording"); rec != nil {
			if a.RecordingURL == "" {
				if mono := rec.object("mono"); mono != nil {
					a.RecordingURL = mono.str("combinedUrl")
				}
			}
			if a.StereoRecordingURL == "" {
				a.StereoRecordingURL = rec.str("stereoUrl")
			}
		}
	}
	// Older payloads: the same fields at the top level of the message.
	if a.Transcript == "" {
		a.Transcript = msg.str("transcript")
	}
	if a.Messages == nil {
		a.Messages = msg.rawValue("messages")
	}
	if a.RecordingURL == "" {
		a.RecordingURL = msg.str("recordingUrl")
	}
	if a.StereoRecordingURL == "" {
		a.StereoRecordingURL = msg.str("stereoRecordingUrl")
	}
	return a
}

// parseToolCalls collects tool calls from toolCallList and from
// toolWithToolCallList[].toolCall; Vapi sends either or both, usually naming
// the same calls twice. The first occurrence of an ID wins, with a missing name
// or empty arguments filled from later duplicates, since the shapes differ in
// which fields they carry.
func parseToolCalls(msg obj) []ToolCall {
	var items []ToolCall
	for _, raw := range msg.array("toolCallList") {
		if it, ok := asObject(raw); ok {
			items = append(items, parseToolCall(it, nil))
		}
	}
	for _, raw := range msg.array("toolWithToolCallList") {
		wrapper, ok := asObject(raw)
		if !ok {
			continue
		}
		if it := wrapper.object("toolCall"); it != nil {
			items = append(items, parseToolCall(it, wrapper))
		}
	}
	if len(items) == 0 {
		return nil
	}

	out := make([]ToolCall, 0, len(items))
	index := make(map[string]int, len(items))
	for _, tc := range items {
		if tc.ID == "" {
			// Without an ID the call cannot be answered or deduplicated,
			// but it is kept so the caller can log what Vapi asked for.
			out = append(out, tc)
			continue
		}
		i, seen := index[tc.ID]
		if !seen {
			index[tc.ID] = len(out)
			out = append(out, tc)
			continue
		}
		if out[i].Name == "" {
			out[i].Name = tc.Name
		}
		if isEmptyObject(out[i].Arguments) {
			out[i].Arguments = tc.Arguments
		}
	}
	return out
}

// parseToolCall normalizes one item of the shapes {id, type, function{name,
// arguments}}, {id, name, arguments} and {id, name, parameters}. wrapper is the
// toolWithToolCallList entry, which names the tool when the call itself does
// not.
func parseToolCall(it, wrapper obj) ToolCall {
	tc := ToolCall{ID: it.str("id")}
	if tc.ID == "" {
		tc.ID = it.str("toolCallId")
	}
	var args json.RawMessage
	if fn := it.object("function"); fn != nil {
		tc.Name = fn.str("name")
		args = fn.rawValue("arguments")
	}
	if tc.Name == "" {
		tc.Name = it.str("name")
	}
	if args == nil {
		args = it.rawValue("arguments")
	}
	if args == nil {
		args = it.rawValue("parameters")
	}
	if tc.Name == "" && wrapper != nil {
		if fn := wrapper.object("function"); fn != nil {
			tc.Name = fn.str("name")
		}
		if tc.Name == "" {
			tc.Name = wrapper.str("name")
		}
	}
	tc.Arguments = normalizeArguments(args)
	return tc
}

// normalizeArguments returns raw as a compact JSON object. A JSON string is
// decoded once, because OpenAI-style function calls carry their arguments as
// an encoded string.
func normalizeArguments(raw json.RawMessage) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return json.RawMessage("{}")
		}
		raw = bytes.TrimSpace([]byte(s))
	}
	if len(raw) == 0 || raw[0] != '{' {
		return json.RawMessage("{}")
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return json.RawMessage("{}")
	}
	return json.RawMessage(buf.Bytes())
}

func isEmptyObject(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "{}"
}

// CallID returns call.id, the provider call ID that Voxanne stores as
// provider_call_id.
func (m *VapiMessage) CallID() string { return m.Call.ID }

// PhoneNumberID returns the Vapi phone number ID that identifies the org:
// call.phoneNumberId, else phoneNumber.id.
func (m *VapiMessage) PhoneNumberID() string {
	if m.Call.PhoneNumberID != "" {
		return m.Call.PhoneNumberID
	}
	return m.PhoneNumber.ID
}

// AssistantID returns call.assistantId, else message.assistant.id, else
// message.assistantId. The org lookup falls back to it when no phone number is
// known, as for web calls.
func (m *VapiMessage) AssistantID() string {
	if m.Call.AssistantID != "" {
		return m.Call.AssistantID
	}
	return m.assistantID
}

// DedupKey returns the key under which the event is stored at most once:
// call.id + ":" + type, plus ":" + status for status-update, because Vapi asks
// receivers to treat repeats of those as duplicates. It returns "" when the
// message names no call, so that unrelated call-less events are not collapsed
// into one; the caller must then choose its own key or skip deduplication.
func (m *VapiMessage) DedupKey() string {
	if m.Call.ID == "" {
		return ""
	}
	key := m.Call.ID + ":" + m.Type
	if m.Type == "status-update" {
		status := m.Status
		if status == "" {
			status = m.Call.Status
		}
		key += ":" + status
	}
	return key
}

// DurationSeconds returns endedAt - startedAt in seconds, from the top-level
// times of the message if both are set, else from the call's. It returns nil
// when either time is missing or the difference is negative, since Vapi's
// schema has no duration field and a guess would corrupt statistics.
func (m *VapiMessage) DurationSeconds() *float64 {
	start, end := m.StartedAt, m.EndedAt
	if start.IsZero() || end.IsZero() {
		start, end = m.Call.StartedAt, m.Call.EndedAt
	}
	if start.IsZero() || end.IsZero() || end.Before(start) {
		return nil
	}
	// Not end.Sub(start): a Duration saturates at 292 years.
	d := float64(end.UnixMicro()-start.UnixMicro()) / 1e6
	return &d
}

// Direction maps call.type to Voxanne's call direction: "inbound", "outbound" or
// "web"; it returns "" for an absent or unknown type.
func (m *VapiMessage) Direction() string {
	switch m.Call.Type {
	case "inboundPhoneCall":
		return "inbound"
	case "outboundPhoneCall":
		return "outbound"
	case "webCall", "vapi.websocketCall":
		return "web"
	}
	return ""
}

// asObject decodes raw as a JSON object; null and other types yield false.
func asObject(raw json.RawMessage) (obj, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false
	}
	var o obj
	if json.Unmarshal(raw, &o) != nil {
		return nil, false
	}
	if o == nil {
		o = obj{}
	}
	return o, true
}

// object returns the named field as an object, or nil.
func (o obj) object(name string) obj {
	v, ok := asObject(o[name])
	if !ok {
		return nil
	}
	return v
}

// array returns the named field's elements, or nil if it is not an array.
func (o obj) array(name string) []json.RawMessage {
	var a []json.RawMessage
	if json.Unmarshal(o[name], &a) != nil {
		return nil
	}
	return a
}

// str returns the named field if it is a string. Numbers are returned as their
// literal text because IDs occasionally arrive unquoted.
func (o obj) str(name string) string {
	raw := bytes.TrimSpace(o[name])
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if json.Valid(raw) {
			return string(raw)
		}
	}
	return ""
}

// scalarString returns the string form of a string, boolean or number field;
// objects and arrays are returned as compact JSON so nothing is silently lost.
func (o obj) scalarString(name string) string {
	raw := bytes.TrimSpace(o[name])
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if raw[0] == '"' {
		return o.str(name)
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return ""
	}
	return buf.String()
}

// rawValue returns a copy of the named field, or nil when it is absent or null,
// so callers can store "no value" as SQL NULL.
func (o obj) rawValue(name string) json.RawMessage {
	raw := bytes.TrimSpace(o[name])
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return append(json.RawMessage(nil), raw...)
}

// float returns the named field as a number; numeric strings are accepted.
func (o obj) float(name string) *float64 {
	raw := bytes.TrimSpace(o[name])
	if len(raw) == 0 {
		return nil
	}
	var f float64
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		// ParseFloat accepts "NaN" and "Inf", which are not amounts.
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		f = v
	} else if json.Unmarshal(raw, &f) != nil {
		return nil
	}
	return &f
}

// timestamp returns the named field as a UTC time. Numbers (and numeric strings)
// are unix milliseconds, or seconds when too small to be milliseconds; other
// strings are RFC 3339, with or without a zone (UTC assumed).
func (o obj) timestamp(name string) time.Time {
	raw := bytes.TrimSpace(o[name])
	if len(raw) == 0 {
		return time.Time{}
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return time.Time{}
		}
		return parseTimeString(strings.TrimSpace(s))
	}
	var f float64
	if json.Unmarshal(raw, &f) != nil {
		return time.Time{}
	}
	return fromUnixNumber(f)
}

func parseTimeString(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return fromUnixNumber(f)
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// maxUnixMillis is the last millisecond of year 9999, the latest time that
// JSON and storage both hold.
const maxUnixMillis = 253402300799999

// fromUnixNumber converts unix seconds or milliseconds. Zero and negative
// values are treated as absent (no Vapi event predates 1970), and so are
// values past year 9999.
func fromUnixNumber(f float64) time.Time {
	if math.IsNaN(f) || f <= 0 || f > maxUnixMillis {
		return time.Time{}
	}
	if f >= millisecondThreshold {
		return time.UnixMicro(int64(f * 1000)).UTC()
	}
	return time.UnixMicro(int64(f * 1e6)).UTC()
}

// Limits of PostgreSQL's numeric type, in which jsonb stores every number:
// digits before the decimal point and after it. A body with a number past
// them cannot be stored, so it is refused rather than acknowledged. The
// limits are a little under PostgreSQL's (131072 and 16383).
const (
	maxNumericWeight = 131000
	maxNumericScale  = 16000
)

// storableNumbers reports whether every number of the valid JSON text body
// fits PostgreSQL's numeric type.
func storableNumbers(body []byte) bool {
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c == '"':
			for i++; i < len(body) && body[i] != '"'; i++ {
				if body[i] == '\\' {
					i++
				}
			}
		case c == '-' || ('0' <= c && c <= '9'):
			j := i + 1
			for j < len(body) && strings.IndexByte("+-.eE0123456789", body[j]) >= 0 {
				j++
			}
			if !numericFits(body[i:j]) {
				return false
			}
			i = j - 1
		}
	}
	return true
}

// numericFits reports whether the JSON number num fits PostgreSQL's numeric:
// its scale (digits after the point, less the exponent) and the position of
// its first significant digit within the limits.
func numericFits(num []byte) bool {
	mant, exp, _ := bytes.Cut(bytes.TrimPrefix(num, []byte("-")), []byte("e"))
	if e, x, ok := bytes.Cut(mant, []byte("E")); ok {
		mant, exp = e, x
	}
	intPart, frac, _ := bytes.Cut(mant, []byte("."))
	e := 0
	if len(exp) > 0 {
		neg := exp[0] == '-'
		for _, d := range bytes.TrimLeft(exp, "+-") {
			e = min(e*10+int(d-'0'), 1<<30) // saturates; far past the limits
		}
		if neg {
			e = -e
		}
	}
	if max(len(frac)-e, 0) > maxNumericScale {
		return false
	}
	// The first significant digit's position: digits before the point when
	// positive.
	if sig := bytes.TrimLeft(intPart, "0"); len(sig) > 0 {
		return len(sig)+e <= maxNumericWeight
	}
	if sig := bytes.TrimLeft(frac, "0"); len(sig) > 0 {
		return e-(len(frac)-len(sig)) <= maxNumericWeight
	}
	return true // zero
}
