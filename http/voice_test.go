package http_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/internal/testenv"
)

// Ingestion is built elsewhere: these tests arrange voice data by inserting
// rows through the owner pool, as the webhook jobs would.

// insertRow inserts a row of org into a voice table (testenv.Env.InsertRow).
func insertRow(t testing.TB, e *testenv.Env, table, org string, fields map[string]any) string {
	t.Helper()
	return e.InsertRow(t, table, org, fields)
}

// voiceFixture is one call, contact, message and phone number of an org, and
// every string of theirs that must never reach another org.
type voiceFixture struct {
	callID, contactID, messageID, phoneID string
	secrets                               []string
}

func seedVoice(t testing.TB, e *testenv.Env, org string) voiceFixture {
	t.Helper()
	var f voiceFixture
	f.contactID = insertRow(t, e, "contacts", org, map[string]any{"phone_number": "+14155550100",
		"name": "Alma Alphason", "email": "alma@alpha.example", "notes": "Alpha-only note", "call_count": 1, "message_count": 1})
	f.callID = insertRow(t, e, "calls", org, map[string]any{"provider_call_id": "alpha-call-1", "status": "ended",
		"contact_id": f.contactID, "from_number": "+14155550100", "to_number": "+14155550111",
		"summary": "Alpha-only summary: kneecap appointment", "transcript": "Alpha-only transcript about a kneecap",
		"started_at": time.Now().Add(-time.Hour), "duration_seconds": 42.0, "ended_reason": "alpha-only-reason"})
	f.messageID = insertRow(t, e, "messages", org, map[string]any{"provider_message_id": "SMalpha0001",
		"contact_id": f.contactID, "from_number": "+14155550100", "to_number": "+14155550111", "body": "Alpha-only text"})
	f.phoneID = insertRow(t, e, "phone_numbers", org, map[string]any{"e164": "+14155550111", "provider": "vapi",
		"provider_id": "alpha-pn-1", "assistant_id": "alpha-assistant-1", "label": "Alpha-only line"})
	f.secrets = []string{f.callID, f.contactID, f.messageID, f.phoneID, "alpha-call-1", "Alpha-only", "Alma Alphason",
		"alma@alpha.example", "+14155550100", "+14155550111", "alpha-pn-1", "alpha-assistant-1", "SMalpha0001", "alpha-only-reason"}
	return f
}

// voiceEnv is two orgs: A with an owner, an admin and a member; B with an owner.
type voiceEnv struct {
	e                    *testenv.Env
	owner, admin, member *testenv.Session
	ownerB               *testenv.Session
	orgA, orgB           string
}

func newVoiceEnv(t *testing.T) *voiceEnv {
	t.Helper()
	e := testenv.New(t, testenv.Options{})
	v := &voiceEnv{e: e}
	v.owner = e.SignUp("voice-owner@example.com")
	v.orgA = v.owner.OrgID()
	v.admin = e.AddMember(v.owner, "voice-admin@example.com", "admin")
	v.member = e.AddMember(v.owner, "voice-member@example.com", "member")
	v.ownerB = e.SignUp("voice-owner-b@example.com")
	v.orgB = v.ownerB.OrgID()
	return v
}

func (v *voiceEnv) do(s *testenv.Session, method, path string, body any) *testenv.Response {
	v.e.T.Helper()
	return v.e.Do(method, path, body, testenv.Bearer(s.AccessToken)...)
}

// list is a list answer.
type list[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

func decodeList[T any](t *testing.T, r *testenv.Response) list[T] {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}
	var l list[T]
	r.Decode(t, &l)
	if l.Data == nil {
		t.Fatalf("list data is not an array: %s", r.Body)
	}
	return l
}

func wantError(t *testing.T, r *testenv.Response, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("want %d %s, got %d %s", status, code, r.Status, r.Body)
	}
	if got := r.JSON(t)["code"]; got != code {
		t.Fatalf("want code %s, got %v: %s", code, got, r.Body)
	}
}

func callIDs(cs []voxanne.Call) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

