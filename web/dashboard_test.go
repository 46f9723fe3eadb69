package web_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/voxanne/voxanne/internal/testenv"
	"github.com/voxanne/voxanne/web/webtest"
)

// kpi reads a figure of the overview by its label.
func kpi(t *testing.T, body, label string) string {
	t.Helper()
	m := regexp.MustCompile(`<p class="label">` + regexp.QuoteMeta(label) + `</p><p class="value"[^>]*>([^<]*)</p>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the overview has no figure %q", label)
	}
	return m[1]
}

func TestOverviewFigures(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	a := e.SignUp("figures-a@example.com")
	b := e.SignUp("figures-b@example.com")
	now := time.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	midToday := today.Add(now.Sub(today) / 2)
	call := func(org string, at time.Time, fields map[string]any) {
		fields["created_at"] = at
		webtest.InsertRow(t, e, "calls", org, fields)
	}
	// Today: one answered call of 60 s, one never answered.
	call(a.OrgID(), midToday, map[string]any{"started_at": midToday, "duration_seconds": 60.0, "ended_reason": "customer-ended-call"})
	call(a.OrgID(), midToday, map[string]any{"ended_reason": "silence-timed-out"})
	// Three days ago: answered, 30 s, voicemail. Ten days ago: outside 7 days.
	call(a.OrgID(), today.AddDate(0, 0, -3).Add(12*time.Hour), map[string]any{"started_at": today.AddDate(0, 0, -3).Add(12 * time.Hour),
		"duration_seconds": 30.0, "ended_reason": "voicemail"})
	call(a.OrgID(), today.AddDate(0, 0, -10).Add(12*time.Hour), map[string]any{"started_at": today.AddDate(0, 0, -10).Add(12 * time.Hour),
		"duration_seconds": 90.0, "ended_reason": "voicemail"})
	for _, dir := range []string{"inbound", "inbound", "outbound"} {
		webtest.InsertRow(t, e, "messages", a.OrgID(), map[string]any{"direction": dir, "body": "hi", "created_at": midToday})
	}
	webtest.InsertRow(t, e, "messages", a.OrgID(), map[string]any{"direction": "outbound", "body": "old", "created_at": today.AddDate(0, 0, -10)})
	// Another org's calls and texts count for it alone.
	for range 5 {
		call(b.OrgID(), midToday, map[string]any{"started_at": midToday, "duration_seconds": 500.0, "ended_reason": "voicemail"})
		webtest.InsertRow(t, e, "messages", b.OrgID(), map[string]any{"direction": "inbound", "body": "b", "created_at": midToday})
	}

	c := webtest.NewClient(t, e.URL)
	c.Login("figures-a@example.com", testenv.Password)
	week := c.Get("/overview")
	if week.Status != http.StatusOK {
		t.Fatalf("overview: %d", week.Status)
	}
	for label, want := range map[string]string{"Calls today": "2", "Calls, 7 days": "3", "Answer rate": "67%",
		"Average duration": "45s", "Texts in / out": "2 / 1"} {
		if got := kpi(t, week.Body, label); got != want {
			t.Errorf("7 days: %s = %q, want %q", label, got, want)
		}
	}
	for _, want := range []string{">Customer ended call<", ">Silence timed out<", ">Voicemail<", "Calls per day: 3 in the period"} {
		if !strings.Contains(week.Body, want) {
			t.Errorf("7 days: the overview lacks %q", want)
		}
	}
	month := c.Get("/overview?days=30")
	for label, want := range map[string]string{"Calls today": "2", "Calls, 30 days": "4", "Answer rate": "75%",
		"Average duration": "60s", "Texts in / out": "2 / 2"} {
		if got := kpi(t, month.Body, label); got != want {
			t.Errorf("30 days: %s = %q, want %q", label, got, want)
		}
	}
}

func TestCallPageReadsTheCallerAndAuditsIt(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.Options{})
	ctx := context.Background()
	org := w.owner.OrgID()
	other := webtest.InsertRow(t, w.e, "calls", org, map[string]any{"contact_id": w.a.ContactID, "started_at": time.Now().Add(-48 * time.Hour),
		"created_at": time.Now().Add(-48 * time.Hour), "duration_seconds": 75.0})
	lonely := webtest.InsertRow(t, w.e, "calls", org, map[string]any{"from_number": "+14155550999", "summary": "nobody we know"})
	audited := func(id string) int {
		var n int
		if err := w.e.QueryRow(ctx, `select count(*) from audit_log where action = 'transcript_read' and target_id = $1`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	c := w.signedIn(t, "owner-a@example.com")
	p := c.Get("/calls/" + w.a.CallID)
	if p.Status != http.StatusOK {
		t.Fatalf("call: %d", p.Status)
	}
	for _, want := range []string{"Call from Alpha Caller", `href="/contacts/` + w.a.ContactID + `"`, `href="/calls/` + other + `"`,
		"Alpha-only text", "Alpha-only note", "Alpha-only transcript"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("the call page lacks %q", want)
		}
	}
	if n := audited(w.a.CallID); n != 1 {
		t.Errorf("the read was audited %d times, want 1", n)
	}
	if p := c.Get("/calls/" + lonely); p.Status != http.StatusOK || !strings.Contains(p.Body, "No contact for this call.") {
		t.Errorf("a call without a contact: %d", p.Status)
	}
	// Nothing shown, nothing audited: no such call, and another org's.
	for _, id := range []string{"00000000-0000-4000-8000-000000000000", w.b.CallID} {
		if p := c.Get("/calls/" + id); p.Status != http.StatusNotFound || strings.Contains(p.Body, "Bravo") {
			t.Errorf("%s: %d", id, p.Status)
		}
		if n := audited(id); n != 0 {
			t.Errorf("%s: audited %d times", id, n)
		}
	}
}

func TestListRowsShowWhatChanged(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.Options{})
	ctx := context.Background()
	a := w.signedIn(t, "owner-a@example.com")
	for _, p := range []string{"/calls", "/messages", "/contacts", "/overview"} {
		if body := a.Get(p).Body; !strings.Contains(body, "Alpha Caller") {
			t.Fatalf("%s does not name the caller", p)
		}
	}
	// Rows are memoized by what they show: each change shows at once, even
	// one that leaves updated_at alone.
	changes := []struct {
		sql    string
		id     string
		checks map[string][]string
	}{
		{`update calls set summary = 'A new summary' where id = $1`, w.a.CallID, map[string][]string{"/calls": {"A new summary"}}},
		{`update calls set status = 'in-progress' where id = $1`, w.a.CallID, map[string][]string{"/calls": {">in-progress<"}, "/overview": {">in-progress<"}}},
		{`update messages set body = 'A new text' where id = $1`, w.a.MessageID, map[string][]string{"/messages": {"A new text"}}},
		{`update contacts set name = 'Renamed Caller' where id = $1`, w.a.ContactID, map[string][]string{
			"/calls": {"Renamed Caller"}, "/messages": {"Renamed Caller"}, "/contacts": {"Renamed Caller"}, "/overview": {"Renamed Caller"}}},
	}
	for _, ch := range changes {
		if _, err := w.e.Exec(ctx, ch.sql, ch.id); err != nil {
			t.Fatal(err)
		}
		for p, wants := range ch.checks {
			body := a.Get(p).Body
			for _, want := range wants {
				if !strings.Contains(body, want) {
					t.Errorf("%s after %q lacks %q", p, ch.sql, want)
				}
			}
		}
	}
	for _, p := range []string{"/calls", "/messages", "/contacts", "/overview"} {
		if body := a.Get(p).Body; strings.Contains(body, "Alpha Caller") || strings.Contains(body, "Alpha-only summary") {
			t.Errorf("%s still shows old values", p)
		}
	}
	// The other org's rows are its own.
	b := w.signedIn(t, "owner-b@example.com")
	for _, p := range []string{"/calls", "/messages", "/contacts", "/overview"} {
		if body := b.Get(p).Body; strings.Contains(body, "Renamed") || !strings.Contains(body, "Bravo Caller") {
			t.Errorf("org B's %s", p)
		}
	}
}

func TestOverviewFiguresFollowAnnouncements(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := e.SignUp("kept@example.com")
	org := s.OrgID()
	c := webtest.NewClient(t, e.URL)
	c.Login("kept@example.com", testenv.Password)
	week := func() string { return kpi(t, c.Get("/overview").Body, "Calls, 7 days") }
	if got := week(); got != "0" {
		t.Fatalf("a new org's calls: %s", got)
	}
	// Figures are kept until the org's next announcement: a row written
	// straight into the database, unannounced, is not counted yet.
	webtest.InsertRow(t, e, "calls", org, map[string]any{"summary": "one"})
	if got := week(); got != "0" {
		t.Fatalf("the figures were read again without an announcement (%s): nothing is kept", got)
	}
	// Announced as the webhook jobs announce their rows, through the
	// database: the next page after it counts the call.
	if err := e.DB.NotifyDashboard(context.Background(), org); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for week() != "1" {
		if time.Now().After(deadline) {
			t.Fatal("the announced call was never counted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Another org's announcement leaves these figures; one for every org
	// (the listener listening again after an outage) does not.
	webtest.InsertRow(t, e, "calls", org, map[string]any{"summary": "two"})
	e.Events.Publish(e.SignUp("other-org@example.com").OrgID())
	if got := week(); got != "1" {
		t.Errorf("after another org's announcement: %s", got)
	}
	e.Events.Publish("")
	if got := week(); got != "2" {
		t.Errorf("after an announcement for every org: %s, want 2", got)
	}
}