// orderedIDs returns the ids of org's rows of table, newest first, as the
// database orders them.
func orderedIDs(t *testing.T, e *testenv.Env, table, org string) []string {
	t.Helper()
	rows, err := e.Query(context.Background(),
		"select id::text from "+table+" where org_id = $1 order by created_at desc, id desc", org)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

// walkCalls pages through path with limit 50, calling between after each
// page; it fails on a duplicate and returns the ids in order.
func walkCalls(t *testing.T, v *voiceEnv, s *testenv.Session, path string, between func(page int)) ([]string, []int) {
	t.Helper()
	var ids []string
	var sizes []int
	seen := map[string]bool{}
	cursor := ""
	for page := 0; ; page++ {
		p := path + "limit=50"
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		l := decodeList[voxanne.Call](t, v.do(s, "GET", p, nil))
		sizes = append(sizes, len(l.Data))
		for _, c := range l.Data {
			if seen[c.ID] {
				t.Fatalf("page %d repeats call %s", page, c.ID)
			}
			seen[c.ID] = true
			ids = append(ids, c.ID)
		}
		if l.NextCursor == nil {
			return ids, sizes
		}
		if *l.NextCursor == "" || page > 10 {
			t.Fatalf("bad next_cursor %q on page %d", *l.NextCursor, page)
		}
		cursor = *l.NextCursor
		if between != nil {
			between(page)
		}
	}
}

func TestVoiceCallsPagination(t *testing.T) {
	t.Parallel()
	v := newVoiceEnv(t)
	// 120 calls an hour ago and before, three to a timestamp (the id breaks
	// ties) at microsecond precision (a cursor cut to milliseconds would skip
	// or repeat calls).
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Second).Add(123456 * time.Microsecond)
	for i := range 120 {
		insertRow(t, v.e, "calls", v.orgA, map[string]any{"created_at": base.Add(-time.Duration(i/3) * time.Millisecond)})
	}
	// Org B's calls interleave in time and never show.
	for i := range 10 {
		insertRow(t, v.e, "calls", v.orgB, map[string]any{"created_at": base.Add(-time.Duration(i) * time.Millisecond)})
	}
	want := orderedIDs(t, v.e, "calls", v.orgA)
	if len(want) != 120 {
		t.Fatalf("fixture has %d calls", len(want))
	}

	got, sizes := walkCalls(t, v, v.member, "/api/calls?", nil)
	if !slices.Equal(got, want) {
		t.Fatalf("walk returned %d calls out of order or with gaps", len(got))
	}
	if !slices.Equal(sizes, []int{50, 50, 20}) {
		t.Fatalf("page sizes %v", sizes)
	}

	// Calls arriving while a client pages are newer than its cursor: the walk
	// neither repeats nor skips any of the calls it started with.
	var added []string
	got, _ = walkCalls(t, v, v.member, "/api/calls?", func(page int) {
		for range 7 {
			added = append(added, insertRow(t, v.e, "calls", v.orgA, nil))
		}
	})
	if !slices.Equal(got, want) {
		t.Fatalf("walk with concurrent inserts returned %d calls, not the %d it started with", len(got), len(want))
	}
	// A fresh walk starts with the new calls.
	l := decodeList[voxanne.Call](t, v.do(v.member, "GET", "/api/calls?limit=100", nil))
	if len(l.Data) != 100 || !slices.Contains(added, l.Data[0].ID) {
		t.Fatalf("new calls are not first: %d calls", len(l.Data))
	}

	// B sees only its own ten.
	gotB, _ := walkCalls(t, v, v.ownerB, "/api/calls?", nil)
	if !slices.Equal(gotB, orderedIDs(t, v.e, "calls", v.orgB)) {
		t.Fatalf("org B's walk: %v", gotB)
	}

	// Limits.
	if l := decodeList[voxanne.Call](t, v.do(v.member, "GET", "/api/calls?limit=1", nil)); len(l.Data) != 1 || l.NextCursor == nil {
		t.Fatalf("limit=1: %d calls", len(l.Data))
	}
	if l := decodeList[voxanne.Call](t, v.do(v.member, "GET", "/api/calls", nil)); len(l.Data) != 50 {
		t.Fatalf("default limit: %d calls", len(l.Data))
	}
}

func TestVoiceListErrors(t *testing.T) {
	t.Parallel()
	v := newVoiceEnv(t)
	cursor := func(s string) string { return url.QueryEscape(base64.RawURLEncoding.EncodeToString([]byte(s))) }
	for _, path := range []string{"/api/calls", "/api/messages", "/api/contacts"} {
		for _, q := range []string{"limit=0", "limit=101", "limit=-1", "limit=ten", "limit=1.5",
			"cursor=%21%21%21", "cursor=" + cursor("garbage"), "cursor=" + cursor("2024-01-01T00:00:00Z|not-a-uuid"),
			"cursor=" + cursor("yesterday|"+uuid.NewString()), "cursor=" + cursor("2024-01-01T00:00:00Z")} {
			t.Run(path+"?"+q, func(t *testing.T) {
				wantError(t, v.do(v.member, "GET", path+"?"+q, nil), 400, "validation_failed")
			})
		}
	}
	for _, path := range []string{"/api/calls?from=yesterday", "/api/calls?to=2024-13-01", "/api/calls?from=2024-02-30",
		"/api/calls?to=03%2F01%2F2024", "/api/calls?from=2024-03-02&to=2024-03-01", "/api/stats?from=nope",
		"/api/stats?to=2024-01-01T25:00:00Z", "/api/stats?from=2024-03-02T00:00:00Z&to=2024-03-01",
		"/api/messages?contact_id=nope", "/api/messages?contact_id=" + strings.Repeat("a", 32),
		"/api/calls/not-a-uuid", "/api/contacts/not-a-uuid", "/api/calls/" + strings.ToUpper(uuid.NewString())[:35]} {
		t.Run(path, func(t *testing.T) {
			wantError(t, v.do(v.member, "GET", path, nil), 400, "validation_failed")
		})
	}
	wantError(t, v.do(v.member, "PATCH", "/api/contacts/not-a-uuid", map[string]any{"name": "x"}), 400, "validation_failed")
	wantError(t, v.do(v.admin, "DELETE", "/api/phone-numbers/not-a-uuid", nil), 400, "validation_failed")
	wantError(t, v.do(v.member, "GET", "/api/calls/"+uuid.NewString(), nil), 404, "not_found")
	wantError(t, v.do(v.member, "GET", "/api/contacts/"+uuid.NewString(), nil), 404, "not_found")

	// Empty lists are arrays, with a null cursor.
	for _, path := range []string{"/api/calls", "/api/messages", "/api/contacts", "/api/phone-numbers"} {
		r := v.do(v.ownerB, "GET", path, nil)
		if r.Status != 200 || strings.TrimSpace(string(r.Body)) != `{"data":[],"next_cursor":null}` {
			t.Errorf("empty %s: %d %s", path, r.Status, r.Body)
		}
	}
}

func TestVoiceCallFilters(t *testing.T) {
	t.Parallel()
	v := newVoiceEnv(t)
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	booking := insertRow(t, v.e, "calls", v.orgA, map[string]any{"status": "ended", "created_at": at("2024-03-01T10:00:00Z"),
		"transcript": "Caller: I'd like to book an appointment for Tuesday. Assistant: Sure."})
	hours := insertRow(t, v.e, "calls", v.orgA, map[string]any{"status": "ended", "created_at": at("2024-03-02T10:00:00Z"),
		"transcript": "Caller: what are your opening hours on Sunday?"})
	pricing := insertRow(t, v.e, "calls", v.orgA, map[string]any{"status": "in-progress", "created_at": at("2024-03-03T10:00:00Z"),
		"summary": "Caller asked about pricing"})
	other := insertRow(t, v.e, "calls", v.orgB, map[string]any{"status": "ended", "created_at": at("2024-03-01T11:00:00Z"),
		"transcript": "Bravo caller wants an appointment too"})

	for _, c := range []struct {
		query string
		want  []string
	}{
		{"", []string{pricing, hours, booking}},
		{"q=appointment", []string{booking}},
		{"q=appointments", []string{booking}}, // stemmed
		{"q=" + url.QueryEscape(`"opening hours"`), []string{hours}},
		{"q=" + url.QueryEscape("appointment or pricing"), []string{pricing, booking}},
		{"q=" + url.QueryEscape("appointment -tuesday"), []string{}},
		{"q=dentist", []string{}},
		{"status=ended", []string{hours, booking}},
		{"status=in-progress", []string{pricing}},
		{"status=queued", []string{}},
		{"from=2024-03-02", []string{pricing, hours}},
		{"to=2024-03-02", []string{hours, booking}}, // a date includes its whole day
		{"from=2024-03-02&to=2024-03-02", []string{hours}},
		{"from=2024-03-01T12:00:00Z&to=2024-03-03T09:59:59Z", []string{hours}},
		{"from=" + url.QueryEscape("2024-03-02T15:30:00+05:30"), []string{pricing, hours}}, // 10:00 UTC, inclusive
		{"to=2024-03-01T10:00:00Z", []string{booking}},
		{"q=appointment&status=in-progress", []string{}},
		{"q=appointment&from=2024-03-02", []string{}},
	} {
		t.Run(c.query, func(t *testing.T) {
			l := decodeList[voxanne.Call](t, v.do(v.member, "GET", "/api/calls?"+c.query, nil))
			if got := callIDs(l.Data); !slices.Equal(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			if l.NextCursor != nil {
				t.Fatalf("next_cursor %v", *l.NextCursor)
			}
		})
	}
	// Org B's search finds its own call only, and A's never finds B's.
	l := decodeList[voxanne.Call](t, v.do(v.ownerB, "GET", "/api/calls?q=appointment", nil))
	if !slices.Equal(callIDs(l.Data), []string{other}) {
		t.Fatalf("B's search: %v", callIDs(l.Data))
	}
	r := v.do(v.owner, "GET", "/api/calls?q=bravo", nil)
	if strings.Contains(string(r.Body), other) || len(decodeList[voxanne.Call](t, r).Data) != 0 {
		t.Fatalf("A's search found B's call: %s", r.Body)
	}
	// Filters page too.
	p1 := decodeList[voxanne.Call](t, v.do(v.member, "GET", "/api/calls?status=ended&limit=1", nil))
	if !slices.Equal(callIDs(p1.Data), []string{hours}) || p1.NextCursor == nil {
		t.Fatalf("page 1: %v", callIDs(p1.Data))
	}
	p2 := decodeList[voxanne.Call](t, v.do(v.member, "GET", "/api/calls?status=ended&limit=1&cursor="+url.QueryEscape(*p1.NextCursor), nil))
	if !slices.Equal(callIDs(p2.Data), []string{booking}) || p2.NextCursor != nil {
		t.Fatalf("page 2: %v %v", callIDs(p2.Data), p2.NextCursor)
	}
}

func TestVoiceCallDetailIsAudited(t *testing.T) {
	t.Parallel()
	v := newVoiceEnv(t)
	contact := insertRow(t, v.e, "contacts", v.orgA, map[string]any{"phone_number": "+14155550123"})
	started := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)
	id := insertRow(t, v.e, "calls", v.orgA, map[string]any{"provider_call_id": "vapi-call-42", "direction": "inbound",
		"status": "ended", "from_number": "+14155550123", "to_number": "+14155550999", "contact_id": contact,
		"assistant_id": "asst-1", "started_at": started, "ended_at": started.Add(61500 * time.Millisecond),
		"duration_seconds": 61.5, "ended_reason": "customer-ended-call", "cost_usd": "0.1234",
		"summary": "Booked a cleaning", "success_evaluation": "true", "transcript": "AI: Hello!\nUser: I need a cleaning.",
		"messages": json.RawMessage(`[{"role":"bot","message":"Hello!"}]`), "structured_data": json.RawMessage(`{"intent":"booking"}`),
		"recording_url": "https://recordings.example/42.wav", "created_at": started})

	r := v.do(v.member, "GET", "/api/calls/"+id, nil)
	if r.Status != 200 {
		t.Fatalf("get call: %d %s", r.Status, r.Body)
	}
	var c struct {
		voxanne.Call
		Transcript     *string         `json:"transcript"`
		Messages       json.RawMessage `json:"messages"`
		StructuredData json.RawMessage `json:"structured_data"`
		RecordingURL   *string         `json:"recording_url"`
	}
	r.Decode(t, &c)
	switch {
	case c.ID != id || c.ProviderCallID != "vapi-call-42" || *c.Direction != "inbound" || c.Status != "ended":
		t.Fatalf("call: %s", r.Body)
	case *c.ContactID != contact || *c.DurationSeconds != 61.5 || *c.CostUSD != 0.1234 || *c.EndedReason != "customer-ended-call":
		t.Fatalf("call: %s", r.Body)
	case *c.Transcript != "AI: Hello!\nUser: I need a cleaning." || *c.RecordingURL != "https://recordings.example/42.wav":
		t.Fatalf("call: %s", r.Body)
	case string(c.Messages) != `[{"role":"bot","message":"Hello!"}]` || string(c.StructuredData) != `{"intent":"booking"}`:
		t.Fatalf("call JSON fields: %s", r.Body)
	case c.PhoneNumberID != nil:
		t.Fatalf("phone_number_id: %s", r.Body)
	}
	if !strings.Contains(string(r.Body), `"started_at":"2024-05-01T09:00:00Z"`) || !strings.Contains(string(r.Body), `"created_at":"2024-05-01T09:00:00Z"`) {
		t.Fatalf("times are not UTC: %s", r.Body)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
	}
	// Lists leave the transcript out.
	if lr := v.do(v.member, "GET", "/api/calls", nil); strings.Contains(string(lr.Body), "I need a cleaning") || !strings.Contains(string(lr.Body), "Booked a cleaning") {
		t.Fatalf("list: %s", lr.Body)
	}

	reads := func(s *testenv.Session) []voxanne.AuditEntry {
		t.Helper()
		return decodeList[voxanne.AuditEntry](t, v.do(s, "GET", "/api/org/audit-log?action=transcript_read", nil)).Data
	}
	log := reads(v.owner)
	if len(log) != 1 {
		t.Fatalf("%d transcript_read entries", len(log))
	}
	if e := log[0]; *e.TargetType != "call" || *e.TargetID != id || *e.ActorID != v.member.User.ID {
		t.Fatalf("audit entry: %+v", e)
	}

	// Another org's caller gets 404, learns nothing, and nothing is audited.
	r = v.do(v.ownerB, "GET", "/api/calls/"+id, nil)
	wantError(t, r, 404, "not_found")
	for _, s := range []string{"cleaning", "vapi-call-42", contact} {
		if strings.Contains(string(r.Body), s) {
			t.Fatalf("404 carries %q: %s", s, r.Body)
		}
	}
	if n := len(reads(v.owner)); n != 1 {
		t.Fatalf("%d transcript_read entries after B's attempt", n)
	}
	if n := len(reads(v.ownerB)); n != 0 {
		t.Fatalf("B's log has %d transcript reads", n)
	}
	// Each read is audited.
	v.do(v.admin, "GET", "/api/calls/"+id, nil)
	if n := len(reads(v.owner)); n != 2 {
		t.Fatalf("%d transcript_read entries after a second read", n)
	}
	if r := v.do(v.owner, "GET", "/api/org/audit-log/verify", nil); r.JSON(t)["valid"] != true {
		t.Fatalf("audit chain: %s", r.Body)
	}
}

func TestVoiceStats(t *testing.T) {
	t.Parallel()
	v := newVoiceEnv(t)
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	call := func(org, created string, started bool, duration any, reason any) {
		f := map[string]any{"created_at": at(created), "duration_seconds": duration, "ended_reason": reason}
		if started {
			f["started_at"] = at(created)
		}
		insertRow(t, v.e, "calls", org, f)
	}
	// 23:30 UTC is the next day in the test's local zone (UTC+05:30): days are UTC.
	call(v.orgA, "2024-03-01T08:00:00Z", true, 60.0, "customer-ended-call")
	call(v.orgA, "2024-03-01T23:30:00Z", false, nil, "customer-did-not-answer")
	call(v.orgA, "2024-03-02T12:00:00Z", true, 120.0, "customer-ended-call")
	call(v.orgA, "2024-03-03T00:00:00Z", true, nil, nil)
	call(v.orgA, "2024-02-01T12:00:00Z", true, 1000.0, "outside") // before the period
	call(v.orgB, "2024-03-02T12:00:00Z", true, 5000.0, "bravo")   // another org
	msg := func(org, created, dir string) {
		insertRow(t, v.e, "messages", org, map[string]any{"created_at": at(created), "direction": dir})
	}
	msg(v.orgA, "2024-03-01T09:00:00Z", "inbound")
	msg(v.orgA, "2024-03-02T09:00:00Z", "inbound")
	msg(v.orgA, "2024-03-03T23:59:59Z", "inbound")
	msg(v.orgA, "2024-03-02T09:01:00Z", "outbound")
	msg(v.orgA, "2024-03-02T09:02:00Z", "outbound")
	msg(v.orgA, "2024-03-04T00:00:00Z", "inbound") // after the period
	msg(v.orgB, "2024-03-02T09:00:00Z", "inbound")

	stats := func(s *testenv.Session, q string) voxanne.Stats {
		t.Helper()
		r := v.do(s, "GET", "/api/stats"+q, nil)
		if r.Status != 200 {
			t.Fatalf("stats%s: %d %s", q, r.Status, r.Body)
		}
		var st voxanne.Stats
		r.Decode(t, &st)
		return st
	}
	got := stats(v.member, "?from=2024-03-01&to=2024-03-03")
	want := voxanne.Stats{Calls: 4, Answered: 3, AvgDurationSeconds: 90,
		ByDay:       []voxanne.DayCount{{Date: "2024-03-01", Calls: 2}, {Date: "2024-03-02", Calls: 1}, {Date: "2024-03-03", Calls: 1}},
		ByOutcome:   map[string]int{"customer-ended-call": 2, "customer-did-not-answer": 1},
		MessagesIn:  3,
		MessagesOut: 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stats:\n got %+v\nwant %+v", got, want)
	}
	// RFC 3339 ends are inclusive.
	if got := stats(v.member, "?from=2024-03-01T23:30:00Z&to=2024-03-02T12:00:00Z"); got.Calls != 2 || got.MessagesOut != 2 || got.MessagesIn != 1 {
		t.Fatalf("RFC 3339 period: %+v", got)
	}
	// The default period is the last 30 days.
	insertRow(t, v.e, "calls", v.orgA, map[string]any{"started_at": time.Now().Add(-time.Hour), "duration_seconds": 10.0})
	insertRow(t, v.e, "calls", v.orgA, map[string]any{"created_at": time.Now().Add(-29 * 24 * time.Hour)})
	insertRow(t, v.e, "calls", v.orgA, map[string]any{"created_at": time.Now().Add(-31 * 24 * time.Hour)})
	if got := stats(v.member, ""); got.Calls != 2 || got.Answered != 1 || got.AvgDurationSeconds != 10 || len(got.ByDay) != 2 {
		t.Fatalf("default period: %+v", got)
	}
	// Nothing: zeros, an empty day list and an empty outcome map.
	r := v.do(v.member, "GET", "/api/stats?from=2020-01-01&to=2020-01-31", nil)
	if strings.TrimSpace(string(r.Body)) != `{"calls":0,"answered":0,"avg_duration_seconds":0,"by_day":[],"by_outcome":{},"messages_in":0,"messages_out":0}` {
		t.Fatalf("empty stats: %s", r.Body)
	}
	// Org B's stats are its own.
	if got := stats(v.ownerB, "?from=2024-03-01&to=2024-03-03"); got.Calls != 1 || got.AvgDurationSeconds != 5000 || got.MessagesIn != 1 || got.ByOutcome["bravo"] != 1 {
		t.Fatalf("B's stats: %+v", got)
	}
}

func TestVoiceContacts(t *testing.T) {
	t.Parallel()
	v := newVoiceEnv(t)
	base := time.Now().Add(-48 * time.Hour).UTC()
	dana := insertRow(t, v.e, "contacts", v.orgA, map[string]any{"phone_number": "+14155550001", "name": "Dana",
		"email": "dana@example.com", "notes": "first note", "call_count": 12, "message_count": 3, "created_at": base})
	eli := insertRow(t, v.e, "contacts", v.orgA, map[string]any{"phone_number": "+14155550002", "created_at": base.Add(time.Hour)})
	var danaCalls []string
	for i := range 12 {
		danaCalls = append(danaCalls, insertRow(t, v.e, "calls", v.orgA, map[string]any{"contact_id": dana,
			"created_at": base.Add(time.Duration(i) * time.Minute)}))
	}
	slices.Reverse(danaCalls)
	eliCall := insertRow(t, v.e, "calls", v.orgA, map[string]any{"contact_id": eli, "created_at": base.Add(time.Hour)})
	var danaMsgs []string
	for i := range 3 {
		danaMsgs = append(danaMsgs, insertRow(t, v.e, "messages", v.orgA, map[string]any{"contact_id": dana,
			"body": fmt.Sprint("text ", i), "created_at": base.Add(time.Duration(i) * time.Minute)}))
	}
	slices.Reverse(danaMsgs)
	insertRow(t, v.e, "messages", v.orgA, map[string]any{"contact_id": eli})
	bravo := insertRow(t, v.e, "contacts", v.orgB, map[string]any{"phone_number": "+14155550001", "name": "Bravo Dana"})

	// List: newest first, paged.
	l := decodeList[voxanne.Contact](t, v.do(v.member, "GET", "/api/contacts?limit=1", nil))
	if len(l.Data) != 1 || l.Data[0].ID != eli || l.NextCursor == nil {
		t.Fatalf("contacts page 1: %+v", l)
	}
	l = decodeList[voxanne.Contact](t, v.do(v.member, "GET", "/api/contacts?limit=1&cursor="+url.QueryEscape(*l.NextCursor), nil))
	if len(l.Data) != 1 || l.Data[0].ID != dana || l.NextCursor != nil {
		t.Fatalf("contacts page 2: %+v", l)
	}
	if c := l.Data[0]; c.PhoneNumber != "+14155550001" || *c.Name != "Dana" || c.CallCount != 12 || c.MessageCount != 3 || c.Notes != "first note" {
		t.Fatalf("contact: %+v", c)
	}

	// Detail: the ten latest calls and the latest messages, newest first.
	r := v.do(v.member, "GET", "/api/contacts/"+dana, nil)
	if r.Status != 200 {
		t.Fatalf("contact: %d %s", r.Status, r.Body)
	}
	var d voxanne.ContactDetail
	r.Decode(t, &d)
	if d.ID != dana || *d.Email != "dana@example.com" {
		t.Fatalf("contact detail: %s", r.Body)
	}
	if got := callIDs(d.RecentCalls); !slices.Equal(got, danaCalls[:10]) {
		t.Fatalf("recent calls %v, want %v", got, danaCalls[:10])
	}
	var gotMsgs []string
	for _, m := range d.RecentMessages {
		gotMsgs = append(gotMsgs, m.ID)
	}
	if !slices.Equal(gotMsgs, danaMsgs) {
		t.Fatalf("recent messages %v, want %v", gotMsgs, danaMsgs)
	}
	if strings.Contains(string(r.Body), eliCall) {
		t.Fatal("another contact's call in the detail")
	}
	r = v.do(v.member, "GET", "/api/contacts/"+eli, nil)
	if !strings.Contains(string(r.Body), `"recent_calls":[{`) || !strings.Contains(string(r.Body), `"recent_messages":[{`) {
		t.Fatalf("eli: %s", r.Body)
	}
	fresh := insertRow(t, v.e, "contacts", v.orgA, nil)
	r = v.do(v.member, "GET", "/api/contacts/"+fresh, nil)
	if !strings.Contains(string(r.Body), `"recent_calls":[]`) || !strings.Contains(string(r.Body), `"recent_messages":[]`) {
		t.Fatalf("contact without activity: %s", r.Body)
	}

	// Org isolation: B gets 404 for A's contact and A for B's.
	wantError(t, v.do(v.ownerB, "GET", "/api/contacts/"+dana, nil), 404, "not_found")
	wantError(t, v.do(v.owner, "GET", "/api/contacts/"+bravo, nil), 404, "not_found")
	if r := v.do(v.ownerB, "GET", "/api/contacts", nil); strings.Contains(string(r.Body), dana) || !strings.Contains(string(r.Body), bravo) {
		t.Fatalf("B's contacts: %s", r.Body)
	}
}

func TestVoiceUpdateContact(t *testing.T) {
	t.Parallel()
	v := newVoiceEnv(t)
	created := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	id := insertRow(t, v.e, "contacts", v.orgA, map[string]any{"phone_number": "+14155550001", "name": "Dana",
		"email": "dana@example.com", "notes": "first note", "call_count": 4, "message_count": 2, "created_at": created})
	patch := func(s *testenv.Session, body any) *testenv.Response {
		t.Helper()
		return v.do(s, "PATCH", "/api/contacts/"+id, body)
	}
	contact := func(r *testenv.Response) voxanne.Contact {
		t.Helper()
		if r.Status != 200 {
			t.Fatalf("patch: %d %s", r.Status, r.Body)
		}
		var c voxanne.Contact
		r.Decode(t, &c)
		return c
	}

	// A member may edit; protected fields in the body are ignored.
	c := contact(patch(v.member, map[string]any{"name": "  Dana Scully ", "email": "Dana.Scully@Example.com", "notes": "prefers mornings",
		"id": uuid.NewString(), "org_id": v.orgB, "phone_number": "+19999999999", "created_at": "2001-01-01T00:00:00Z",
		"call_count": 999, "message_count": 999, "first_seen_at": "2001-01-01T00:00:00Z"}))
	if c.ID != id || c.PhoneNumber != "+14155550001" || c.CallCount != 4 || c.MessageCount != 2 || c.FirstSeenAt.Year() == 2001 {
		t.Fatalf("protected fields changed: %+v", c)
	}
	if *c.Name != "Dana Scully" || *c.Email != "dana.scully@example.com" || c.Notes != "prefers mornings" {
		t.Fatalf("update: %+v", c)
	}
	var org string
	var createdAt time.Time
	if err := v.e.QueryRow(context.Background(), "select org_id::text, created_at from contacts where id = $1", id).Scan(&org, &createdAt); err != nil {
		t.Fatal(err)
	}
	if org != v.orgA || !createdAt.Equal(created) {
		t.Fatalf("org %s created_at %s", org, createdAt)
	}

	// Absent fields stay as they are.
	c = contact(patch(v.admin, map[string]any{"notes": "second note"}))
	if *c.Name != "Dana Scully" || *c.Email != "dana.scully@example.com" || c.Notes != "second note" {
		t.Fatalf("partial update: %+v", c)
	}
	// Empty strings (or null) clear the name and email.
	c = contact(patch(v.owner, map[string]any{"name": "", "email": nil}))
	if c.Name != nil || c.Email != nil || c.Notes != "second note" {
		t.Fatalf("clear: %+v", c)
	}
	c = contact(patch(v.owner, map[string]any{"notes": strings.Repeat("é", 10000)}))
	if len([]rune(c.Notes)) != 10000 {
		t.Fatalf("notes of 10,000 characters: %d", len([]rune(c.Notes)))
	}
	c = contact(patch(v.owner, map[string]any{}))
	if len([]rune(c.Notes)) != 10000 {
		t.Fatal("an empty patch changed the notes")
	}

	for name, body := range map[string]any{
		"bad email":   map[string]any{"email": "not-an-email"},
		"long notes":  map[string]any{"notes": strings.Repeat("x", 10001)},
		"long name":   map[string]any{"name": strings.Repeat("x", 201)},
		"name number": map[string]any{"name": 5},
		"notes array": map[string]any{"notes": []string{"a"}},
		"bad json":    `{"name": `,
		"not object":  `["name"]`,
	} {
		t.Run(name, func(t *testing.T) {
			wantError(t, patch(v.owner, body), 400, "validation_failed")
		})
	}

	// Another org: 404, and nothing changes.
	wantError(t, v.do(v.ownerB, "PATCH", "/api/contacts/"+id, map[string]any{"name": "Bravo was here"}), 404, "not_found")
	wantError(t, v.do(v.owner, "PATCH", "/api/contacts/"+uuid.NewString(), map[string]any{"name": "x"}), 404, "not_found")
	c = contact(v.do(v.owner, "GET", "/api/contacts/"+id, nil))
	if c.Name != nil {
		t.Fatalf("B's patch landed: %+v", c)
	}
}

func TestVoiceMessages(t *testing.T) {
	t.Parallel()
	v := newVoiceEnv(t)
	base := time.Now().Add(-time.Hour).UTC()
	dana := insertRow(t, v.e, "contacts", v.orgA, nil)
	eli := insertRow(t, v.e, "contacts", v.orgA, nil)
	m1 := insertRow(t, v.e, "messages", v.orgA, map[string]any{"contact_id": dana, "body": "Hi, can I move my appointment?",
		"from_number": "+14155550001", "to_number": "+14155550999", "status": "received", "created_at": base,
		"media": json.RawMessage(`[{"url":"https://api.twilio.example/media/1","content_type":"image/jpeg"}]`)})
	m2 := insertRow(t, v.e, "messages", v.orgA, map[string]any{"contact_id": dana, "direction": "outbound", "body": "Sure",
		"status": "delivered", "created_at": base.Add(time.Minute)})
	m3 := insertRow(t, v.e, "messages", v.orgA, map[string]any{"contact_id": eli, "created_at": base.Add(2 * time.Minute)})
	m4 := insertRow(t, v.e, "messages", v.orgA, map[string]any{"created_at": base.Add(3 * time.Minute)})
	mb := insertRow(t, v.e, "messages", v.orgB, map[string]any{"body": "bravo text", "created_at": base.Add(time.Minute)})

	ids := func(ms []voxanne.Message) []string {
		out := []string{}
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	l := decodeList[voxanne.Message](t, v.do(v.member, "GET", "/api/messages", nil))
	if !slices.Equal(ids(l.Data), []string{m4, m3, m2, m1}) {
		t.Fatalf("messages %v", ids(l.Data))
	}
	m := l.Data[3]
	if m.Body != "Hi, can I move my appointment?" || m.Direction != "inbound" || *m.ContactID != dana || *m.FromNumber != "+14155550001" ||
		len(m.Media) != 1 || m.Media[0].URL != "https://api.twilio.example/media/1" || m.Media[0].ContentType != "image/jpeg" {
		t.Fatalf("message: %+v", m)
	}
	if l.Data[0].ContactID != nil || l.Data[0].Media == nil {
		t.Fatalf("message without contact: %+v", l.Data[0])
	}

	l = decodeList[voxanne.Message](t, v.do(v.member, "GET", "/api/messages?contact_id="+dana, nil))
	if !slices.Equal(ids(l.Data), []string{m2, m1}) {
		t.Fatalf("dana's messages %v", ids(l.Data))
	}
	l = decodeList[voxanne.Message](t, v.do(v.member, "GET", "/api/messages?contact_id="+uuid.NewString(), nil))
	if len(l.Data) != 0 {
		t.Fatalf("unknown contact: %v", ids(l.Data))
	}
	// Paging.
	p1 := decodeList[voxanne.Message](t, v.do(v.member, "GET", "/api/messages?limit=3", nil))
	p2 := decodeList[voxanne.Message](t, v.do(v.member, "GET", "/api/messages?limit=3&cursor="+url.QueryEscape(*p1.NextCursor), nil))
	if !slices.Equal(append(ids(p1.Data), ids(p2.Data)...), []string{m4, m3, m2, m1}) || p2.NextCursor != nil {
		t.Fatalf("pages %v %v", ids(p1.Data), ids(p2.Data))
	}
	// Org B sees its own message only, even when it names A's contact.
	l = decodeList[voxanne.Message](t, v.do(v.ownerB, "GET", "/api/messages", nil))
	if !slices.Equal(ids(l.Data), []string{mb}) {
		t.Fatalf("B's messages %v", ids(l.Data))
	}
	r := v.do(v.ownerB, "GET", "/api/messages?contact_id="+dana, nil)
	if len(decodeList[voxanne.Message](t, r).Data) != 0 || strings.Contains(string(r.Body), "appointment") {
		t.Fatalf("B read A's messages: %s", r.Body)
	}
}

func TestVoicePhoneNumbers(t *testing.T) {
	t.Parallel()
	v := newVoiceEnv(t)
	add := func(s *testenv.Session, body any) *testenv.Response {
		t.Helper()
		return v.do(s, "POST", "/api/phone-numbers", body)
	}
	r := add(v.admin, map[string]any{"e164": "(415) 555-0199", "provider": "vapi", "provider_id": "pn-123",
		"assistant_id": "asst-9", "label": "Front desk", "org_id": v.orgB, "id": uuid.NewString()})
	if r.Status != 201 {
		t.Fatalf("add: %d %s", r.Status, r.Body)
	}
	var n voxanne.PhoneNumber
	r.Decode(t, &n)
	if n.E164 != "+14155550199" || n.Provider != "vapi" || *n.ProviderID != "pn-123" || *n.AssistantID != "asst-9" || n.Label != "Front desk" {
		t.Fatalf("number: %s", r.Body)
	}
	var org string
	if err := v.e.QueryRow(context.Background(), "select org_id::text from phone_numbers where id = $1", n.ID).Scan(&org); err != nil || org != v.orgA {
		t.Fatalf("number's org %s %v", org, err)
	}
	// Twilio numbers need no provider or assistant id.
	r = add(v.owner, map[string]any{"e164": "+44 20 7946 0958", "provider": "twilio"})
	if r.Status != 201 || !strings.Contains(string(r.Body), `"provider_id":null`) || !strings.Contains(string(r.Body), `"e164":"+442079460958"`) {
		t.Fatalf("add twilio: %d %s", r.Status, r.Body)
	}

	for name, body := range map[string]any{
		"bad e164":       map[string]any{"e164": "555-0199", "provider": "vapi"},
		"no e164":        map[string]any{"provider": "vapi"},
		"letters":        map[string]any{"e164": "+1 415 CALL NOW", "provider": "vapi"},
		"bad provider":   map[string]any{"e164": "+14155550100", "provider": "sip"},
		"no provider":    map[string]any{"e164": "+14155550100"},
		"long label":     map[string]any{"e164": "+14155550100", "provider": "vapi", "label": strings.Repeat("x", 201)},
		"provider array": map[string]any{"e164": "+14155550100", "provider": []string{"vapi"}},
		"bad json":       "{",
	} {
		t.Run(name, func(t *testing.T) { wantError(t, add(v.admin, body), 400, "validation_failed") })
	}
	// Members may list but not manage.
	wantError(t, add(v.member, map[string]any{"e164": "+14155550100", "provider": "vapi"}), 403, "forbidden")
	wantError(t, v.do(v.member, "DELETE", "/api/phone-numbers/"+n.ID, nil), 403, "forbidden")
	l := decodeList[voxanne.PhoneNumber](t, v.do(v.member, "GET", "/api/phone-numbers", nil))
	if len(l.Data) != 2 || l.Data[1].ID != n.ID || l.NextCursor != nil {
		t.Fatalf("numbers: %+v", l)
	}

	// Registrations only label an org's own traffic: another org may register
	// the same number or provider id (it routes nothing), a repeat in the same
	// org is a conflict.
	for name, body := range map[string]map[string]any{
		"same number":      {"e164": "+1 415 555 0199", "provider": "twilio"},
		"same provider id": {"e164": "+14155550777", "provider": "vapi", "provider_id": "pn-123"},
	} {
		t.Run(name, func(t *testing.T) {
			wantError(t, add(v.owner, body), 409, "conflict")
			if r := add(v.ownerB, body); r.Status != 201 {
				t.Fatalf("B's own label: %d %s", r.Status, r.Body)
			}
		})
	}
	// The same provider id at another provider is another number.
	if r := add(v.ownerB, map[string]any{"e164": "+14155550778", "provider": "twilio", "provider_id": "pn-123"}); r.Status != 201 {
		t.Fatalf("same id, other provider: %d %s", r.Status, r.Body)
	}
	if l := decodeList[voxanne.PhoneNumber](t, v.do(v.ownerB, "GET", "/api/phone-numbers", nil)); len(l.Data) != 3 || l.Data[0].E164 != "+14155550778" {
		t.Fatalf("B's numbers: %+v", l.Data)
	}

	// Delete: B cannot reach A's number; the admin can, once.
	wantError(t, v.do(v.ownerB, "DELETE", "/api/phone-numbers/"+n.ID, nil), 404, "not_found")
	if r := v.do(v.admin, "DELETE", "/api/phone-numbers/"+n.ID, nil); r.Status != 204 || len(r.Body) != 0 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	wantError(t, v.do(v.admin, "DELETE", "/api/phone-numbers/"+n.ID, nil), 404, "not_found")
	if l := decodeList[voxanne.PhoneNumber](t, v.do(v.member, "GET", "/api/phone-numbers", nil)); len(l.Data) != 1 {
		t.Fatalf("after delete: %+v", l.Data)
	}
	// The number is free again in A.
	if r := add(v.admin, map[string]any{"e164": "+14155550199", "provider": "vapi", "provider_id": "pn-123"}); r.Status != 201 {
		t.Fatalf("re-register: %d %s", r.Status, r.Body)
	}
}
